#!/usr/bin/env python3
"""own_memory.py — heaptrail's own memory is not the program's.

The C library allocates thread-local storage for heaptrail's writer and control threads, and
libunwind allocates its set-up when stacks are recorded; none of that may show in a trace as the
program's blocks (rundown, leaks, peak). Checks, through `heaptrail record` and `report`:

  quiet   own_memory allocating nothing, recorded with and without stacks (libunwind and frame
          pointers) and in ring mode: no block at all, live at exit or at the peak
  leaks   own_memory leaving known blocks: the trace's live blocks at exit are exactly what the
          process heap itself holds, and what valgrind's memcheck finds in use at exit (skipped
          when valgrind is not installed)

Usage: own_memory.py --heaptrail BIN --program own_memory --work DIR
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def clean_env():
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("HEAPTRAIL") or key == "LD_PRELOAD":
            del env[key]
    return env


def run(command, expect=0):
    result = subprocess.run(command, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=120)
    check(result.returncode == expect, "%s exited %d\nstderr: %s" % (
        " ".join(command), result.returncode, result.stderr.decode(errors="replace")[-2000:]))
    return result


def record(args, name, options, mode):
    trace = os.path.join(args.work, name)
    result = run([args.heaptrail, "record", "-o", trace] + options + ["--", args.program, mode])
    report = json.loads(run([args.heaptrail, "report", "--format", "json", trace]).stdout)
    return report, result.stderr.decode(errors="replace")


VARIANTS = [("plain", []), ("stacks", ["--stacks"]), ("fp", ["--stacks=16", "--unwind", "fp"]),
            ("ring", ["--mode", "ring", "--stacks"])]


def case_quiet(args):
    for name, options in VARIANTS:
        report, _ = record(args, "quiet.%s.trace" % name, options, "quiet")
        s = report["summary"]
        numbers = {key: s[key] for key in ("leaked_blocks", "leaked_bytes", "peak_blocks",
                                           "peak_bytes", "rundown_blocks", "rundown_bytes",
                                           "tracer_leaked_blocks", "allocations")}
        check(all(value == 0 for value in numbers.values()),
              "%s: a program that allocates nothing has %s" % (name, numbers))


def memcheck_in_use(args):
    valgrind = shutil.which("valgrind")
    if not valgrind:
        return None
    result = run([valgrind, "--leak-check=full", "--show-leak-kinds=all",
                  args.program, "leaks"])
    text = result.stderr.decode(errors="replace")
    m = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", text)
    check(m, "memcheck's summary not understood:\n%s" % text[-2000:])
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


def case_leaks(args):
    reference = memcheck_in_use(args)
    if reference is None:
        print("valgrind not installed: the comparison with memcheck is skipped")
    for name, options in VARIANTS[:3]:
        report, stderr = record(args, "leaks.%s.trace" % name, options, "leaks")
        s = report["summary"]
        ours = (s["leaked_bytes"], s["leaked_blocks"])
        m = re.search(r"^heap (\d+) (\d+)$", stderr, re.M)
        check(m, "%s: the program did not report its heap:\n%s" % (name, stderr))
        heap = (int(m.group(2)), int(m.group(1)))
        check(ours == heap, "%s: the trace has %d B in %d blocks live at exit, the process heap "
              "%d B in %d blocks" % ((name,) + ours + heap))
        check(s["rundown_blocks"] == 0 and s["tracer_leaked_blocks"] == 0,
              "%s: blocks not made by the program: %d before tracing, %d of heaptrail's" % (
                  name, s["rundown_blocks"], s["tracer_leaked_blocks"]))
        if reference is not None:
            check(ours == reference, "%s: the trace has %d B in %d blocks live at exit, memcheck "
                  "%d B in %d blocks in use" % ((name,) + ours + reference))
        print("%s: %d B in %d blocks live at exit (memcheck: %s)" % (name, ours[0], ours[1],
                                                                     reference))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--heaptrail", required=True)
    parser.add_argument("--program", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("case", choices=["quiet", "leaks"])
    args = parser.parse_args()
    args.work = os.path.join(args.work, args.case)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    try:
        {"quiet": case_quiet, "leaks": case_leaks}[args.case](args)
    except Failure as failure:
        print("FAIL (%s): %s" % (args.case, failure), file=sys.stderr)
        return 1
    print("ok (%s)" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
