#!/usr/bin/env python3
"""run.py — runs the allocator benchmark and writes its table.

Owns the list of workloads and allocators, the measurement (wall time with perf_counter
around each run, peak RSS as the workload's ru_maxrss from wait4, taken by build/bench_launch),
the checks (exit status 0, stdout checksum equal to glibc's, malloc really replaced) and the
markdown report, which replaces the block between the allocator-table markers in
docs/PERFORMANCE.md. Allocators run interleaved, round by round; each cell is the median
over rounds. Standard library only.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# Each run gets its own process group, so a timeout kills the workload with its launcher.
OWN_PROCESS_GROUP = ({"process_group": 0} if sys.version_info >= (3, 11)
                     else {"preexec_fn": os.setpgrp})
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
BEGIN_MARK = "<!-- allocator-table:begin -->"
END_MARK = "<!-- allocator-table:end -->"

# name -> library to preload (None: the C library's own malloc). heaptrail's path depends on
# the build directory and is filled in by main().
ALLOCATORS = {
    "glibc": None,
    "mimalloc": LIBDIR + "/libmimalloc.so.2",
    "jemalloc": LIBDIR + "/libjemalloc.so.2",
    "tcmalloc": LIBDIR + "/libtcmalloc_minimal.so.4",
    "heaptrail": "libheaptrail-preload.so",
}
SUBJECT = "heaptrail"
SNAPSHOTS = {}  # allocator -> description of the build that was copied
ORIGINALS = {}  # copied library path -> the path it was copied from
REFERENCE = "glibc"
BASELINE = "mimalloc"

# Workloads. "binary" ones are bench_<name> in the build directory, run with no arguments (the
# defaults compiled in) or with `tiny` under --tiny; the tiny arguments match the CTest smoke
# test in bench/CMakeLists.txt. "script" ones run under --python, "stdin" ones under sqlite3.
WORKLOADS = [
    {"name": "churn", "binary": "bench_churn", "tiny": ["1", "20000", "1"],
     "what": "1 thread, mixed sizes 16 B-1 MiB, 10^4-10^5 live blocks"},
    {"name": "xthread", "binary": "bench_xthread", "tiny": ["4", "20000", "1"],
     "what": "2 producers allocate, 2 consumers free, bounded queue"},
    {"name": "larson", "binary": "bench_larson", "tiny": ["2", "30000", "1"],
     "what": "2 chains of slot arrays handed to a new thread every 10^4 steps"},
    {"name": "small", "binary": "bench_small", "tiny": ["1", "50000", "1"],
     "what": "2 x 2^20 objects of 8-64 B, bulk build, scattered teardown"},
    {"name": "realloc", "binary": "bench_realloc", "tiny": ["1", "30000", "1"],
     "what": "32 interleaved string builders, exact and doubling growth"},
    {"name": "python", "script": "bench/scripts/py_workload.py", "tiny": ["0.05"],
     "env": {"PYTHONHASHSEED": "0"},
     "what": "CPython: dicts, strings, lists, json (pymalloc left on)"},
    {"name": "sqlite", "stdin": "bench/scripts/sqlite_workload.sql",
     "what": "sqlite3 :memory: 200k inserts, an index, grouped queries"},
]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Run the allocator workloads under each allocator (LD_PRELOAD), "
                    "interleaved, and report median time and peak RSS.")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds; each runs every allocator once per workload (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="1 round, for a smoke check; does not touch the docs")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny workload arguments (correctness only); does not touch the docs")
    parser.add_argument("--only", metavar="WORKLOADS",
                        help="comma-separated workloads (default: all: %s)"
                             % ",".join(w["name"] for w in WORKLOADS))
    parser.add_argument("--allocators", metavar="NAMES",
                        help="comma-separated allocators (default: all: %s)"
                             % ",".join(ALLOCATORS))
    parser.add_argument("--also", metavar="NAME=LIBRARY", action="append", default=[],
                        help="one more allocator to preload, e.g. another heaptrail build "
                             "(before=/tmp/old/libheaptrail-preload.so); repeatable; the table "
                             "gains a heaptrail / NAME ratio column")
    parser.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    parser.add_argument("--docs", metavar="FILE",
                        help="PERFORMANCE.md whose allocator section is replaced (default: "
                             "docs/PERFORMANCE.md, only on full runs of every workload and "
                             "allocator)")
    parser.add_argument("--no-docs", action="store_true", help="never touch the docs")
    parser.add_argument("--json", metavar="FILE",
                        help="raw per-run results (default: bench/results/last-run.json)")
    parser.add_argument("--build-dir", metavar="DIR", default=os.path.join(REPO, "build"),
                        help="where bench_* and libheaptrail-preload.so are (default: build)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds before a run is killed and counted as failed (default 120)")
    parser.add_argument("--python", metavar="EXE",
                        default=os.path.realpath(sys.executable),
                        help="interpreter for the python workload (default: this one)")
    parser.add_argument("--list", action="store_true", help="list workloads and allocators")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.workloads = pick(parser, "--only", args.only, [w["name"] for w in WORKLOADS])
    args.extra = {}
    for item in args.also:
        name, sep, library = item.partition("=")
        if not sep or not name or not library or name in ALLOCATORS or name in args.extra:
            parser.error("--also %s: expected a new NAME=LIBRARY" % item)
        args.extra[name] = os.path.abspath(library)
    args.allocator_names = pick(parser, "--allocators", args.allocators, list(ALLOCATORS))
    args.allocator_names += list(args.extra)
    full = not (args.quick or args.tiny or args.only or args.allocators)
    if args.no_docs:
        args.docs = None
    elif args.docs is None and full:
        args.docs = os.path.join(REPO, "docs", "PERFORMANCE.md")
    if args.json is None:
        args.json = os.path.join(REPO, "bench", "results", "last-run.json")
    return args


def pick(parser, option, text, known):
    if not text:
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error("%s: unknown %s (known: %s)" % (option, ",".join(unknown), ",".join(known)))
    return [n for n in known if n in names]


def shown_path(path):
    """Repository-relative when inside the repository, absolute otherwise."""
    path = os.path.abspath(path)
    if path.startswith(REPO + os.sep):
        return os.path.relpath(path, REPO)
    return path


def workload_command(workload, args):
    """(argv, stdin path, extra env) for one run, or a string saying why it cannot run."""
    extra = workload.get("tiny", []) if args.tiny else []
    if "binary" in workload:
        exe = os.path.join(args.build_dir, workload["binary"])
        if not os.access(exe, os.X_OK):
            return "%s not built (run make)" % shown_path(exe)
        return [exe] + extra, None, {}
    if "script" in workload:
        if not os.access(args.python, os.X_OK):
            return "python interpreter %s not found" % args.python
        return ([args.python, os.path.join(REPO, workload["script"])] + extra, None,
                workload.get("env", {}))
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        return "sqlite3 not installed"
    return [sqlite, ":memory:"], os.path.join(REPO, workload["stdin"]), {}


def child_env(extra):
    """The environment for every run: no preload (bench_launch sets the allocator's in the
    workload only) and no HEAPTRAIL* variables, so tracing stays off."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("HEAPTRAIL")}
    env.update(extra)
    return env


