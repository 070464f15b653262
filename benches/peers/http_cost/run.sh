#!/usr/bin/env bash
# What a protected route costs the server beyond an open one: wrk over loopback against
# examples/http_cost_server.rs, the server pinned to CPU 0 and one thread, wrk on CPU 1 (one
# thread, 32 connections), 1,000 live sessions in rotation. Each case runs ROUNDS times,
# interleaved in rotating order; for each the median requests/s and the server's CPU time per
# request (from /proc/<pid>/stat), then the ratios: the protected route against the open one,
# and its extra CPU against the in-process `validate_session` measured by the server; and the
# same two ratios taken round by round (each case against the open route of its own round)
# with their median, which a machine whose speed drifts between rounds moves less. "busy" is
# the server's CPU time per second of the run: below 100 % the route was limited by wrk, not
# by the server, and its CPU per request includes more waiting for work (one epoll wake per
# request or so instead of several). The `extractor` route has an extractor that checks
# nothing: what the framework charges any route with an extractor.
#
#   cd benches/peers && bash http_cost/run.sh            # ROUNDS=5 SECONDS_PER_RUN=5
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --example http_cost_server >&2
SERVER=target/release/examples/http_cost_server
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_case PID NAME URL HEADER_NAME HEADER_FILE -> "rps us_per_request"
run_case() {
  local pid=$1 url=$3 before after out requests rps non2xx
  before=$(cpu_ticks "$pid")
  out=$(HEADER_NAME="$4" HEADER_FILE="$5" taskset -c 1 wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" \
    -s http_cost/rotate.lua "$url")
  after=$(cpu_ticks "$pid")
  non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out")
  if [ -n "$non2xx" ]; then echo "$2: $non2xx answers were not 2xx" >&2; exit 1; fi
  requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
  rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
  # Clock ticks are 1/100 s.
  echo "$rps $(python3 -c "print(($after - $before) * 1e4 / $requests)")"
}

measure() { # FRAMEWORK then case specs "name|url|header|file"
  local framework=$1; shift
  rm -f "$WORK/ready"
  taskset -c 0 "$SERVER" "$framework" "$WORK" &
  local pid=$!
  for _ in $(seq 1 600); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
  [ -e "$WORK/ready" ] || { echo "server $framework did not start" >&2; exit 1; }
  local validate_ns; validate_ns=$(cat "$WORK/validate_ns.txt")
  local cases=("$@") n=${#cases[@]}
  for round in $(seq 0 $((ROUNDS - 1))); do
    for k in $(seq 0 $((n - 1))); do
      IFS='|' read -r name url header file <<<"${cases[$(((k + round) % n))]}"
      [ -n "$file" ] && file="$WORK/$file"
      echo "$name $(run_case "$pid" "$name" "$url" "$header" "$file") $round" >>"$WORK/$framework.results"
    done
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo
  echo "== $framework in process (no socket, no HTTP parsing; best of 5 x 200,000 calls, 1,000 sessions in rotation)"
  python3 - "$WORK/in_process.txt" "$validate_ns" <<'PY'
import sys
ns = dict(line.split() for line in open(sys.argv[1]) if line.strip())
ns = {k: float(v) for k, v in ns.items()}
vs, vu = (float(x) for x in sys.argv[2].split())
print(f"validate_session: {vs:.0f} ns, validate (with the user): {vu:.0f} ns")
for name, t in ns.items():
    extra = t - ns["open"]
    floor, what = (vu, "validate") if name == "user" else (vs, "validate_session")
    print(f"{name:<12} {t:8.0f} ns  extra {extra:6.0f} ns = {extra / floor:5.2f}x {what}")
PY
  echo "== $framework over loopback: wrk -t1 -c32, $ROUNDS rounds of ${SECONDS_PER_RUN}s per case"
  echo "   medians of each case, then the median of each round's own ratio (the case against the"
  echo "   open route of the same round, run minutes apart at most: steadier on a busy machine)"
  python3 - "$WORK/$framework.results" "$validate_ns" <<'PY'
import sys
from statistics import median
runs = {}  # name -> {round: (rps, us)}
for line in open(sys.argv[1]):
    name, rps, us, rnd = line.split()
    runs.setdefault(name, {})[int(rnd)] = (float(rps), float(us))
vs, vu = (float(x) / 1000 for x in sys.argv[2].split())
open_runs = runs["open"]
orps = median(r for r, _ in open_runs.values())
ous = median(u for _, u in open_runs.values())
print(f"{'case':<12} {'req/s':>10} {'µs CPU':>8} {'busy':>5} {'ratio':>7} {'extra/floor':>12} | {'paired ratio':>12} {'paired extra/floor':>18}")
for name, by_round in runs.items():
    floor = vu if name == "user" else vs
    rps = median(r for r, _ in by_round.values())
    us = median(u for _, u in by_round.values())
    ratios = [r / open_runs[k][0] for k, (r, _) in by_round.items()]
    extras = [(u - open_runs[k][1]) / floor for k, (_, u) in by_round.items()]
    print(f"{name:<12} {rps:10.0f} {us:8.2f} {rps * us / 1e4:4.0f}% {rps / orps:6.3f}x {(us - ous) / floor:11.2f}x |"
          f" {median(ratios):11.3f}x {median(extras):17.2f}x"
          f"  (rounds: {min(ratios):.3f}-{max(ratios):.3f}x)")
PY
}

measure axum \
  "open|http://127.0.0.1:18080/open|Authorization|tokens.txt" \
  "extractor|http://127.0.0.1:18080/extractor|Authorization|tokens.txt" \
  "session|http://127.0.0.1:18080/session|Authorization|tokens.txt" \
  "user|http://127.0.0.1:18080/user|Authorization|tokens.txt" \
  "axum-login|http://127.0.0.1:18081/hello|Cookie|cookies.txt"
measure actix \
  "open|http://127.0.0.1:18090/open|Authorization|tokens.txt" \
  "extractor|http://127.0.0.1:18090/extractor|Authorization|tokens.txt" \
  "session|http://127.0.0.1:18090/session|Authorization|tokens.txt" \
  "user|http://127.0.0.1:18090/user|Authorization|tokens.txt"
