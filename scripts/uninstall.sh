#!/usr/bin/env bash
# uninstall.sh MANIFEST — `make uninstall`: removes every file that `cmake --install` listed in
# MANIFEST (install_manifest.txt: absolute paths under the prefix, without DESTDIR: give the
# install's DESTDIR again in the environment), then the directories of heaptrail's own that are
# left empty (include/heaptrail, lib/heaptrail, lib/.../cmake/heaptrail); shared directories
# (bin, lib, share/man/...) stay.
set -euo pipefail
manifest=${1:?usage: uninstall.sh BUILD/install_manifest.txt}
if [ ! -f "$manifest" ]; then
  echo "heaptrail: uninstall: no $manifest (nothing was installed from this build)" >&2
  exit 1
fi
dirs=()
destdir=${DESTDIR:-}
while IFS= read -r file || [ -n "$file" ]; do  # the last line has no newline
  [ -n "$file" ] || continue
  file=$destdir$file
  if [ -d "$file" ] && [ ! -L "$file" ]; then
    dirs+=("$file")
    continue
  fi
  if [ -e "$file" ] || [ -L "$file" ]; then
    echo "-- Removing: $file"
    rm -f -- "$file"
  fi
  dir=$(dirname -- "$file")
  [ "$(basename -- "$dir")" = heaptrail ] && dirs+=("$dir")
done <"$manifest"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] && rmdir --ignore-fail-on-non-empty -- "$dir"
done
exit 0
