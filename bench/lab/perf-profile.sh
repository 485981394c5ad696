#!/bin/bash
# Where a proxy process's CPU goes under load, by perf's cpu-clock sampling (hardware counters are
# not offered on this VM): kernel / node / JIT / libc shares, then the top symbols, JavaScript ones
# named when the process was started with `node --perf-basic-prof` (it writes /tmp/perf-<pid>.map).
# Not part of `npm test` or `npm run bench`; a lab tool for before/after profiles of one change.
#
#   bench/lab/perf-profile.sh PID URL [extra wrk args...]     e.g. ... 1234 http://127.0.0.1:8080/1m
#
# wrk (-t1 -c50, pinned to CPU 1 when WRK_CPU is unset) runs 8 s; perf records the middle 5 s at
# 4 kHz with call graphs into $OUT (default a temp file), so `perf report -i $OUT` can dig further.
set -euo pipefail
pid=$1; url=$2; shift 2
out=${OUT:-$(mktemp --suffix=.perf.data)}
taskset -c "${WRK_CPU:-1}" wrk -t1 -c50 -d8s "$@" "$url" > "$out.wrk" &
wrk_pid=$!
sleep 1
perf record -e cpu-clock -F 4000 -g -p "$pid" -o "$out" -- sleep 5 > /dev/null 2>&1
wait "$wrk_pid"
grep -E 'Requests/sec|Transfer/sec' "$out.wrk"
echo '--- shares by object'
perf report -i "$out" --no-children --sort dso -g none 2> /dev/null | grep '%' | grep -v '^#' | head -6
echo '--- top symbols (self)'
perf report -i "$out" --no-children --sort dso,sym -g none 2> /dev/null | grep '%' | grep -v '^#' | head -"${TOP:-40}" | cut -c1-150
echo "(perf data: $out)"
