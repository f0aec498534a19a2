#!/usr/bin/env bash
# find_python.sh MIN [BELOW] [newest]
# Prints the path of a Python interpreter whose version is >= MIN (and < BELOW when given),
# looking on PATH and under pyenv's versions directory. Prefers the lowest matching version,
# or the highest with "newest". Prints nothing and exits 1 when none matches.
set -u
min=${1:?usage: find_python.sh MIN [BELOW] [newest]}
below=${2:-}
order=${3:-lowest}
candidates=()
for name in python3.11 python3.12 python3.13 python3.14 python3.15 python3 python; do
  p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for p in "$pyenv_root"/versions/*/bin/python3 /usr/bin/python3.* /usr/local/bin/python3.*; do
  [[ -x $p && $p != *-config ]] && candidates+=("$p")
done
best=""; best_version=""
for p in "${candidates[@]}"; do
  v=$("$p" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || continue
  ok=$("$p" - "$min" "$below" <<'PY' 2>/dev/null
import sys
def parse(s): return tuple(int(x) for x in s.split("."))
me = sys.version_info[:2]
low, high = parse(sys.argv[1]), sys.argv[2]
print("yes" if me >= low and (not high or me < parse(high)) else "no")
PY
) || continue
  [[ $ok == yes ]] || continue
  if [[ -z $best ]]; then best=$p; best_version=$v; continue; fi
  newer=$(printf '%s\n%s\n' "$v" "$best_version" | sort -V | tail -n1)
  if [[ $order == newest && $newer == "$v" && $v != "$best_version" ]]; then best=$p; best_version=$v; fi
  if [[ $order != newest && $newer == "$best_version" && $v != "$best_version" ]]; then best=$p; best_version=$v; fi
done
[[ -n $best ]] || exit 1
echo "$best"
