#!/usr/bin/env bash
# make_venv.sh VENV PYTHON [REQUIREMENTS [PIP_ARGS...]]: create VENV with PYTHON if missing,
# (re)install REQUIREMENTS (default requirements.txt: the runtime set; requirements-dev.txt adds
# the tools) whenever it, a file it includes or PIP_ARGS changed since the last install, and
# install the checkout itself into VENV (editable, no dependencies) so scripts import it.
set -euo pipefail
venv=${1:?usage: make_venv.sh VENV PYTHON [REQUIREMENTS [PIP_ARGS...]]}
python=${2:-}
requirements=${3:-requirements.txt}
shift $(( $# < 3 ? $# : 3 ))
if [[ -z $python ]]; then
  echo "error: no Python >= 3.11 found on PATH or under ~/.pyenv/versions." >&2
  echo "       Install Python 3.11 or newer (e.g. 'apt-get install python3.11' or 'pyenv install 3.11')." >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -f $root/$requirements ]] || { echo "error: $root/$requirements does not exist" >&2; exit 2; }
if [[ -x $venv/bin/python ]]; then
  want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  have=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
  [[ $want == "$have" ]] || { echo "== $venv is Python $have, wanted $want: recreating"; rm -rf "$venv"; }
fi
if [[ ! -x $venv/bin/python ]]; then
  echo "== creating $venv with $python ($("$python" --version 2>&1))"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
stamp=$venv/.$(basename "$requirements" .txt).sha
sum=$(cd "$root" && { cat requirements*.txt pyproject.toml; echo "$*"; } | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$sum" ]]; then
  echo "== installing $requirements${*:+ ($*)} into $venv"
  "${pip[@]}" install --quiet --upgrade pip
  "${pip[@]}" install --quiet -r "$root/$requirements" "$@"
  # the editable install warns about the checkout's own folders: only show its output on failure
  out=$("${pip[@]}" install --quiet --no-deps -e "$root" 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$sum" > "$stamp"
fi
