#!/usr/bin/env bash
# install_test.sh BUILD SOURCE LIBDIR CC CMAKE — the installed tree, moved: installs BUILD's
# three components (runtime, library, development) into a DESTDIR under a temporary directory,
# moves the tree somewhere else, and checks from there that `record` finds its preload library
# beside itself, that the shared library exports the headers' HT_API functions under
# HEAPTRAIL_0 and nothing else, that pkg-config builds the heap-API program shared and static,
# that find_package(heaptrail) does too, that the man pages and bash completion are there; then
# that scripts/uninstall.sh removes every file an install put. Installing by component writes
# install_manifest_COMPONENT.txt, so `make install`'s install_manifest.txt is left alone.
set -euo pipefail
build=$1 source=$2 libdir=$3 cc=$4 cmake=$5

tmp=$(mktemp -d /tmp/heaptrail-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/heaptrail-test
fail() {
  echo "install_test: FAIL: $*" >&2
  exit 1
}
step() { echo "install_test: $*"; }

install_into() { # DESTDIR
  for component in runtime library development; do
    DESTDIR=$1 "$cmake" --install "$build" --prefix "$prefix" --component "$component" >/dev/null
  done
}

step "cmake --install (runtime, library, development) into a DESTDIR"
install_into "$tmp/stage"
moved=$tmp/elsewhere/deeper/heaptrail
mkdir -p "$(dirname "$moved")"
mv "$tmp/stage$prefix" "$moved"

step "the files, in the moved tree $moved"
for f in bin/heaptrail lib/heaptrail/libheaptrail-preload.so \
  "$libdir/libheaptrail.so.0.1.0" "$libdir/libheaptrail.so.0" "$libdir/libheaptrail.so" \
  "$libdir/libheaptrail.a" "$libdir/pkgconfig/heaptrail.pc" \
  "$libdir/cmake/heaptrail/heaptrail-config.cmake" \
  "$libdir/cmake/heaptrail/heaptrail-config-version.cmake" \
  include/heaptrail/heaptrail.h include/heaptrail/heap.h include/heaptrail/trace.h \
  include/heaptrail/events.h include/heaptrail/reader.h \
  share/man/man1/heaptrail.1 share/man/man3/heaptrail.3 \
  share/bash-completion/completions/heaptrail; do
  [ -e "$moved/$f" ] || fail "$f is not installed"
done
[ "$(readlink "$moved/$libdir/libheaptrail.so.0")" = libheaptrail.so.0.1.0 ] ||
  fail "libheaptrail.so.0 does not point to libheaptrail.so.0.1.0"

step "record from the moved tree uses the moved preload library"
env -u HEAPTRAIL_PRELOAD "$moved/bin/heaptrail" record -q -o "$tmp/env.trace" -- /usr/bin/env \
  >"$tmp/env.out"
expected=$(realpath "$moved/lib/heaptrail/libheaptrail-preload.so")
grep -qx "LD_PRELOAD=$expected" "$tmp/env.out" ||
  fail "record did not preload $expected: $(grep LD_PRELOAD "$tmp/env.out" || echo none)"
"$moved/bin/heaptrail" stats "$tmp/env.trace" >/dev/null || fail "stats cannot read the trace"

step "libheaptrail.so.0: SONAME and exported symbols"
lib=$moved/$libdir/libheaptrail.so.0.1.0
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libheaptrail.so.0 ] || fail "SONAME is '$soname'"
objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" && $4 != "*ABS*" { print $(NF - 1), $NF }' |
  sort >"$tmp/exported"
if awk '$1 != "HEAPTRAIL_0"' "$tmp/exported" | grep -q .; then
  fail "symbols outside HEAPTRAIL_0: $(awk '$1 != "HEAPTRAIL_0"' "$tmp/exported" | tr '\n' ' ')"
