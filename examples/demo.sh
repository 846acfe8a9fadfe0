#!/usr/bin/env bash
# make demo: run the daemon on loopback, open an unexpected port, watch the
# deviation appear in `sollwert check`, close the port, watch it resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/sollwert
WORK=$(mktemp -d /tmp/sollwert-demo.XXXXXX)
URL=http://127.0.0.1:7400
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

listen() { ncat -lk 127.0.0.1 "$1" -e /bin/true >/dev/null 2>&1 & pids+=($!); }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "validating examples/demo.hcl"
$BIN rules validate --config examples/demo.hcl

sed "s|\"./data\"|\"$WORK/data\"|" examples/demo.hcl > "$WORK/demo.hcl"
step "starting the daemon (log: $WORK/daemon.log)"
$BIN daemon --config "$WORK/demo.hcl" >"$WORK/daemon.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -fs "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

step "opening 127.0.0.1:18022 (allowed) and 127.0.0.1:18080 (not allowed)"
listen 18022
listen 18080
rogue=${pids[-1]}

wait_for_check() { # wait until `sollwert check` exits with $1
  for _ in $(seq 60); do
    code=0; $BIN check --url "$URL" >"$WORK/check.out" || code=$?
    [ "$code" = "$1" ] && { cat "$WORK/check.out"; echo "(exit status $code)"; return 0; }
    sleep 1
  done
  echo "timed out waiting for check exit $1; last output:"; cat "$WORK/check.out"; return 1
}

step "waiting for the next scan: sollwert check goes CRITICAL"
wait_for_check 2
step "sollwert deviations"
$BIN deviations --url "$URL"

step "closing 127.0.0.1:18080"
kill "$rogue"
step "waiting for the next scan: the deviation resolves, check is OK"
wait_for_check 0
step "sollwert deviations --state all"
$BIN deviations --url "$URL" --state all

step "done: the daemon log follows"
tail -n 20 "$WORK/daemon.log"
