#!/usr/bin/env bash
# start_rundown.sh — a session the preload library starts from the environment (in its
# constructor, before main) begins with a rundown of the process heap: the heap's rundown
# provider is registered before any constructor can start a session.
#
# Usage: start_rundown.sh LIBRARY HEAPTRAIL
set -u
[ $# -eq 2 ] || { echo "usage: start_rundown.sh LIBRARY HEAPTRAIL" >&2; exit 1; }
library=$1
heaptrail=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/heaptrail-rundown.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

timeout 60 env -u LD_PRELOAD LD_PRELOAD="$library" HEAPTRAIL_OUTPUT="$work/start.trace" true ||
    { echo "start_rundown.sh: the traced program failed" >&2; exit 1; }
heaps=$(timeout 60 "$heaptrail" dump "$work/start.trace" | grep -c ' RUNDOWN_HEAP ')
if [ "$heaps" -lt 1 ]; then
    echo "start_rundown.sh: no RUNDOWN_HEAP record in a session started at load" >&2
    exit 1
fi
echo "start_rundown.sh: $heaps heap(s) in the start's rundown"
