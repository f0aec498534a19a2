#!/usr/bin/env bash
# make_venv.sh VENV PYTHON: create VENV with PYTHON if missing, and (re)install requirements.txt
# whenever it changed since the last install.
set -euo pipefail
venv=${1:?usage: make_venv.sh VENV PYTHON}
python=${2:-}
if [[ -z $python ]]; then
  echo "error: no Python >= 3.11 found on PATH or under ~/.pyenv/versions." >&2
  echo "       Install Python 3.11 or newer (e.g. 'apt-get install python3.11' or 'pyenv install 3.11')." >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -x $venv/bin/python ]]; then
  want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  have=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
  [[ $want == "$have" ]] || { echo "== $venv is Python $have, wanted $want: recreating"; rm -rf "$venv"; }
fi
if [[ ! -x $venv/bin/python ]]; then
  echo "== creating $venv with $python ($("$python" --version 2>&1))"
  "$python" -m venv "$venv"
fi
stamp=$venv/.requirements.sha
sum=$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$sum" ]]; then
  echo "== installing requirements into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt"
  echo "$sum" > "$stamp"
fi
