#!/usr/bin/env bash
# with_redis.sh CMD [ARGS...]: run CMD with REDIS_URL pointing at the Redis `make run` uses.
# REDIS_URL set: kept. Unset: the embedded server of a running `make run` (its port is in
# $QE_DATA_DIR/redis/port, default .data/redis/port) when it answers, else the default
# redis://127.0.0.1:6379/0. Says on stderr which URL it is and why.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-.venv}
[[ $venv == /* ]] || venv=$root/$venv
py=$venv/bin/python
data=${QE_DATA_DIR:-$root/.data}
if [[ -n ${REDIS_URL:-} ]]; then
  echo "[redis] using REDIS_URL=$REDIS_URL" >&2
elif url=$("$py" -m queueengine.devtools.embedded url "$data/redis" 2>/dev/null); then
  export REDIS_URL=$url
  echo "[redis] using the embedded Redis of make run: REDIS_URL=$url" >&2
else
  echo "[redis] REDIS_URL is unset and no make run server answers: using redis://127.0.0.1:6379/0" >&2
fi
# the checkout on the path too, so scripts (bench/*.py) import config and bench as well
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root"
exec "$@"
