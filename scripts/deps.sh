#!/usr/bin/env bash
# Installs the Debian packages heaptrail needs to build and test, when some are missing.
# Used by the Makefile (before the first configure) and by .ci/run. Without root it prints the
# apt-get command instead and fails, so a build never starts half-equipped.
set -euo pipefail

packages=(build-essential cmake clang clang-format pkg-config libcmocka-dev libunwind-dev libdw-dev libelf-dev
          libzstd-dev zlib1g-dev python3 sqlite3 git bash valgrind heaptrack protobuf-compiler
          chromium man-db tmux)
# chromium: the browser tests of the HTML report (tests/html) drive it headless. man-db: the
# installed-tree test (tests/install) looks the manual pages up with man. tmux: the tests of
# `heaptrail top` (tests/live) type into it and read its screen.
# Targets that need more name them: `scripts/deps.sh cpython` (make test-cpython and
# test-cpython-quick) adds CPython's regression tests for Debian's python3.11; `scripts/deps.sh
# bench` (make bench) the peers the benchmarks compare with: mimalloc, jemalloc, tcmalloc, and
# LTTng-UST for bench/trace; `scripts/deps.sh deb` (make deb, scripts/package-test.sh) the Debian
# packaging tools, lintian, and bash-completion for the completion script's check.
for target in "$@"; do
  case "$target" in
    cpython) packages+=(python3.11 libpython3.11-testsuite) ;;
    bench) packages+=(libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 lttng-tools liblttng-ust-dev) ;;
    deb) packages+=(debhelper dpkg-dev fakeroot lintian bash-completion) ;;
    *) echo "heaptrail: deps.sh: unknown target '$target' (known: cpython, bench, deb)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "heaptrail: missing packages: ${missing[*]}" >&2
  echo "heaptrail: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "heaptrail: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