fi
awk '{ print $2 }' "$tmp/exported" | sort >"$tmp/exported.names"
cat "$moved"/include/heaptrail/*.h | tr '\n' ' ' | grep -o 'HT_API[^;]*;' |
  grep -o 'ht_[a-z_0-9]* *(' | grep -o 'ht_[a-z_0-9]*' | sort -u >"$tmp/declared"
[ -s "$tmp/declared" ] || fail "no HT_API declaration found in the headers"
diff "$tmp/declared" "$tmp/exported.names" >"$tmp/symbols.diff" ||
  fail "exported symbols differ from the headers' HT_API functions (< headers, > library):
$(cat "$tmp/symbols.diff")"

step "pkg-config: shared and static"
export PKG_CONFIG_PATH=$moved/$libdir/pkgconfig
pc=(pkg-config --define-variable=prefix="$moved")
[ "$("${pc[@]}" --modversion heaptrail)" = 0.1.0 ] || fail "pkg-config --modversion"
# shellcheck disable=SC2046
"$cc" -Wall -Werror -o "$tmp/heap_shared" "$source/tests/install/heap_program.c" \
  $("${pc[@]}" --cflags --libs heaptrail)
LD_LIBRARY_PATH=$moved/$libdir "$tmp/heap_shared" | grep -qx 'heap ok' ||
  fail "the program linked with libheaptrail.so does not run"
readelf -d "$tmp/heap_shared" | grep -q 'NEEDED.*\[libheaptrail\.so\.0\]' ||
  fail "the shared build does not need libheaptrail.so.0"
# shellcheck disable=SC2046
"$cc" -static -Wall -o "$tmp/heap_static" "$source/tests/install/heap_program.c" \
  $("${pc[@]}" --static --cflags --libs heaptrail) 2>"$tmp/static.log" ||
  fail "static link with pkg-config --static: $(cat "$tmp/static.log")"
"$tmp/heap_static" | grep -qx 'heap ok' || fail "the static program does not run"
if readelf -d "$tmp/heap_static" 2>/dev/null | grep -q NEEDED; then
  fail "the static program needs shared libraries"
fi
if [ "$libdir" = lib ]; then # --define-prefix: the prefix from the .pc file's own place
  [ "$(pkg-config --define-prefix --variable=prefix heaptrail)" = "$moved" ] ||
    fail "pkg-config --define-prefix gives $(pkg-config --define-prefix --variable=prefix heaptrail)"
fi

step "find_package(heaptrail) with CMAKE_PREFIX_PATH"
"$cmake" -S "$source/tests/install/cmake_project" -B "$tmp/user" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$moved" >"$tmp/user.log" 2>&1 || fail "configure: $(cat "$tmp/user.log")"
"$cmake" --build "$tmp/user" >>"$tmp/user.log" 2>&1 || fail "build: $(cat "$tmp/user.log")"
"$tmp/user/user_shared" | grep -qx 'heap ok' || fail "heaptrail::heaptrail program"
"$tmp/user/user_static" | grep -qx 'heap ok' || fail "heaptrail::heaptrail_static program"
readelf -d "$tmp/user/user_static" | grep -q 'libheaptrail' &&
  fail "user_static needs libheaptrail.so"

step "man pages and bash completion"
[ "$(MANPATH=$moved/share/man man -w heaptrail)" = "$moved/share/man/man1/heaptrail.1" ] ||
  fail "man -w heaptrail does not find the moved page"
[ "$(MANPATH=$moved/share/man man -w 3 heaptrail)" = "$moved/share/man/man3/heaptrail.3" ] ||
  fail "man -w 3 heaptrail does not find the moved page"
MANPATH=$moved/share/man man heaptrail 2>/dev/null | grep -q 'heaptrail check' ||
  fail "man heaptrail does not render"
bash -n "$moved/share/bash-completion/completions/heaptrail" || fail "completion syntax"

step "uninstall.sh removes every installed file"
install_into "$tmp/again"
for component in runtime library development; do
  DESTDIR=$tmp/again bash "$source/scripts/uninstall.sh" \
    "$build/install_manifest_$component.txt" >/dev/null
done
left=$(find "$tmp/again" \( -type f -o -type l \) -print)
[ -z "$left" ] || fail "left after uninstall: $left"
[ ! -e "$tmp/again$prefix/include/heaptrail" ] || fail "include/heaptrail left"

echo "install_test: ok"
