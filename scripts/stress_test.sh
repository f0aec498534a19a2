#!/usr/bin/env bash
# make stress-test: the whole suite RUNS times in a row (default 3) while stress-ng keeps every
# core busy, to catch tests that only pass on an idle machine (timing, silence, ordering).
# A developer's check, not CI's. Usage: scripts/stress_test.sh [VENV] [pytest args...]
# Environment: RUNS (default 3), STRESS_WORKERS (stress-ng CPU workers, default: one per core).
# stress-ng is Debian's package: installed here with apt-get when missing (needs root).
# Reports each run's counts and exits 1 if any run failed; stress-ng is stopped however it ends.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=${1:-.venv}
[[ $# -gt 0 ]] && shift
runs=${RUNS:-3}
workers=${STRESS_WORKERS:-$(nproc)}
python="$venv/bin/python"
if [[ ! -x $python ]]; then
  echo "error: $python is missing: run 'make venv' first (make stress-test does)." >&2
  exit 2
fi
if ! command -v stress-ng >/dev/null; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "error: stress-ng is missing and cannot be installed here: install Debian's 'stress-ng' package." >&2
    exit 2
  fi
  echo "== installing stress-ng"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq stress-ng >/dev/null || { echo "error: apt-get install stress-ng failed" >&2; exit 2; }
fi
mkdir -p .data

stress_pid=""
stop_stress() {
  if [[ -n $stress_pid ]] && kill -0 "$stress_pid" 2>/dev/null; then
    kill -TERM "$stress_pid" 2>/dev/null
    wait "$stress_pid" 2>/dev/null
    echo "== stress-ng stopped"
  fi
  stress_pid=""
}
trap stop_stress EXIT
trap 'stop_stress; exit 130' INT TERM

echo "== stress-ng: $workers CPU workers on $(nproc) cores"
stress-ng --cpu "$workers" --timeout 0 --quiet &
stress_pid=$!
sleep 1
if ! kill -0 "$stress_pid" 2>/dev/null; then
  echo "error: stress-ng did not start" >&2
  exit 2
fi

status=0
report=()
total_passed=0; total_failed=0
for run in $(seq 1 "$runs"); do
  echo "== run $run of $runs under load: pytest $*"
  xml=.data/junit-stress-$run.xml
  rm -f "$xml"
  started=$(date +%s)
  "$python" -m pytest -q -p no:cacheprovider --junitxml="$xml" "$@"
  rc=$?
  took=$(( $(date +%s) - started ))
  load="under load"
  if ! kill -0 "$stress_pid" 2>/dev/null; then
    load="NOT under load (stress-ng had exited)"; status=1
  fi
  read -r p f k failed_names < <("$python" - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0 -"); raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
names = [c.get("classname", "") + "::" + c.get("name", "") for s in suites for c in s.iter("testcase")
         if c.find("failure") is not None or c.find("error") is not None]
print(t - f - k, f, k, ",".join(names) or "-")
PY
)
  total_passed=$((total_passed + p))
  if [[ $rc -eq 0 ]]; then
    report+=("run $run: $p passed, $k skipped in ${took}s, $load")
  else
    [[ $f -eq 0 ]] && f=1
    report+=("run $run: FAILED (pytest exit $rc): $p passed, $f failed in ${took}s, $load: $failed_names")
    status=1
  fi
  total_failed=$((total_failed + f))
done
stop_stress

echo
echo "== runs under stress-ng ($workers CPU workers)"
for line in "${report[@]}"; do echo "   $line"; done
echo "make stress-test: $total_passed passed, $total_failed failed"
exit $status
