# meshgate: multi-stage build on the current Node LTS slim image; runs as a non-root user.
# Config lives at /etc/meshgate/config.yaml (mount your own; the bundled one is
# deploy/container/config.yaml: listens on 0.0.0.0, drains in 8 s, inside `docker stop`'s 10 s grace);
# Raft data under /var/lib/meshgate (a VOLUME: keep it across container upgrades).
#   docker build -t meshgate . && docker run -p 8080:8080 -e MESHGATE_ADMIN_TOKEN=$(openssl rand -hex 16) -e MESHGATE_UPSTREAM=http://host.docker.internal:3000 meshgate
# A longer node.drainTimeout needs `docker run --stop-timeout N` (N above it). docs/operations.md.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY bench ./bench
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY deploy/container/config.yaml /etc/meshgate/config.yaml
RUN useradd --system --uid 10001 --home /var/lib/meshgate meshgate \
  && mkdir -p /var/lib/meshgate && chown meshgate /var/lib/meshgate
USER meshgate
VOLUME ["/var/lib/meshgate"]
# data plane, admin (HEALTHCHECK, /metrics, dashboard), Raft peers
EXPOSE 8080 9901 7946
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:9901/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["--config", "/etc/meshgate/config.yaml"]
