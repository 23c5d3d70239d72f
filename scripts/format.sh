#!/usr/bin/env bash
# Formats every C source and header of the repository (git ls-files), or only the FILEs given,
# in place as .clang-format says (clang-format -i). The config is written for clang-format 14
# (Debian 12); CLANG_FORMAT names another binary. scripts/check-format.sh checks without
# changing anything.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
clang_format=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [ -z "$clang_format" ]; then
  echo "heaptrail: format: clang-format not found (apt-get install clang-format)" >&2
  exit 2
fi
# Without the file, --style=file would quietly fall back to another style; a config this
# clang-format cannot read would make every file look unformatted.
if [ ! -f "$root/.clang-format" ] ||
   ! "$clang_format" --style=file --assume-filename="$root/x.c" --dump-config >/dev/null; then
  echo "heaptrail: format: $root/.clang-format missing or not readable by $clang_format" >&2
  exit 2
fi

# FILEs are taken as given (relative to the current directory); by default, every C file.
if [ $# -gt 0 ]; then
  files=("$@")
else
  cd "$root"
  mapfile -t files < <(git ls-files -- '*.c' '*.h')
fi
[ ${#files[@]} -eq 0 ] && exit 0
"$clang_format" --style=file -i -- "${files[@]}"
