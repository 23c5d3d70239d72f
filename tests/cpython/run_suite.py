#!/usr/bin/env python3
"""CPython's regression suite (regrtest) under the preload library, compared with glibc.

Runs `python3.11 -m test` plain, with LD_PRELOAD=libheaptrail-preload.so, and with it plus
PYTHONMALLOC=malloc. A module that passes plain and not preloaded is heaptrail's failure (exit 1);
modules that fail or are skipped plain on this machine are listed, never counted. The outcomes
are regrtest's own: this file runs itself inside the interpreter under test (--driver) and
records every result regrtest accumulates, one JSON line each.
"""
import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time

# Every regrtest resource but those that need audio hardware, a display or gigabytes of disk;
# network tests without a network skip what they cannot reach.
DEFAULT_RESOURCES = "all,-largefile,-audio,-gui"
MODES = {
    "plain": {},
    "preload": {"LD_PRELOAD": None},
    "preload-malloc": {"LD_PRELOAD": None, "PYTHONMALLOC": "malloc"},
}
# regrtest's results to the states this report uses: result classes up to Python 3.11.6
# (Debian 12's 3.11.2: test.libregrtest.runtest), State values from 3.11.7 and 3.12 on.
STATES = {
    "Passed": "passed", "Failed": "failed", "UncaughtException": "failed", "RefLeak": "failed",
    "EnvChanged": "env changed", "ChildError": "crashed", "Timeout": "timed out",
    "Skipped": "skipped", "ResourceDenied": "resource denied", "DidNotRun": "ran no tests",
    "Interrupted": "interrupted",
    "PASSED": "passed", "FAILED": "failed", "UNCAUGHT_EXC": "failed", "REFLEAK": "failed",
    "ENV_CHANGED": "env changed", "WORKER_FAILED": "crashed", "WORKER_BUG": "crashed",
    "TIMEOUT": "timed out", "SKIPPED": "skipped", "RESOURCE_DENIED": "resource denied",
    "DID_NOT_RUN": "ran no tests", "INTERRUPTED": "interrupted",
}
FAILED = ("failed", "env changed", "crashed", "timed out", "interrupted")
SKIPPED = ("skipped", "resource denied", "ran no tests")


def driver(results_path, regrtest_args):
    """Inside the interpreter under test: regrtest's main with each result also recorded."""
    # As Lib/test/regrtest.py does: this directory must not shadow the test package's modules.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    # By name: the package's own `main` attribute is the function, hiding the module.
    regrtest = importlib.import_module("test.libregrtest.main")

    # Progress reaches the log as it happens, not when a pipe's buffer fills.
    sys.stdout.reconfigure(line_buffering=True)
    out = open(results_path, "a", encoding="utf-8")

    # One line per result, written as it arrives, so a main process that dies keeps what it
    # had; a rerun (-w) result follows the first and replaces it.
    def record(result, name, state, seconds, rerun):
        out.write(json.dumps({
            "module": name, "state": STATES.get(state, state), "rerun": bool(rerun),
            "seconds": round(seconds or 0.0, 3),
            "errors": getattr(result, "errors", None) or [],
            "failures": getattr(result, "failures", None) or [],
        }) + "\n")
        out.flush()

    if hasattr(regrtest.Regrtest, "accumulate_result"):
        accumulate = regrtest.Regrtest.accumulate_result

        def accumulate_old(self, result, rerun=False):
            record(result, result.name, type(result).__name__, result.duration_sec, rerun)
            return accumulate(self, result, rerun=rerun)
        regrtest.Regrtest.accumulate_result = accumulate_old
    else:
        from test.libregrtest.results import TestResults
        accumulate = TestResults.accumulate_result

        def accumulate_new(self, result, runtests):
            record(result, result.test_name, result.state, result.duration, runtests.rerun)
            return accumulate(self, result, runtests)
        TestResults.accumulate_result = accumulate_new
    sys.argv[1:] = regrtest_args
    regrtest.main()


def check_interpreter(python):
    """The tests must be the interpreter's own: its stdlib's test package, with test modules."""
    probe = ("import os, sys, sysconfig, test.libregrtest, test.test_os as t;"
             "stdlib = os.path.realpath(sysconfig.get_paths()['stdlib']);"
             "sys.exit(0 if os.path.realpath(t.__file__).startswith(stdlib + os.sep) else 3)")
    try:
        result = subprocess.run([python, "-c", probe], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=mode_environment("plain", None))
    except OSError as error:
        return "cannot run %s: %s" % (python, error.strerror)
    if result.returncode == 3:
        return "%s imports test modules from outside its own standard library" % python
    if result.returncode != 0:
        return ("%s has no regression tests (Debian: apt-get install libpython3.11-testsuite)"
                % python)
    return None


