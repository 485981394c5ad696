#!/bin/bash
# Instructions (and simulated cache misses) per request of one proxy process, counted by
# valgrind's callgrind: repeatable where wall-clock figures are not (a shared VM moved the same build
# by 30% between 5 s wrk rounds; callgrind counts the same work the same way whatever else runs).
# It counts user space only (the kernel's share is `sys` in /proc/<pid>/stat) and every thread of the
# process (GC helpers and compiler threads included). Not part of `npm test` or `npm run bench`.
#
#   bench/lab/instructions-per-request.sh NAME PORT close|keep-alive -- command to start the proxy...
#
# The command must listen on PORT and forward to a backend that answers GET / with 200. Steps:
# start it under callgrind, send 10,000 warm-up requests (V8's tiers settle), zero the counters, send
# N (default 2,000) requests 50 at a time, dump, send N more, dump; prints instructions per request of
# both batches. Our own bench child scripts exit when stdin closes: stdin is a fifo held open here.
# CACHE=1 adds --cache-sim=yes (D1 / last-level misses per request; about twice as slow).
# KEEP=DIR keeps the two dumps there (callgrind_annotate them to see which functions differ).
set -euo pipefail
name=$1; port=$2; mode=$3; shift 4
N=${N:-2000}
dir=$(mktemp -d)
here=$(cd "$(dirname "$0")" && pwd)
mkfifo "$dir/stdin"
sleep 100000 > "$dir/stdin" &
holder=$!
opts=(--tool=callgrind --smc-check=all-non-file --dump-instr=no "--callgrind-out-file=$dir/cg.%p")
[ "${CACHE:-0}" = 1 ] && opts+=(--cache-sim=yes)
valgrind "${opts[@]}" "$@" < "$dir/stdin" > "$dir/proxy.out" 2>&1 &
for _ in $(seq 1 120); do curl -s -o /dev/null -m 2 "127.0.0.1:$port/" && break; sleep 1; done
pid=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
client() { node "$here/client.mjs" "$port" "$1" 50 "$mode"; }
client 10000 > /dev/null
callgrind_control -z "$pid" > /dev/null
client "$N" > /dev/null
callgrind_control -d a "$pid" > /dev/null
client "$N" > /dev/null
callgrind_control -d b "$pid" > /dev/null
kill "$pid" "$holder"
wait 2> /dev/null || true
for part in 1 2; do
  read -r -a ev < <(grep '^events:' "$dir/cg.$pid.$part" | cut -d' ' -f2-)
  read -r -a sum < <(grep '^summary:' "$dir/cg.$pid.$part" | cut -d' ' -f2-)
  line="$name $mode batch $part:"
  for i in "${!ev[@]}"; do line+=" ${ev[$i]}=$(( sum[i] / N ))"; done
  echo "$line (per request, N=$N)"
done
[ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$dir/cg.$pid.1" "$KEEP/$name.1" && cp "$dir/cg.$pid.2" "$KEEP/$name.2"
rm -rf "$dir"
