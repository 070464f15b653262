#!/usr/bin/env bash
# Instructions per request, under callgrind (deterministic, whatever else the machine runs):
# each case's in-process calls (see `count` in examples/http_cost_server.rs), and the extra
# of a protected route over the open one against `validate_session`'s (`CurrentSession`) or
# `validate`'s (`CurrentUser`, which also loads the user).
#
#   cd benches/peers && bash http_cost/count.sh          # CALLS=2000
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS="${CALLS:-2000}"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --example http_cost_server >&2
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
ir() { # framework case -> instructions per call
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" --collect-atstart=no \
    --toggle-collect='*measured*' target/release/examples/http_cost_server count "$1" "$2" "$CALLS" \
    2>/dev/null
  python3 -c "
import re, sys
total = max(int(m.group(1)) for m in re.finditer(r'^(?:summary|totals): (\d+)', open('$OUT/cg').read(), re.M))
print(total / $CALLS)"
}
validate=$(ir axum validate)
validate_user=$(ir axum validate_user)
printf 'validate_session: %.0f instructions; validate (with the user lookup): %.0f\n' "$validate" "$validate_user"
for framework in axum actix; do
  open=$(ir "$framework" open)
  for case in open session user; do
    n=$(ir "$framework" "$case")
    floor=$validate; [ "$case" = user ] && floor=$validate_user
    python3 -c "print(f'$framework {\"$case\":<8} {$n:8.0f} instructions  extra {$n - $open:6.0f} = {($n - $open) / $floor:5.2f}x ' + ('validate' if '$case' == 'user' else 'validate_session'))"
  done
done
