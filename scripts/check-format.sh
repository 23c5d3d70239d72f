#!/usr/bin/env bash
# Checks that every C source and header of the repository (git ls-files), or only the FILEs
# given, is formatted as .clang-format says: clang-format --dry-run --Werror on each, the files
# it would change listed on stderr. Exit status 0 if none would change, 1 if some would, 2 if
# clang-format or its config is missing. The config is written for clang-format 14 (Debian 12):
# another major version may format some constructs differently, so CLANG_FORMAT names the
# binary to use if needed. With --apply first (scripts/format.sh), the files are rewritten in
# place (clang-format -i) instead of checked.
set -euo pipefail

apply=0
if [ "${1:-}" = --apply ]; then
  apply=1
  shift
fi

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
clang_format=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [ -z "$clang_format" ]; then
  echo "heaptrail: check-format: clang-format not found (apt-get install clang-format)" >&2
  exit 2
fi
# Without the file, --style=file would quietly fall back to another style; a config this
# clang-format cannot read would make every file look unformatted.
if [ ! -f "$root/.clang-format" ] ||
   ! "$clang_format" --style=file --assume-filename="$root/x.c" --dump-config >/dev/null; then
  echo "heaptrail: check-format: $root/.clang-format missing or not readable by $clang_format" >&2
  exit 2
fi

# FILEs are taken as given (relative to the current directory); by default, every C file.
if [ $# -gt 0 ]; then
  files=("$@")
else
  cd "$root"
  mapfile -t files < <(git ls-files -- '*.c' '*.h')
fi

if [ $apply -eq 1 ]; then
  [ ${#files[@]} -eq 0 ] || "$clang_format" --style=file -i -- "${files[@]}"
  exit 0
fi

unformatted=()
for f in "${files[@]}"; do
  if ! "$clang_format" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    unformatted+=("$f")
  fi
done

if [ ${#unformatted[@]} -ne 0 ]; then
  echo "heaptrail: check-format: ${#unformatted[@]} of ${#files[@]} files need formatting" \
       "(scripts/format.sh FILE... applies it):" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  exit 1
fi
echo "heaptrail: check-format: ${#files[@]} files formatted as .clang-format says"
