#!/usr/bin/env bash
# Formats every C source and header of the repository (git ls-files), or only the FILEs given,
# in place as .clang-format says: scripts/check-format.sh --apply, which finds clang-format and
# checks its config the same way for both.
exec "$(dirname "$0")/check-format.sh" --apply "$@"
