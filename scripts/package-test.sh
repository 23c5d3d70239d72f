#!/usr/bin/env bash
# package-test.sh — CI's Debian package check (as root, on Debian 12): `make deb`, install the
# three packages with apt-get, use them from /usr as a user would (record and report sqlite3,
# `check` on a clean and on a leaking program, a heap-API program built with pkg-config shared
# and static and with find_package, the man pages, bash completion), then purge them and check
# that nothing is left. The packages are purged again on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD
build=${BUILD:-build}

fail() {
  echo "package-test: FAIL: $*" >&2
  exit 1
}
step() { echo "package-test: $*"; }
packages=(heaptrail libheaptrail0 libheaptrail-dev)
purge() {
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${packages[@]}" >/dev/null 2>&1 || true
}

[ "$(id -u)" -eq 0 ] || fail "run as root (apt-get install)"
started=$(date +%s)
make --no-print-directory deb BUILD="$build"
deb_seconds=$(($(date +%s) - started))

version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
debs=()
for p in "${packages[@]}"; do
  debs+=("./$build/${p}_${version}_${arch}.deb")
  [ -f "${debs[-1]}" ] || fail "${debs[-1]} was not built"
done

tmp=$(mktemp -d /tmp/heaptrail-package-test.XXXXXX)
trap 'purge; rm -rf "$tmp"' EXIT

step "apt-get install ${debs[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >"$tmp/apt.log" 2>&1 ||
  fail "apt-get install: $(tail -n 20 "$tmp/apt.log")"
[ "$(command -v heaptrail)" = /usr/bin/heaptrail ] || fail "heaptrail is not /usr/bin/heaptrail"
dpkg-query -W -f='${Depends}\n' heaptrail | grep -q 'libunwind8' ||
  fail "heaptrail does not depend on libunwind8"
cd "$tmp"

step "record sqlite3 and report it"
/usr/bin/heaptrail record -o "$tmp/t.trace" -- sqlite3 :memory: 'select 1;' >"$tmp/sqlite.out" \
  2>"$tmp/record.err" || fail "record: $(cat "$tmp/record.err")"
grep -qx 1 "$tmp/sqlite.out" || fail "sqlite3's output under record: $(cat "$tmp/sqlite.out")"
/usr/bin/heaptrail report "$tmp/t.trace" >"$tmp/report.txt" || fail "report"
grep -q . "$tmp/report.txt" || fail "empty report"
/usr/bin/heaptrail record -q -o "$tmp/env.trace" -- /usr/bin/env >"$tmp/env.out"
grep -qx 'LD_PRELOAD=/usr/lib/heaptrail/libheaptrail-preload.so' "$tmp/env.out" ||
  fail "record did not preload /usr/lib/heaptrail/libheaptrail-preload.so"

# `heaptrail check`: exit 23 when something is found, else the program's status.
step "check -- /bin/true exits 0"
/usr/bin/heaptrail check -- /bin/true || fail "check -- /bin/true exited $?"
step "check -- sqlite3 exits 0 with sqlite3's output"
out=$(/usr/bin/heaptrail check -q -- sqlite3 :memory: 'select 6*7;') ||
  fail "check -- sqlite3 exited $?"
[ "$out" = 42 ] || fail "check -- sqlite3 printed '$out', not 42"
step "check -- ./leak exits 23"
cat >"$tmp/leak.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *leak_me(size_t size)
{
    char *p = malloc(size);
    if (p)
        memset(p, 'x', size);
    return p;
}

/* Overwrites the stack below main's frame, where stale copies of the pointer could be left
 * for the exit-time scan to find. */
static void scrub_stack(void)
{
    volatile char pad[8192];
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = 0;
}

static void lose(void)
{
    char *p = leak_me(48);
    printf("%c\n", p ? p[0] : '-');
    p = NULL; /* the only pointer is gone: definitely lost */
}

int main(void)
{
    lose();
    scrub_stack();
    return 0;
}
EOF
gcc -g -O0 -fno-builtin -o "$tmp/leak" "$tmp/leak.c"
status=0
/usr/bin/heaptrail check -- ./leak >/dev/null 2>"$tmp/check.err" || status=$?
[ "$status" -eq 23 ] || fail "check -- ./leak exited $status, not 23: $(cat "$tmp/check.err")"
grep -q 'bytes in 1 blocks are definitely lost' "$tmp/check.err" ||
  fail "check did not say '48 bytes in 1 blocks are definitely lost': $(cat "$tmp/check.err")"

step "pkg-config: shared and static"
program=$source_dir/tests/install/heap_program.c
[ "$(pkg-config --modversion heaptrail)" = "${version%-*}" ] || fail "pkg-config --modversion"
# shellcheck disable=SC2046
gcc -Wall -Werror -o "$tmp/heap_shared" "$program" $(pkg-config --cflags --libs heaptrail)
"$tmp/heap_shared" | grep -qx 'heap ok' || fail "the pkg-config program (shared) does not run"
readelf -d "$tmp/heap_shared" | grep -q 'NEEDED.*\[libheaptrail\.so\.0\]' ||
  fail "the shared build does not need libheaptrail.so.0"
# shellcheck disable=SC2046
gcc -static -Wall -o "$tmp/heap_static" "$program" \
  $(pkg-config --static --cflags --libs heaptrail) 2>"$tmp/static.log" ||
  fail "static link: $(cat "$tmp/static.log")"
"$tmp/heap_static" | grep -qx 'heap ok' || fail "the pkg-config program (static) does not run"

step "find_package(heaptrail)"
cmake -S "$source_dir/tests/install/cmake_project" -B "$tmp/user" >"$tmp/user.log" 2>&1 ||
  fail "configure: $(cat "$tmp/user.log")"
cmake --build "$tmp/user" >>"$tmp/user.log" 2>&1 || fail "build: $(cat "$tmp/user.log")"
"$tmp/user/user_shared" | grep -qx 'heap ok' || fail "heaptrail::heaptrail program"
"$tmp/user/user_static" | grep -qx 'heap ok' || fail "heaptrail::heaptrail_static program"

step "man pages and bash completion"
[ "$(man -w heaptrail)" = /usr/share/man/man1/heaptrail.1.gz ] || fail "man -w heaptrail: $(man -w heaptrail 2>&1)"
[ "$(man -w 3 heaptrail)" = /usr/share/man/man3/heaptrail.3.gz ] || fail "man -w 3 heaptrail"
# (_completion_loader returns 124 when it loaded something: "try again")
bash -c 'source /usr/share/bash-completion/bash_completion
         _completion_loader heaptrail; complete -p heaptrail' 2>&1 | grep -q '_heaptrail' ||
  fail "bash completion is not loaded for heaptrail"

step "apt-get purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${packages[@]}" >"$tmp/purge.log" 2>&1 ||
  fail "apt-get purge: $(tail -n 20 "$tmp/purge.log")"
for path in /usr/bin/heaptrail /usr/lib/heaptrail /usr/include/heaptrail \
  /usr/share/man/man1/heaptrail.1.gz /usr/share/bash-completion/completions/heaptrail; do
  [ ! -e "$path" ] || fail "$path is still there after purge"
done
if compgen -G '/usr/lib/*/libheaptrail*' >/dev/null || compgen -G '/usr/lib/*/cmake/heaptrail' >/dev/null; then
  fail "library files left after purge"
fi

echo "package-test: ok (make deb ${deb_seconds} s, all $(($(date +%s) - started)) s)"