def reproduce_line(argv, stdin, library, extra):
    words = ["%s=%s" % (k, shlex.quote(v)) for k, v in sorted(extra.items())]
    if library:
        words.append("LD_PRELOAD=" + shlex.quote(library))
    line = " ".join(words + [shlex.quote(a) for a in argv])
    if stdin:
        line += " < " + shlex.quote(stdin)
    return line


def run_once(launcher, argv, stdin, env, library, timeout):
    """One run through bench_launch: wall seconds (perf_counter around the launcher), the
    workload's peak RSS in KiB (its own ru_maxrss, which the launcher gets from wait4), exit
    code (negative: killed by that signal), stdout and stderr."""
    stdin_file = open(stdin, "rb") if stdin else subprocess.DEVNULL
    timed_out = []
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                tempfile.TemporaryDirectory() as scratch:
            result_path = os.path.join(scratch, "result")
            command = [launcher, result_path, library or "-"] + argv
            start = time.perf_counter()
            proc = subprocess.Popen(command, stdin=stdin_file, stdout=out, stderr=err, env=env,
                                    **OWN_PROCESS_GROUP)

            def kill():
                timed_out.append(True)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
            _, status, _ = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            result = {"wall": wall, "rss_kib": None, "code": proc.returncode,
                      "timed_out": bool(timed_out), "stdout": out.read(), "stderr": err.read()}
            try:
                with open(result_path) as measured:
                    rss_kib, wall_ns, child_status, cpu_us = (
                        int(f) for f in measured.read().split())
                result.update(rss_kib=rss_kib, launcher_wall=wall_ns / 1e9, cpu=cpu_us / 1e6,
                              code=os.waitstatus_to_exitcode(child_status))
            except (OSError, ValueError):
                result["launcher_failed"] = True
            return result
    finally:
        if stdin:
            stdin_file.close()


