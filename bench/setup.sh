#!/usr/bin/env bash
# Create the benchmark environments (idempotent: a stamp file records what was installed).
#   bench/.venv-peers : queueengine's runtime deps + rq, celery[redis], huey, saq, matplotlib
#   bench/.venv-arq   : arq (it pins redis-py < 6)
# Uses python3.11 unless BENCH_PYTHON names another interpreter. Only PyPI is needed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
py="${BENCH_PYTHON:-python3.11}"
if ! command -v "$py" >/dev/null 2>&1; then
    echo "bench/setup.sh: '$py' not found; set BENCH_PYTHON to a Python >= 3.11" >&2
    exit 1
fi

# queueengine's runtime dependencies, read from pyproject.toml (the package itself is imported
# from the checkout through PYTHONPATH, so edits to the engine need no reinstall).
engine_deps() {
    "$py" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    print("\n".join(tomllib.load(fh)["project"]["dependencies"]))
PY
}

make_env() {  # make_env NAME REQUIREMENTS_FILE [with-engine-deps]
    local name="$1" reqs="$2" with_engine="${3:-}"
    local venv="$here/.venv-$name" stamp="$here/.venv-$name/.bench-stamp"
    local want
    want="$("$py" -c 'import sys; print(sys.version)'; cat "$reqs"; if [[ -n "$with_engine" ]]; then engine_deps; fi)"
    want="$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
        return 0
    fi
    echo "bench/setup.sh: building $venv" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
    local extra=()
    if [[ -n "$with_engine" ]]; then
        engine_deps > "$venv/engine-requirements.txt"
        extra=(-r "$venv/engine-requirements.txt")
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs" "${extra[@]}" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
    # pip's exit status was swallowed by the filter above: check the result instead.
    "$venv/bin/python" -m pip check >/dev/null 2>&1 || "$venv/bin/python" -m pip check >&2 || true
    "$venv/bin/python" - "$reqs" <<'PY'
import sys, re
from importlib.metadata import version, PackageNotFoundError
missing = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name = re.split(r"[\[<>=!~; ]", line)[0]
    try:
        version(name)
    except PackageNotFoundError:
        missing.append(name)
if missing:
    sys.exit(f"bench/setup.sh: not installed: {', '.join(missing)}")
PY
    echo "$want" > "$stamp"
}

make_env peers "$here/requirements.txt" with-engine
make_env arq "$here/requirements-arq.txt"
