# meshgate: multi-stage build on the current Node LTS slim image; runs as a non-root user.
# Config lives at /etc/meshgate/config.yaml (mount your own); Raft data under /var/lib/meshgate.
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
COPY config.yaml /etc/meshgate/config.yaml
RUN useradd --system --uid 10001 --home /var/lib/meshgate meshgate \
  && mkdir -p /var/lib/meshgate && chown meshgate /var/lib/meshgate
USER meshgate
# data plane, admin (bind it to 0.0.0.0 in your config to reach it from outside), Raft peers
EXPOSE 8080 9901 7946
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:9901/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["--config", "/etc/meshgate/config.yaml"]
