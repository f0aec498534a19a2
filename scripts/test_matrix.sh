#!/usr/bin/env bash
# The one test command (make test): builds the environments from nothing and runs the whole
# suite on Python 3.11 with Django 5.2 and, where a Python >= 3.12 is installed, on the newest
# one with Django 6.1; then ruff and mypy. Says which combinations ran. Extra arguments go to
# pytest.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .data

bash scripts/system_packages.sh || exit 2

py311=$(scripts/find_python.sh 3.11 3.12)
py312=$(scripts/find_python.sh 3.12 "" newest)
if [[ -z $py311 && -z $py312 ]]; then
  echo "error: no Python >= 3.11 found on PATH or under ~/.pyenv/versions; install Python 3.11 or newer." >&2
  exit 2
fi

combos=()      # "venv python"
[[ -n $py311 ]] && combos+=(".venv $py311")
if [[ -n $py312 ]]; then
  v=$("$py312" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ -z $py311 ]]; then combos+=(".venv $py312"); else combos+=(".venv-py$v $py312"); fi
fi
[[ -z $py311 ]] && echo "note: no Python 3.11 found: the Django 5.2 combination does not run here."
[[ -z $py312 ]] && echo "note: no Python >= 3.12 found: the Django 6.1 combination does not run here."

status=0
total_passed=0; total_failed=0; total_skipped=0
report=()
for combo in "${combos[@]}"; do
  read -r venv python <<<"$combo"
  bash scripts/make_venv.sh "$venv" "$python" || { report+=("$venv: could not build the environment"); status=1; continue; }
  label=$("$venv/bin/python" -c 'import sys, django; print("Python %d.%d.%d + Django %s" % (*sys.version_info[:3], django.get_version()))')
  echo "== pytest on $label"
  xml=.data/junit-$(basename "$venv").xml
  "$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$xml" "$@"
  rc=$?
  counts=$("$venv/bin/python" - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0"); raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - k, f, k)
PY
)
  read -r p f k <<<"$counts"
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f)); total_skipped=$((total_skipped + k))
  if [[ $rc -eq 0 ]]; then report+=("$label: $p passed, $k skipped"); else report+=("$label: FAILED (pytest exit $rc; $p passed, $f failed)"); status=1; [[ $f -eq 0 ]] && total_failed=$((total_failed + 1)); fi
done

read -r venv _ <<<"${combos[0]}"
echo "== ruff"
if "$venv/bin/python" -m ruff check . ; then report+=("ruff: clean"); else report+=("ruff: FAILED"); status=1; fi
echo "== mypy (engine)"
if "$venv/bin/python" -m mypy ; then report+=("mypy: clean"); else report+=("mypy: FAILED"); status=1; fi

echo
echo "== combinations that ran"
for line in "${report[@]}"; do echo "   $line"; done
echo "make test: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
