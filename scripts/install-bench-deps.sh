#!/usr/bin/env bash
# Installs what `npm run bench -- --only proxies-wrk` and `--only proxies-tls` measure with and against
# (issues 15, 16): wrk as the load generator, nginx-light for the NGINX backends and the NGINX reference
# row, haproxy for the HAProxy reference row, nghttp2-client for h2load. Debian packages only. For a
# bench run, not for `npm test` (.ci/run installs what the tests need; the bench skips a reference row
# whose binary is missing).
set -euo pipefail

sudo=""
if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench dependencies present: wrk, nginx, haproxy, h2load"
  exit 0
fi
echo "installing: ${missing[*]}"
$sudo apt-get install -y --no-install-recommends "${missing[@]}" || {
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}
# The packages' own services are not what the bench runs (it starts its own NGINX and HAProxy on
# free ports with generated configs); stop them where an init system started them.
for svc in nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
