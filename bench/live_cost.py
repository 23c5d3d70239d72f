#!/usr/bin/env python3
"""live_cost.py — what watching a program live costs it, next to recording it.

For sqlite3 (bench/scripts/sqlite_workload.sql) and python3 (bench/scripts/py_workload.py) runs,
interleaved, ROUNDS times each: the program alone; `heaptrail record --stacks` (the trace file
written by the program); `heaptrail record --stacks -o -` into a pipe (the stream read by
heaptrail and copied out); `record --pprof-every 1s` (the stream read into the analysis model,
a profile every second: the live path's whole work, as `top` and `start --pprof-every` do it, in
block mode so nothing is lost and a slow model would show as time); and heaptrack's recording.
Prints a Markdown table of median wall times with ratios to the plain run, and the events and
profiles of the live run; the programs' outputs must equal the plain run's.

Usage: python3 bench/live_cost.py [--build build] [--rounds 3]
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_cost import timed  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    heaptrail = os.path.join(args.build, "heaptrail")
    work = tempfile.mkdtemp(prefix="heaptrail-live-cost.")
    try:
        workloads = [
            ("sqlite3", ["sqlite3", ":memory:"],
             os.path.join(ROOT, "bench", "scripts", "sqlite_workload.sql")),
            ("python3", [sys.executable, os.path.join(ROOT, "bench", "scripts", "py_workload.py")],
             None),
        ]
        profiles = os.path.join(work, "profiles")
        tools = [
            ("plain", lambda c, t: c),
            ("record --stacks", lambda c, t: [heaptrail, "record", "-q", "--stacks", "-o", t,
                                              "--"] + c),
            ("record --stacks -o - (a pipe)",
             lambda c, t: "%s record -q --stacks -o - -- %s 2>&1 >/dev/null | cat > %s" % (
                 heaptrail, " ".join(c), t)),
            ("record --pprof-every 1s", lambda c, t: [heaptrail, "record", "--pprof-every", "1s",
                                                      "--pprof-dir", profiles, "-o", t, "--"] + c),
        ]
        if shutil.which("heaptrack"):
            tools.append(("heaptrack (recording)", lambda c, t: ["heaptrack", "-o", t] + c))
        results, notes = {}, {}
        for name, command, stdin in workloads:
            for _ in range(args.rounds):
                for tool, wrap in tools:
                    trace = os.path.join(work, "t")
                    wrapped = wrap(command, trace)
                    seconds, p = timed(wrapped, stdin)
                    if tool == "plain":
                        expected = p.stdout
                    elif "-o -" not in tool and "heaptrack" not in tool and p.stdout != expected:
                        sys.exit("%s under %s: the output differs from the plain run" % (name,
                                                                                       tool))
                    if "pprof" in tool:
                        said = re.search(rb"(\d+) profiles? in", p.stderr)
                        events = re.search(rb"([\d,]+) events, ([\d,]+) lost", p.stderr)
                        notes[name] = "%s profiles, %s events, %s lost" % (
                            said.group(1).decode() if said else "?",
                            events.group(1).decode() if events else "?",
                            events.group(2).decode() if events else "?")
                    results.setdefault((name, tool), []).append(seconds)
                    for leftover in os.listdir(work):
                        path = os.path.join(work, leftover)
                        (shutil.rmtree if os.path.isdir(path) else os.unlink)(path)
        names = [t for t, _ in tools]
        print("| workload | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for name, _, _ in workloads:
            plain = statistics.median(results[(name, "plain")])
            cells = []
            for tool in names:
                m = statistics.median(results[(name, tool)])
                cells.append("%.2f s" % m if tool == "plain" else "%.2f s (%.2f×)" % (m, m / plain))
            print("| %s | %s |" % (name, " | ".join(cells)))
        for name, note in notes.items():
            print("\n%s, live: %s" % (name, note))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