def mode_environment(mode, library):
    # The suite checks the interpreter's defaults: a PYTHONDONTWRITEBYTECODE or PYTHONUNBUFFERED
    # in the caller's environment fails tests of test_compileall and test_cmd_line by itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("LD_PRELOAD", None)
    for key, value in MODES[mode].items():
        env[key] = library if key == "LD_PRELOAD" else value
    return env


def run_mode(mode, args, regrtest_args):
    """Runs regrtest once, its output to the terminal and WORK/MODE.log; returns the results."""
    results_path = os.path.join(args.work, mode + ".jsonl")
    log_path = os.path.join(args.work, mode + ".log")
    if os.path.exists(results_path):
        os.unlink(results_path)
    command = [args.python, os.path.abspath(__file__), "--driver", results_path, "--",
               *regrtest_args]
    print("== %s: %s" % (mode, " ".join(command)), flush=True)
    start = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=mode_environment(mode, args.library))
        try:
            for line in process.stdout:
                log.write(line)
                if not args.quiet:
                    sys.stdout.buffer.write(line)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass  # regrtest got the SIGINT too: it stops its workers and exits with 130
        returncode = process.wait()
    seconds = time.monotonic() - start
    final, first = load_results(results_path)
    return {"mode": mode, "returncode": returncode, "seconds": seconds, "final": final,
            "first": first, "log": log_path}


