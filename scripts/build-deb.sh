#!/usr/bin/env bash
# build-deb.sh — `make deb`: the Debian packages heaptrail, libheaptrail0 and libheaptrail-dev
# built with dpkg-buildpackage from debian/, then checked with lintian. The source tree (the
# files git knows, committed or not, else everything outside build directories) is copied to
# OUT/deb/heaptrail-VERSION and built there, so the work tree gets no debian/ build state and
# no obj-* directory; the .deb files are copied to OUT (default build/). Installs what it needs
# first (scripts/deps.sh deb; as root). DEB_BUILD_OPTIONS defaults to "parallel=2 noautodbgsym".
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build}

scripts/deps.sh deb

version=$(dpkg-parsechangelog -S Version)
upstream=${version%-*}
work=$out/deb
src=$work/heaptrail-$upstream
rm -rf "$work"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | tar --null -T - -cf - | tar -C "$src" -xf -
else
  tar --exclude='./build*' --exclude='./obj-*' --exclude='./debian/.debhelper' -cf - . |
    tar -C "$src" -xf -
fi

echo "heaptrail: dpkg-buildpackage $version (log in $work/build.log)"
start=$(date +%s)
(
  cd "$src"
  DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=2 noautodbgsym} \
    dpkg-buildpackage -b -uc -us
) >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; exit 1; }
echo "heaptrail: built in $(($(date +%s) - start)) s"

debs=()
for f in "$work"/*_"$version"_*.deb; do
  cp "$f" "$out/"
  debs+=("$out/$(basename "$f")")
done
printf 'heaptrail: %s\n' "${debs[@]}"

echo "heaptrail: lintian"
lintian --info "${debs[@]}" | tee "$work/lintian.txt"