def checksum_of(stdout):
    return hashlib.sha256(stdout).hexdigest()[:16]


def judge(result, reference):
    """None when the run is good, else a short reason."""
    if result["timed_out"]:
        return "timeout"
    if result.get("launcher_failed"):
        return "launcher failed (exit %d)" % result["code"]
    if result["code"] < 0:
        return "signal %d" % -result["code"]
    if result["code"] != 0:
        return "exit %d" % result["code"]
    if b"cannot be preloaded" in result["stderr"]:
        return "preload failed"
    if reference is not None and checksum_of(result["stdout"]) != reference:
        return "checksum"
    return None


def describe_failure(result, reason):
    text = result["stderr"].decode(errors="replace").strip().splitlines()
    tail = " | ".join(text[-3:]) if text else ""
    got = result["stdout"].decode(errors="replace").strip().splitlines()
    if reason == "checksum":
        return "wrong checksum (stdout %s)" % (" | ".join(got[-2:]) or "empty")
    return reason + (": " + tail if tail else "")


def interposes_malloc(args, library):
    """None when the dynamic linker binds a workload's malloc to `library`, else why not.
    A library that loads but does not define malloc would silently measure glibc."""
    probe = os.path.join(args.build_dir, "bench_churn")
    if not os.access(probe, os.X_OK):
        return None  # nothing to probe with; the workloads will be skipped anyway
    env = child_env({"LD_PRELOAD": library, "LD_DEBUG": "bindings"})
    try:
        probe_run = subprocess.run([probe, "1", "1", "1"], env=env, capture_output=True,
                                   timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return "probe run timed out"
    name = os.path.basename(library)
    for line in probe_run.stderr.decode(errors="replace").splitlines():
        if "binding file " + probe in line and "`malloc'" in line:
            return None if name in line.split(" to ", 1)[-1] else \
                "malloc binds elsewhere: " + line.split(" to ", 1)[-1].strip()
    return "no binding of malloc seen (exit %d)" % probe_run.returncode


def log(message):
    print(message, file=sys.stderr, flush=True)


def benchmark(args, allocators):
    """Runs everything; returns {workload: {"skip": why} or {"ref", "runs", "errors"}}."""
    results = {}
    launcher = os.path.join(args.build_dir, "bench_launch")
    for workload in WORKLOADS:
        name = workload["name"]
        if name not in args.workloads:
            continue
        command = workload_command(workload, args)
        if not os.access(launcher, os.X_OK):
            command = "%s not built (run make)" % shown_path(launcher)
        if isinstance(command, str):
            log("%s: skipped: %s" % (name, command))
            results[name] = {"skip": command}
            continue
        argv, stdin, extra = command
        entry = {"runs": {a: [] for a in allocators}, "errors": {}, "ref": None}
        results[name] = entry
        # An untimed glibc run: the reference checksum, and a warm page cache for round 1.
        ref = run_once(launcher, argv, stdin, child_env(extra), None, args.timeout)
        reason = judge(ref, None)
        if reason is None:
            entry["ref"] = checksum_of(ref["stdout"])
        else:
            entry["ref_error"] = describe_failure(ref, reason)
            log("%s: glibc reference run failed: %s" % (name, entry["ref_error"]))
        for round_index in range(args.rounds):
            line = []
            for alloc, library in allocators.items():
                if alloc in entry["errors"]:
                    continue
                result = run_once(launcher, argv, stdin, child_env(extra), library,
                                  args.timeout)
                reason = judge(result, entry["ref"])
                if reason is not None:
                    entry["errors"][alloc] = {
                        "reason": reason, "detail": describe_failure(result, reason),
                        "reproduce": reproduce_line(argv, stdin, ORIGINALS.get(library, library),
                                                    extra)}
                    line.append("%s FAILED (%s)" % (alloc, reason))
                    continue
                entry["runs"][alloc].append({"wall": result["wall"],
                                             "launcher_wall": result["launcher_wall"],
                                             "cpu": result["cpu"],
                                             "rss_kib": result["rss_kib"]})
                line.append("%s %.3fs %.0fMiB" % (alloc, result["wall"],
                                                  result["rss_kib"] / 1024.0))
            log("%s %d/%d: %s" % (name, round_index + 1, args.rounds, ", ".join(line)))
    return results


def medians(runs):
    if not runs:
        return None
    return (statistics.median(r["wall"] for r in runs),
            statistics.median(r["rss_kib"] for r in runs) / 1024.0)


def machine_lines():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
            memory = ", %.0f GiB RAM" % (kib / 1048576.0)
    except (OSError, ValueError, IndexError):
        pass
    libc = " ".join(platform.libc_ver()) or "unknown libc"
    return "nproc %d, %s%s, Linux %s, %s" % (os.cpu_count() or 0, model, memory,
                                            platform.release(), libc)


def program_versions(args):
    """The interpreters the real-program workloads ran, for the report."""
    found = []
    for argv in ([args.python, "--version"], ["sqlite3", "--version"]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            words = (done.stdout or done.stderr).split()
            found.append(" ".join(words[:2]) if argv[0] == args.python else
                         "sqlite3 " + (words[0] if words else "unknown"))
        except (OSError, subprocess.SubprocessError):
            found.append("%s not found" % argv[0])
    return ", ".join(found)


def describe_build(path):
    """Modification time and hash prefix of a library, to tell two builds apart."""
    with open(path, "rb") as lib:
        digest = hashlib.sha256(lib.read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc)
    return "built %s, sha256 %s" % (built.strftime("%Y-%m-%d %H:%M UTC"), digest)


def heaptrail_revision():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def fmt_ratio(num, den):
    if num is None or den is None or den[0] <= 0 or den[1] <= 0:
        return ("-", "-")
    return ("%.2f" % (num[0] / den[0]), "%.2f" % (num[1] / den[1]))


def report(args, allocators, missing, rejected, results, command, started, load_before,
           revision):
    names = list(allocators)
    cells = {w: {a: medians(results[w]["runs"][a]) for a in names}
             for w in results if "skip" not in results[w]}
    ratio_columns = []
    if SUBJECT in names:
        ratio_columns = [other for other in (REFERENCE, BASELINE) if other in names]
        ratio_columns += [other for other in args.extra if other in names]

    head = ["workload"]
    for alloc in names:
        head += ["%s s" % alloc, "%s MiB" % alloc]
    for other in ratio_columns:
        head += ["ht/%s time" % other, "ht/%s RSS" % other]
    rows = [head, ["---"] + ["---:"] * (len(head) - 1)]
    failures = []
    spread = (0.0, None, None)
    for workload in results:
        entry = results[workload]
        if "skip" in entry:
            rows.append([workload] + ["skipped"] + [""] * (len(head) - 2))
            continue
        row = [workload]
        for alloc in names:
            if alloc in entry["errors"]:
                error = entry["errors"][alloc]
                row += ["FAIL", error["reason"]]
                failures.append((workload, alloc, error))
            elif cells[workload][alloc] is None:
                row += ["-", "-"]
            else:
                wall, rss = cells[workload][alloc]
                row += ["%.3f" % wall, "%.1f" % rss]
                walls = [r["wall"] for r in entry["runs"][alloc]]
                if len(walls) > 1:
                    relative = (max(walls) - min(walls)) / wall
                    if relative > spread[0]:
                        spread = (relative, workload, alloc)
        for other in ratio_columns:
            subject_ok = SUBJECT not in entry["errors"]
            row += list(fmt_ratio(cells[workload][SUBJECT] if subject_ok else None,
                                  cells[workload][other]))
        rows.append(row)

    intro = ("Median of %d interleaved round%s: wall time in seconds, peak RSS (`ru_maxrss` of "
             "the workload) in MiB." % (args.rounds, "" if args.rounds == 1 else "s"))
    if ratio_columns:
        intro += " Ratios are heaptrail / other: below 1.00, heaptrail is faster or smaller."
    lines = [intro, ""]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [""]
    lines.append("- Machine: %s; load average %s at start, %s at end." % (
        machine_lines(), load_before, "%.2f" % os.getloadavg()[0]))
    lines.append("- Date: %s; repository HEAD %s at start." % (started, revision))
    libs = []
    for alloc, library in allocators.items():
        if library is None:
            libs.append("%s (no preload)" % alloc)
        elif library in ORIGINALS:
            libs.append("%s `%s` (%s)" % (alloc, shown_path(ORIGINALS[library]),
                                          SNAPSHOTS[alloc]))
        else:
            libs.append("%s `%s`" % (alloc, shown_path(os.path.realpath(library))))
    lines.append("- Allocators: " + ", ".join(libs) + ".")
    lines.append("- Programs: %s." % program_versions(args))
    if missing:
        lines.append("- Not found, skipped: " + ", ".join(
            "%s (`%s`)" % (a, p) for a, p in missing.items()) + ".")
    for alloc, (path, why) in rejected.items():
        lines.append("- %s (`%s`) skipped: a probe run under it did not show malloc bound to "
                     "it (%s)." % (alloc, path, why))
        failures.append((None, alloc, {"detail": why}))
    if args.tiny:
        lines.append("- Tiny arguments: a correctness run, not a measurement.")
    lines.append("- Command: `%s`" % command)
    if spread[1] is not None:
        lines.append("- Largest spread between rounds: %.0f%% of the median (%s, %s)."
                     % (spread[0] * 100, spread[1], spread[2]))
    skipped = [(w, results[w]["skip"]) for w in results if "skip" in results[w]]
    for workload, why in skipped:
        lines.append("- %s skipped: %s." % (workload, why))
    for workload in results:
        if results[workload].get("ref_error"):
            lines.append("- %s: the glibc reference run failed (%s); checksums were not "
                         "compared." % (workload, results[workload]["ref_error"]))
    run_failures = [f for f in failures if f[0] is not None]
    if run_failures:
        lines += ["", "Failures:", ""]
        for workload, alloc, error in run_failures:
            lines.append("- %s under %s: %s. Reproduce: `%s`" % (
                workload, alloc, error["detail"], error["reproduce"]))
    return "\n".join(lines) + "\n", failures


DOC_TEMPLATE = """# heaptrail performance

## Allocator

{begin}
{end}
"""


def update_docs(path, block):
    """Replaces the text between the markers; creates the file or the section if needed."""
    if os.path.exists(path):
        with open(path) as doc:
            text = doc.read()
    else:
        text = DOC_TEMPLATE.format(begin=BEGIN_MARK, end=END_MARK)
    start = text.find(BEGIN_MARK)
    end = text.find(END_MARK)
    if start < 0 or end < start:
        text = text.rstrip("\n") + "\n\n## Allocator\n\n%s\n%s\n" % (BEGIN_MARK, END_MARK)
        start = text.find(BEGIN_MARK)
        end = text.find(END_MARK)
    text = text[:start + len(BEGIN_MARK)] + "\n" + block + text[end:]
    with open(path + ".tmp", "w") as doc:
        doc.write(text)
    os.replace(path + ".tmp", path)


def main(argv):
    args = parse_args(argv)
    ALLOCATORS[SUBJECT] = os.path.join(args.build_dir, "libheaptrail-preload.so")
    if args.list:
        for workload in WORKLOADS:
            print("%-8s %s" % (workload["name"], workload["what"]))
        for alloc, library in ALLOCATORS.items():
            state = "" if library is None or os.path.exists(library) else "  (not found)"
            print("%-9s %s%s" % (alloc, library or "C library malloc", state))
        return 0
    ALLOCATORS.update(args.extra)
    allocators, missing, rejected = {}, {}, {}
    snapshot_dir = tempfile.TemporaryDirectory(prefix="ht-bench-")
    for alloc in args.allocator_names:
        library = ALLOCATORS[alloc]
        if library is not None and not os.path.exists(library):
            log("%s: %s not found, skipped" % (alloc, library))
            missing[alloc] = shown_path(library)
            continue
        if alloc == SUBJECT or alloc in args.extra:
            # A copy, so that a rebuild during the run cannot mix two versions in one table.
            SNAPSHOTS[alloc] = describe_build(library)
            copy = os.path.join(snapshot_dir.name, alloc + "-" + os.path.basename(library))
            shutil.copy2(library, copy)
            ORIGINALS[copy] = library
            library = copy
        why = interposes_malloc(args, library) if library else None
        if why is not None:
            log("%s: %s failed the malloc check, skipped: %s" % (alloc, library, why))
            rejected[alloc] = (shown_path(ORIGINALS.get(library, library)), why)
            continue
        allocators[alloc] = library
    if not allocators:
        log("no allocator to run")
        return 1

    command = shlex.join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), REPO)]
                         + list(argv))
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = "%.2f" % os.getloadavg()[0]
    revision = heaptrail_revision()
    results = benchmark(args, allocators)
    snapshot_dir.cleanup()
    block, failures = report(args, allocators, missing, rejected, results, command, started,
                             load_before, revision)

    print(block)
    if args.out:
        with open(args.out, "w") as out:
            out.write(block)
    if args.docs:
        update_docs(args.docs, block)
        log("updated %s" % shown_path(args.docs))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        raw = {"command": command, "date": started, "rounds": args.rounds,
               "allocators": {a: ORIGINALS.get(l, l) for a, l in allocators.items()},
               "missing": missing, "rejected": rejected, "snapshots": SNAPSHOTS,
               "results": results}
        with open(args.json, "w") as out:
            json.dump(raw, out, indent=1, sort_keys=True)
    if failures:
        log("%d failure(s); see the list under the table" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