def load_results(path):
    """Each module's final record (after a rerun) and its first, from a driver's JSON lines."""
    final, first = {}, {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as results:
            for line in results:
                record = json.loads(line)
                final[record["module"]] = record
                if not record["rerun"]:
                    first[record["module"]] = record
    return final, first


def earlier_plain(args):
    """Without the plain mode, the plain results an earlier run left in WORK, if any."""
    path = os.path.join(args.work, "plain.jsonl")
    final, first = load_results(path)
    if not final:
        return None
    if args.tests:
        final = {m: r for m, r in final.items() if m in args.tests}
    for module in args.exclude:
        final.pop(module, None)
    print("== plain: the results of an earlier run, %s" % path, flush=True)
    return {"mode": "plain", "returncode": 0, "seconds": 0.0, "final": final, "first": first,
            "log": os.path.join(args.work, "plain.log")}


def counts(run):
    states = [record["state"] for record in run["final"].values()]
    flaky = [m for m, r in run["final"].items()
             if r["rerun"] and r["state"] == "passed"]
    return {"run": len(states), "passed": states.count("passed"),
            "failed": sum(s in FAILED for s in states),
            "skipped": sum(s in SKIPPED for s in states), "flaky": len(flaky)}


def minutes(seconds):
    return "%d min %02d s" % (seconds // 60, seconds % 60)


def traceback_tail(text, lines=4):
    # The innermost frames and the exception: the part that says what went wrong.
    rows = [row for row in text.rstrip().splitlines() if row.strip()]
    return rows[-lines:]


def report(runs, plain):
    """Prints the summary; returns the exit status (see main's epilog)."""
    print("\n== CPython regression suite: summary")
    print("%-15s %5s %7s %7s %8s %6s  %s" % ("mode", "run", "passed", "failed", "skipped",
                                          "flaky", "time"))
    for run in runs:
        c = counts(run)
        print("%-15s %5d %7d %7d %8d %6d  %s" % (run["mode"], c["run"], c["passed"], c["failed"],
                                              c["skipped"], c["flaky"], minutes(run["seconds"])))
    for run in runs:
        flaky = sorted(m for m, r in run["final"].items() if r["rerun"] and r["state"] == "passed")
        if flaky:
            print("%s: passed when re-run: %s" % (run["mode"], " ".join(flaky)))
    not_ours = sorted((m, r["state"]) for m, r in plain["final"].items() if r["state"] != "passed")
    if not_ours:
        print("not passing under plain glibc here, not counted (%d):" % len(not_ours))
        for state in sorted({s for _, s in not_ours}):
            print("  %s: %s" % (state, " ".join(m for m, s in not_ours if s == state)))
    # regrtest exits with 2 when a module failed (counted below when it counts); anything else
    # is regrtest itself crashing, interrupted or killed: heaptrail's failure when preloaded.
    broken = [run for run in runs if run["returncode"] not in (0, 2) or not run["final"]]
    for run in broken:
        print("%s: regrtest exited with %d (log: %s)" % (run["mode"], run["returncode"],
                                                        run["log"]))
    if plain in broken:
        print("no plain results to compare with")
        return 2
    passing = sorted(m for m, r in plain["final"].items() if r["state"] == "passed")
    regressions = [(run, module, run["final"].get(module))
                   for run in runs if run is not plain for module in passing
                   if run["final"].get(module, {}).get("state") != "passed"]
    if not regressions and not broken:
        if any(run is not plain for run in runs):
            print("every module that passes under glibc passes under the preload library")
        return 0
    print("FAILED under the preload library (pass under glibc): %d" % len(regressions))
    for run, module, record in regressions:
        state = record["state"] if record else "no result"
        print("  %s %s: %s (log: %s)" % (run["mode"], module, state, run["log"]))
        first = run["first"].get(module) or record or {}
        for test, text in (first.get("errors") or []) + (first.get("failures") or []):
            print("    %s" % test)
            for row in traceback_tail(text):
                print("      | %s" % row)
    return 1


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--driver":
        rest = sys.argv[3:]
        return driver(sys.argv[2], rest[1:] if rest[:1] == ["--"] else rest)

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when every module passing under glibc passes in every preloaded "
               "mode, 1 when one does not, 2 on a usage or set-up error.")
    parser.add_argument("--library", required=True, help="libheaptrail-preload.so")
    parser.add_argument("--python", default="/usr/bin/python3.11",
                        help="the interpreter whose regression tests run (default: %(default)s)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated, of %s (default: all; plain first). Without "
                             "plain, the plain results of an earlier run in --work are the "
                             "reference" % ", ".join(MODES))
    parser.add_argument("--jobs", type=int, default=2, help="regrtest -j (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=1200,
                        help="seconds per test module before regrtest kills it (default: "
                             "%(default)s)")
    parser.add_argument("--use", default=DEFAULT_RESOURCES,
                        help="regrtest -u resources (default: %(default)s)")
    parser.add_argument("--exclude", action="append", default=[], metavar="MODULE",
                        help="leave this module out (regrtest -x); repeatable")
    parser.add_argument("--ignore", action="append", default=[], metavar="PATTERN",
                        help="leave out the tests whose id or a part of it matches this "
                             "pattern, e.g. a class (regrtest -i); repeatable")
    parser.add_argument("--work", default="cpython-suite",
                        help="directory for each mode's log and results (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="regrtest's output to the logs only")
    parser.add_argument("tests", nargs="*", help="test modules (default: the whole suite)")
    args = parser.parse_args()

    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error("unknown mode %s" % ", ".join(unknown) if unknown else "no mode")
    modes.sort(key=list(MODES).index)
    args.library = os.path.abspath(args.library)
    if not os.path.isfile(args.library):
        parser.error("no preload library at %s (build it first)" % args.library)
    problem = check_interpreter(args.python)
    if problem:
        print("run_suite.py: " + problem, file=sys.stderr)
        return 2
    if args.tests and args.exclude:
        parser.error("name test modules or exclude some, not both")
    os.makedirs(args.work, exist_ok=True)
    args.work = os.path.abspath(args.work)

    # -w: a failed module is run again, verbosely, so a flaky one is told from a broken one.
    regrtest_args = ["-j", str(args.jobs), "--timeout", str(args.timeout), "-u", args.use, "-w"]
    for pattern in args.ignore:
        regrtest_args += ["-i", pattern]
    if args.exclude:
        regrtest_args += ["-x", *args.exclude]
    else:
        regrtest_args += args.tests
    plain = None if "plain" in modes else earlier_plain(args)
    if "plain" not in modes and plain is None:
        parser.error("without the plain mode, --work must hold an earlier run's plain results")
    runs = []
    for mode in modes:
        runs.append(run_mode(mode, args, regrtest_args))
        if runs[-1]["returncode"] in (130, -signal.SIGINT):
            break
    plain = plain or runs[0]
    return report(runs, plain)


if __name__ == "__main__":
    sys.exit(main())
