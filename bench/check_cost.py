#!/usr/bin/env python3
"""check_cost.py — what `heaptrail check` costs a CI job, next to the tools used as gates.

For each workload (sqlite3 on bench/scripts/sqlite_workload.sql, python3 on
bench/scripts/py_workload.py, and a C program that exits with 2 M blocks live, the leak scan's
worst case) runs, interleaved, ROUNDS times each: the program alone, `heaptrail check -q`
(recording with stacks, the scan at exit, the judgement), `heaptrail record -q --stacks`
(recording alone), valgrind's `--leak-check=full` (memcheck, the usual leak gate for
uninstrumented binaries) and heaptrack (recording only, no analysis). Prints a Markdown table of
median wall times and ratios to the plain run, and the outputs' checksums agree or the run
fails.

Usage: python3 bench/check_cost.py [--build build] [--rounds 3] [--no-valgrind]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LIVE_PROGRAM = r"""
#include <stdlib.h>
struct node { struct node *next; char pad[24]; };
static struct node *head;
int main(void) {
    for (long i = 0; i < 2000000; i++) {
        struct node *n = malloc(sizeof *n);
        n->next = head;
        head = n;
    }
    return 0;
}
"""


def timed(command, stdin_path, env=None):
    """Runs command (a list, or a shell line) on stdin_path's contents: (seconds, result)."""
    start = time.monotonic()
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
        p = subprocess.run(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, shell=isinstance(command, str))
    return time.monotonic() - start, p


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-valgrind", action="store_true")
    args = parser.parse_args()
    heaptrail = os.path.join(args.build, "heaptrail")
    work = tempfile.mkdtemp(prefix="heaptrail-check-cost.")
    try:
        live = os.path.join(work, "live")
        subprocess.run(["gcc", "-O1", "-o", live, "-x", "c", "-"], input=LIVE_PROGRAM.encode(),
                       check=True)
        workloads = [
            ("sqlite3", ["sqlite3", ":memory:"],
             os.path.join(ROOT, "bench", "scripts", "sqlite_workload.sql")),
            ("python3", [sys.executable, os.path.join(ROOT, "bench", "scripts", "py_workload.py")],
             None),
            ("2 M blocks live at exit", [live], None),
        ]
        tools = [("plain", lambda c, t: c),
                 ("heaptrail check", lambda c, t: [heaptrail, "check", "-q", "--trace", t,
                                                   "--"] + c),
                 ("heaptrail record --stacks", lambda c, t: [heaptrail, "record", "-q",
                                                             "--stacks", "-o", t, "--"] + c)]
        if not args.no_valgrind and shutil.which("valgrind"):
            tools.append(("memcheck --leak-check=full",
                          lambda c, t: ["valgrind", "-q", "--leak-check=full"] + c))
        if shutil.which("heaptrack"):
            tools.append(("heaptrack (recording)", lambda c, t: ["heaptrack", "-o", t] + c))
        results = {}
        for name, command, stdin in workloads:
            for _ in range(args.rounds):
                for tool, wrap in tools:
                    trace = os.path.join(work, "t")
                    seconds, p = timed(wrap(command, trace), stdin)
                    if tool == "plain":
                        expected = p.stdout
                    elif p.stdout != expected and tool != "heaptrack (recording)":
                        sys.exit("%s under %s: the output differs from the plain run" % (name,
                                                                                       tool))
                    results.setdefault((name, tool), []).append(seconds)
                    for leftover in os.listdir(work):
                        if leftover != "live":
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
                cells.append("%.2f s" % m if tool == "plain" else "%.2f s (%.1f×)" % (m, m / plain))
            print("| %s | %s |" % (name, " | ".join(cells)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
