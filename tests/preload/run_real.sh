#!/usr/bin/env bash
# run_real.sh — runs a real program twice, plainly and under libheaptrail-preload.so, and
# requires the same standard output (each step's exit status included) from both runs.
#
# Usage: run_real.sh LIBRARY CASE [ARGS...]
#   CASE: python | sqlite3 | git | bash | gcc | program (ARGS: a program and its arguments)
# Both runs use the same fresh directory, HOME, TZ=UTC and LC_ALL=C; every command runs under
# `timeout 60`. No network. A missing program fails the test naming its Debian package.
set -u

here=$(cd "$(dirname "$0")" && pwd)
include_dir=$(cd "$here/../../include" && pwd)

die() {
    echo "run_real.sh: $*" >&2
    exit 1
}

[ $# -ge 2 ] || die "usage: run_real.sh LIBRARY CASE [ARGS...]"
library=$1
case_name=$2
shift 2
[ -f "$library" ] || die "no preload library at $library (build it first)"
library=$(cd "$(dirname "$library")" && pwd)/$(basename "$library")

# require PROGRAM DEBIAN-PACKAGE
require() {
    command -v "$1" >/dev/null 2>&1 ||
        die "'$1' is not installed: this test needs it (Debian package: $2)"
}
require timeout coreutils
require sha256sum coreutils

# Runs a command under the preload when PRELOAD is set, plainly otherwise; never inherits an
# outer LD_PRELOAD.
run() {
    timeout 60 env -u LD_PRELOAD ${PRELOAD:+LD_PRELOAD="$PRELOAD"} "$@"
}

# Prints "STEP exit=STATUS" so that both runs' statuses are compared too.
status() {
    echo "$1 exit=$2"
}

case_python() {
    run python3 -I -B "$here/py_exercise.py"
    status python3 $?
}

case_sqlite3() {
    run sqlite3 -batch test.db <"$here/sqlite_exercise.sql"
    status sqlite3 $?
}

case_bash() {
    run bash --norc --noprofile "$here/bash_exercise.sh"
    status bash $?
}

# Fixed identities and dates make every object id, and so the log, the same in both runs.
case_git() {
    export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 GIT_PAGER=cat PAGER=cat
    export GIT_AUTHOR_NAME="Ada Author" GIT_AUTHOR_EMAIL="ada@example.invalid"
    export GIT_COMMITTER_NAME="Cy Committer" GIT_COMMITTER_EMAIL="cy@example.invalid"
    export GIT_AUTHOR_DATE="2024-01-02T03:04:05+0000" GIT_COMMITTER_DATE="2024-01-02T03:04:05+0000"
    run git init -q -b main repo
    status init $?
    cd repo || return 1
    mkdir -p src docs
    for i in $(seq 1 60); do
        seq 1 $((i * 20)) | sed "s/^/line $i: /" >"src/file$i.txt"
    done
    printf '# readme\n' >docs/README
    run git add -A
    status add $?
    run git commit -q -m "first commit"
    status commit $?
    for i in $(seq 3 3 60); do
        sed -i "s/line $i:/changed $i:/" "src/file$i.txt"
    done
    export GIT_COMMITTER_DATE="2024-01-03T00:00:00+0000" GIT_AUTHOR_DATE="2024-01-03T00:00:00+0000"
    run git commit -q -a -m "second commit"
    status commit2 $?
    run git checkout -q -b topic
    status checkout $?
    printf 'topic work\n' >>docs/README
    run git rm -q src/file7.txt
    status rm $?
    run git commit -q -a -m "topic commit"
    status commit3 $?
    run git checkout -q main
    status checkout2 $?
    export GIT_COMMITTER_DATE="2024-01-04T00:00:00+0000" GIT_AUTHOR_DATE="2024-01-04T00:00:00+0000"
    run git merge -q --no-ff -m "merge topic" topic
    status merge $?
    run git log --format='%H %an <%ae> %ad %s' --date=iso-strict
    status log $?
    run git diff --stat HEAD~2 HEAD
    status diff $?
    run git grep -c "changed 3" -- src
    status grep $?
    run git gc -q
    status gc $?
    run git fsck --no-progress --strict
    status fsck $?
    run git count-objects -v | grep -E '^(count|in-pack|packs):'
    status count-objects "${PIPESTATUS[0]}"
    run git archive --format=tar HEAD | sha256sum
    status archive "${PIPESTATUS[0]}"
    run git rev-parse HEAD^{tree}
    status rev-parse $?
}

# The compiler's exit status, the object it writes and the produced programs' output. The
# compiled programs themselves run plainly: this case is about the compiler.
case_gcc() {
    run gcc -std=c11 -O2 -Wall -Wextra -o prog "$here/gcc_input.c"
    status gcc $?
    timeout 60 env -u LD_PRELOAD ./prog
    status prog $?
    run gcc -std=c11 -O2 -g -c -o prog.o "$here/gcc_input.c"
    status gcc-c $?
    sha256sum <prog.o
    run g++ -std=c++17 -O2 -Wall -Wextra -I"$include_dir" -o cxx "$here/cxx_threads.cpp" -pthread
    status g++ $?
    timeout 60 env -u LD_PRELOAD ./cxx 2 10
    status cxx $?
}

case_program() {
    run "$@"
    local code=$?
    status "$(basename "$1")" "$code"
}

case "$case_name" in
python) require python3 python3 ;;
sqlite3) require sqlite3 sqlite3 ;;
git) require git git ;;
bash) require bash bash ;;
gcc) require gcc gcc; require g++ g++ ;;
program)
    [ $# -ge 1 ] || die "program: no program given"
    case "$1" in
    */*) set -- "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" "${@:2}" ;;
    esac
    ;;
*) die "unknown case '$case_name'" ;;
esac

scratch=$(mktemp -d "${TMPDIR:-/tmp}/heaptrail-preload.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$scratch"' EXIT

# The library must really load: the loader only warns when it cannot preload.
maps=$(timeout 60 env LD_PRELOAD="$library" cat /proc/self/maps 2>&1)
case "$maps" in
*"$(basename "$library")"*) ;;
*) die "the loader did not preload $library: $maps" ;;
esac

for mode in plain preload; do
    rm -rf "$scratch/work" "$scratch/home"
    mkdir -p "$scratch/work" "$scratch/home"
    if [ "$mode" = preload ]; then PRELOAD=$library; else PRELOAD=; fi
    (
        cd "$scratch/work" || exit 1
        export HOME="$scratch/home" TZ=UTC LC_ALL=C XDG_CONFIG_HOME="$scratch/home/.config"
        "case_$case_name" "$@"
    ) >"$scratch/$mode.out" 2>"$scratch/$mode.err" </dev/null
done

show_stderr() {
    for mode in plain preload; do
        echo "--- $mode stderr (last 30 lines):"
        tail -n 30 "$scratch/$mode.err"
    done
}

if grep -v ' exit=0$' "$scratch/plain.out" | grep -q ' exit=[0-9]*$'; then
    echo "run_real.sh: $case_name fails even without the preload (a broken environment):" >&2
    grep ' exit=' "$scratch/plain.out" >&2
    show_stderr >&2
    exit 1
fi
if grep -q 'ld.so' "$scratch/preload.err"; then
    echo "run_real.sh: $case_name: the loader complained under the preload:" >&2
    show_stderr >&2
    exit 1
fi
if ! diff -u "$scratch/plain.out" "$scratch/preload.out" >"$scratch/diff"; then
    echo "run_real.sh: $case_name: output differs under LD_PRELOAD=$library" >&2
    head -n 60 "$scratch/diff" >&2
    show_stderr >&2
    exit 1
fi
lines=$(wc -l <"$scratch/plain.out")
echo "run_real.sh: $case_name: same output plain and preloaded ($lines lines)"
