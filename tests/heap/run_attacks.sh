#!/usr/bin/env bash
# Runs every attack of attack_malloc under the preload library: each must die of SIGABRT
# after exactly one line on stderr naming heaptrail; none may be exploited or go unnoticed.
# With HEAPTRAIL_TERMINATE_ON_CORRUPTION=0 the process must survive, unexploited.
# Usage: run_attacks.sh PRELOAD_LIBRARY ATTACK_MALLOC
set -u
preload=$1 program=$2
attacks="poison poison-lfh overflow-16 overflow-32 overflow-freed overflow-back-end unlink unlink-fill
double-free double-free-scrubbed double-free-back-end header-replay header-replay-back-end
header-smash forged-size"
failed=0 passed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for attack in $attacks; do
  LD_PRELOAD=$preload timeout 30 "$program" "$attack" >"$work/out" 2>"$work/err"
  status=$?
  lines=$(wc -l <"$work/err")
  if [ $status -eq 134 ] && [ "$lines" -eq 1 ] && grep -q '^heaptrail: heap corruption' "$work/err"; then
    passed=$((passed + 1))
  else
    echo "FAIL $attack: status $status, stdout: $(cat "$work/out"), stderr: $(head -c 300 "$work/err")"
    failed=$((failed + 1))
  fi
  HEAPTRAIL_TERMINATE_ON_CORRUPTION=0 LD_PRELOAD=$preload timeout 30 "$program" "$attack" \
    >"$work/out" 2>"$work/err"
  status=$?
  if [ $status -eq 0 ]; then
    passed=$((passed + 1))
  else
    echo "FAIL $attack (termination off): status $status, stdout: $(cat "$work/out"), stderr: $(head -c 300 "$work/err")"
    failed=$((failed + 1))
  fi
done
echo "attacks: $passed passed, $failed failed"
[ $failed -eq 0 ]
