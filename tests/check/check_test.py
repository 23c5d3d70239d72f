#!/usr/bin/env python3
"""check_test.py — `heaptrail check` against programs of known answers (the C files here), by the
command's contract: exit status 23 (or --exitcode) when something is found, else the program's
own status (128+N after signal N); the findings on stderr, valgrind-like, and in --json
("heaptrail-check/1") and --junit files; leaks classified by a reachability scan at exit
(definitely lost, indirectly lost, still reachable), through globals, static locals, blocks and
the stacks of threads the scan stops; no scan after _exit or a fatal signal; suppressions in
LeakSanitizer's syntax; usage errors; real programs (python3, sqlite3, bash, git) unchanged and
clean.
Every JSON document is checked against the schema and against the exit rule (findings -> the
--exitcode status, none -> the program's own).
Usage: the arguments of cli_test.py (whose helpers this uses), then one test name.
Exit status: 0 pass, 1 fail."""
import json
import os
import re
import shutil
import stat
import sys
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import cli_test  # noqa: E402
from cli_test import base_env, check, heaptrail, require, run, scratch  # noqa: E402

# The prefix of check's own error lines ("heaptrail: check: FILE:LINE: ...").
ERROR_PREFIX = "heaptrail: check: "  # the house style: "heaptrail: COMMAND: ..."
FOUND = 23  # the default status when something is found
MIB = 1024 * 1024
LEAK_CLASSES = ("definitely_lost", "indirectly_lost", "still_reachable")
JUNIT_CASE = {"leak": "leaks", "invalid": "invalid", "peak": "peak"}

WORK = None  # the current test's scratch directory
RUNS = [0]


def scratch_test(function):
    """Runs the test in a fresh scratch directory (WORK), removed afterwards."""
    def wrapped():
        global WORK
        WORK = scratch()
        try:
            return function()
        finally:
            shutil.rmtree(WORK, ignore_errors=True)
    wrapped.__name__ = function.__name__
    return wrapped


def program(name):
    return cli_test.ARGS.bin[name]


def environment():
    home = os.path.join(WORK, "home")
    tmp = os.path.join(WORK, "tmp")
    os.makedirs(home, exist_ok=True)
    os.makedirs(tmp, exist_ok=True)
    env = base_env(home)
    env["TMPDIR"] = tmp
    return env


class Result:
    def __init__(self, process, document, junit):
        self.process = process
        self.code = process.returncode
        self.stdout = process.stdout.decode(errors="replace")
        self.stderr = process.stderr.decode(errors="replace")
        self.doc = document
        self.junit = junit
        self.findings = document["findings"] if document else []


def run_check(prog, *options, args=(), expect=None, exitcode=FOUND, junit=False):
    """heaptrail check OPTIONS --json F [--junit J] -- PROG ARGS in WORK: checks the exit status
    (expect), validates the JSON document and the exit rule; returns a Result."""
    RUNS[0] += 1
    json_path = os.path.join(WORK, "run%d.json" % RUNS[0])
    junit_path = os.path.join(WORK, "run%d.xml" % RUNS[0])
    command = ["check"] + [str(o) for o in options] + ["--json", json_path]
    if junit:
        command += ["--junit", junit_path]
    prog_path = program(prog) if prog in cli_test.ARGS.bin else prog
    command += ["--", prog_path] + [str(a) for a in args]
    p = heaptrail(*command, env=environment(), cwd=WORK, timeout=60)
    shown = "heaptrail %s" % " ".join(command)
    err = p.stderr.decode(errors="replace")
    check(expect is None or p.returncode == expect, "%s: exit %d, expected %d\nstderr:\n%s" % (
        shown, p.returncode, expect if expect is not None else -1, err[-4000:]))
    check(os.path.exists(json_path), "%s: no JSON file written (exit %d)\nstderr:\n%s" % (
        shown, p.returncode, err[-3000:]))
    try:
        with open(json_path) as f:
            document = json.load(f)
    except ValueError as error:
        raise cli_test.Failure("%s: the JSON file is not valid JSON: %s" % (shown, error))
    validate(document, p.returncode, exitcode, shown)
    tree = None
    if junit:
        check(os.path.exists(junit_path), "%s: no JUnit file written" % shown)
        try:
            tree = ElementTree.parse(junit_path)
        except ElementTree.ParseError as error:
            raise cli_test.Failure("%s: the JUnit file is not well-formed XML: %s" % (shown,
                                                                                     error))
    leftovers = os.listdir(os.path.join(WORK, "tmp"))
    check(not leftovers, "%s: left files in TMPDIR: %s" % (shown, leftovers))
    return Result(p, document, tree)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def validate_frames(stack, where):
    check(isinstance(stack, list) and stack, "%s: no stack: %r" % (where, stack))
    for frame in stack:
        check(isinstance(frame, dict) and {"function", "file", "line", "module", "address"} <=
              set(frame), "%s: frame %r lacks keys" % (where, frame))
        check(frame["function"] is None or isinstance(frame["function"], str),
              "%s: function %r" % (where, frame))
        check(frame["file"] is None or isinstance(frame["file"], str), "%s: file %r" % (where,
                                                                                    frame))
        check(is_int(frame["line"]) and frame["line"] >= 0, "%s: line %r" % (where, frame))
        check(isinstance(frame["address"], str) and re.fullmatch(r"0x[0-9a-f]+", frame["address"]),
              "%s: address %r" % (where, frame))


def validate(d, code, exitcode, shown):
    """The schema of "heaptrail-check/1", and the exit rule."""
    where = shown
    check(d.get("schema") == "heaptrail-check/1", "%s: schema %r" % (where, d.get("schema")))
    check(isinstance(d.get("program"), str) and d["program"], "%s: program %r" % (
        where, d.get("program")))
    check(is_int(d.get("pid")) and d["pid"] > 0, "%s: pid %r" % (where, d.get("pid")))
    status = d.get("status")
    check(isinstance(status, dict) and isinstance(status.get("exited"), bool) and
          is_int(status.get("code")) and is_int(status.get("signal")),
          "%s: status %r" % (where, status))
    check(d.get("exit_code") == code, "%s: exit_code %r, the command exited %d" % (
        where, d.get("exit_code"), code))
    scan = d.get("scan")
    check(isinstance(scan, dict) and isinstance(scan.get("done"), bool), "%s: scan %r" % (where,
                                                                                        scan))
    if scan["done"]:
        check(isinstance(scan.get("complete"), bool) and is_int(scan.get("threads")) and
              is_int(scan.get("threads_stopped")), "%s: scan %r" % (where, scan))
    leaks = d.get("leaks")
    check(isinstance(leaks, dict), "%s: leaks %r" % (where, leaks))
    for kind in LEAK_CLASSES + ("suppressed",):
        pair = leaks.get(kind)
        check(isinstance(pair, dict) and is_int(pair.get("bytes")) and
              is_int(pair.get("blocks")) and pair["bytes"] >= 0 and pair["blocks"] >= 0 and
              (pair["blocks"] > 0 or pair["bytes"] == 0),
              "%s: leaks.%s %r" % (where, kind, pair))
    peak = d.get("peak")
    check(isinstance(peak, dict) and is_int(peak.get("bytes")) and
          (peak.get("limit") is None or is_int(peak.get("limit"))) and
          isinstance(peak.get("exceeded"), bool), "%s: peak %r" % (where, peak))
    check(isinstance(d.get("findings"), list), "%s: findings %r" % (where, d.get("findings")))
    for i, f in enumerate(d["findings"]):
        at = "%s: findings[%d]" % (where, i)
        check(isinstance(f, dict) and f.get("kind") in ("leak", "invalid", "peak"),
              "%s: kind of %r" % (at, f))
        if f["kind"] == "leak":
            check(f.get("class") in LEAK_CLASSES + ("not_scanned",) and is_int(f.get("bytes")) and
                  is_int(f.get("blocks")) and f["blocks"] > 0, "%s: %r" % (at, f))
            validate_frames(f.get("stack"), at)
        elif f["kind"] == "invalid":
            check(f.get("operation") in ("free", "realloc", "alloc"), "%s: operation of %r" % (
                at, f))
            check(isinstance(f.get("address"), str), "%s: address of %r" % (at, f))
            validate_frames(f.get("stack"), at)
        else:
            check(is_int(f.get("bytes")) and is_int(f.get("limit")) and is_int(f.get("at_ns")) and
                  f["bytes"] > f["limit"], "%s: %r" % (at, f))
    check(isinstance(d.get("suppressed"), list), "%s: suppressed %r" % (where, d.get("suppressed")))
    for s in d["suppressed"]:
        check(isinstance(s, dict) and s.get("kind") in ("leak", "invalid", "peak") and
              isinstance(s.get("pattern"), str), "%s: suppressed entry %r" % (where, s))
    # The exit rule: the --exitcode status when something is found (in the program or, with
    # --follow-forks, in a process it started), else the program's own.
    own = status["code"] if status["exited"] else 128 + status["signal"]
    children = d.get("children") or []
    check(isinstance(children, list) and all(isinstance(c, dict) and
                                              isinstance(c.get("findings"), list)
                                              for c in children), "%s: children %r" % (where,
                                                                                      children))
    found = d["findings"] or any(c["findings"] for c in children)
    expected = exitcode if found else own
    check(code == expected, "%s: exit %d with %d findings and a program status of %d" % (
        where, code, len(d["findings"]), own))


# ---- looking into results ---------------------------------------------------------------------

def functions(finding):
    return [frame["function"] for frame in finding.get("stack", [])]


def through(result, function, kind=None, leak_class=None):
    """The findings whose stack has function."""
    return [f for f in result.findings if function in functions(f) and
            (kind is None or f["kind"] == kind) and
            (leak_class is None or f.get("class") == leak_class)]


def describe(result):
    out = []
    for f in result.findings:
        if f["kind"] == "leak":
            out.append("leak %s %d bytes in %d blocks via %s" % (f["class"], f["bytes"],
                                                                 f["blocks"],
                                                                 functions(f)[:6]))
        elif f["kind"] == "invalid":
            out.append("invalid %s via %s" % (f["operation"], functions(f)[:6]))
        else:
            out.append("peak %d > %d" % (f["bytes"], f["limit"]))
    return "; ".join(out) or "no finding"


def expect_one(result, function, kind, leak_class=None):
    check(len(result.findings) == 1, "expected one finding (%s through %s), got: %s" % (
        kind, function, describe(result)))
    found = through(result, function, kind, leak_class)
    check(found, "the finding is not %s %s through %s: %s" % (kind, leak_class or "", function,
                                                               describe(result)))
    return found[0]


def expect_frame(finding, function, source, module):
    """function's frame: symbolized, with its source file, a line and the program's module."""
    frames = [fr for fr in finding["stack"] if fr["function"] == function]
    check(frames, "no %s frame: %s" % (function, functions(finding)))
    frame = frames[0]
    check(frame["file"] and frame["file"].endswith(source) and frame["line"] > 0,
          "%s: file and line %r" % (function, frame))
    # The program's path ("/.../prog" in the contract's example), or its name as report gives.
    check(frame["module"] and (frame["module"] == module or frame["module"].endswith("/" + module)),
          "%s: module %r" % (function, frame["module"]))


def sums(result, leak_class, function=None):
    chosen = [f for f in result.findings if f["kind"] == "leak" and f["class"] == leak_class and
              (function is None or function in functions(f))]
    return sum(f["bytes"] for f in chosen), sum(f["blocks"] for f in chosen)


def pair(result, leak_class):
    entry = result.doc["leaks"][leak_class]
    return entry["bytes"], entry["blocks"]


def stderr_has(result, pattern, what):
    check(re.search(pattern, result.stderr, re.M), "stderr lacks %s (%r):\n%s" % (
        what, pattern, result.stderr[-4000:]))


def frame_line(function, source):
    """A stack line of the text output: '==heaptrail==    by FUNCTION (FILE:LINE)'."""
    return r"^==heaptrail==\s+(?:at|by) %s \((?:\S*/)?%s:\d+\)" % (function, re.escape(source))


def one_error_line(p, code, pattern, shown):
    err = p.stderr.decode(errors="replace")
    check(p.returncode == code, "%s: exit %d, expected %d; stderr %r" % (shown, p.returncode, code,
                                                                       err))
    lines = err.splitlines()
    # One line; a usage error adds the house's pointer to --help.
    if len(lines) == 2 and lines[1] == "Try 'heaptrail check --help'.":
        lines = lines[:1]
    check(len(lines) == 1 and err.endswith("\n") and err.startswith(ERROR_PREFIX),
          "%s: stderr is not one line starting %r: %r" % (shown, ERROR_PREFIX, err))
    check(re.search(pattern, err), "%s: stderr %r does not match %r" % (shown, err, pattern))


def write(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- the programs of known answers ------------------------------------------------------------

@scratch_test
def test_clean():
    r = run_check("clean", expect=3)
    check(not r.findings, "clean: %s" % describe(r))
    check(r.doc["status"] == {"exited": True, "code": 3, "signal": 0}, "status %r" %
          r.doc["status"])
    check(r.doc["program"].endswith("/check_clean"), "program %r" % r.doc["program"])
    check(r.doc["scan"]["done"] and r.doc["scan"]["complete"], "scan %r" % r.doc["scan"])
    for leak_class in ("definitely_lost", "indirectly_lost"):
        check(pair(r, leak_class) == (0, 0), "%s %r" % (leak_class, pair(r, leak_class)))
    check(r.doc["peak"]["limit"] is None and not r.doc["peak"]["exceeded"] and
          r.doc["peak"]["bytes"] >= 100000, "peak %r" % r.doc["peak"])
    check(r.stdout == "", "stdout %r" % r.stdout)
    stderr_has(r, r"^==heaptrail== ", "the summary")
    # -q: nothing at all when nothing is found.
    r = run_check("clean", "-q", expect=3)
    check(r.stderr == "", "-q printed %r" % r.stderr)
    r = run_check("clean", "--quiet", expect=3)
    check(r.stderr == "", "--quiet printed %r" % r.stderr)
    # The program's status, whatever it is.
    for status in (0, 42):
        r = run_check("clean", "-q", args=[status], expect=status)
        check(r.doc["status"]["code"] == status and not r.findings, "status %d: %r" % (
            status, r.doc["status"]))
    # --trace keeps the trace (a readable one); without it nothing stays (run_check looks in
    # TMPDIR, and here in the working directory).
    trace = os.path.join(WORK, "kept.trace")
    run_check("clean", "-q", "--trace", trace, expect=3)
    check(os.path.getsize(trace) > 0, "--trace: empty %s" % trace)
    heaptrail("stats", trace, check_code=0)
    os.unlink(trace)
    stray = [n for n in os.listdir(WORK) if n.endswith(".trace")]
    check(not stray, "traces left in the working directory: %s" % stray)


@scratch_test
def test_double_free():
    r = run_check("double_free", expect=FOUND)
    f = expect_one(r, "release_twice", "invalid")
    check(f["operation"] == "free", "operation %r" % f["operation"])
    check(re.fullmatch(r"0x[0-9a-f]+", f["address"]), "address %r" % f["address"])
    expect_frame(f, "release_twice", "double_free.c", "check_double_free")
    # The program goes on after the refused free, as under valgrind (the preload library would
    # otherwise abort it, as glibc does).
    check(r.doc["status"] == {"exited": True, "code": 0, "signal": 0},
          "the program did not go on after the double free: status %r" % r.doc["status"])
    stderr_has(r, r"^==heaptrail== Invalid free", "the invalid free")
    stderr_has(r, frame_line("release_twice", "double_free.c"), "release_twice's frame")
    stderr_has(r, r"ERROR SUMMARY: 1 finding", "the error summary")


@scratch_test
def test_leak():
    r = run_check("leak", expect=FOUND)
    f = expect_one(r, "leak_me", "leak", "definitely_lost")
    check((f["bytes"], f["blocks"]) == (48, 1), "leak_me: %d bytes in %d blocks" % (f["bytes"],
                                                                                   f["blocks"]))
    expect_frame(f, "leak_me", "leak.c", "check_leak")
    check(pair(r, "definitely_lost") == (48, 1), "definitely_lost %r" % (
        pair(r, "definitely_lost"),))
    check(pair(r, "indirectly_lost") == (0, 0), "indirectly_lost %r" % (
        pair(r, "indirectly_lost"),))
    check(r.doc["scan"]["done"] and r.doc["scan"]["complete"], "scan %r" % r.doc["scan"])
    stderr_has(r, r"^==heaptrail== 48 bytes in 1 blocks are definitely lost", "the leak")
    stderr_has(r, frame_line("leak_me", "leak.c"), "leak_me's frame")
    stderr_has(r, r"^==heaptrail== LEAK SUMMARY:", "the leak summary")
    stderr_has(r, r"^==heaptrail==\s+definitely lost: 48 bytes in 1 blocks", "the summary's line")

    # Two leaking functions: two findings, one per stack.
    r = run_check("leak", args=["other"], expect=FOUND)
    check(len(r.findings) == 2, "leak other: %s" % describe(r))
    for function, size in (("leak_me", 48), ("leak_other", 80)):
        check(sums(r, "definitely_lost", function) == (size, 1), "%s: %s" % (function,
                                                                             describe(r)))
    check(pair(r, "definitely_lost") == (128, 2), "definitely_lost %r" % (
        pair(r, "definitely_lost"),))

    # --leaks: definite still reports it, none nothing.
    r = run_check("leak", "--leaks=definite", expect=FOUND)
    expect_one(r, "leak_me", "leak", "definitely_lost")
    r = run_check("leak", "--leaks=none", expect=0)
    check(not r.findings, "--leaks=none: %s" % describe(r))
    r = run_check("leak", "--leaks", "lost", expect=FOUND)
    expect_one(r, "leak_me", "leak", "definitely_lost")


@scratch_test
def test_indirect():
    r = run_check("indirect", expect=FOUND)
    check(pair(r, "definitely_lost") == (16, 1), "definitely_lost %r" % (
        pair(r, "definitely_lost"),))
    check(pair(r, "indirectly_lost") == (80, 2), "indirectly_lost %r" % (
        pair(r, "indirectly_lost"),))
    check(sums(r, "definitely_lost", "build_list") == (16, 1), "head: %s" % describe(r))
    check(sums(r, "indirectly_lost", "build_list") == (80, 2), "nodes: %s" % describe(r))
    check(len(r.findings) == 2, "expected 2 findings (the head; the nodes, one stack): %s" %
          describe(r))
    for f in r.findings:
        expect_frame(f, "build_list", "indirect.c", "check_indirect")
    stderr_has(r, r"^==heaptrail== 16 bytes in 1 blocks are definitely lost", "the head")
    stderr_has(r, r"^==heaptrail== 80 bytes in 2 blocks are indirectly lost", "the nodes")
    stderr_has(r, r"^==heaptrail==\s+indirectly lost: 80 bytes in 2 blocks", "the summary's line")
    # --leaks=definite: the head only.
    r = run_check("indirect", "--leaks=definite", expect=FOUND)
    expect_one(r, "build_list", "leak", "definitely_lost")


@scratch_test
def test_reachable():
    r = run_check("reachable", expect=0)
    check(not r.findings, "reachable blocks reported by default: %s" % describe(r))
    check(pair(r, "definitely_lost") == (0, 0) and pair(r, "indirectly_lost") == (0, 0),
          "lost: %r" % r.doc["leaks"])
    reachable_bytes, reachable_blocks = pair(r, "still_reachable")
    check(reachable_blocks >= 4 and reachable_bytes >= 616, "still_reachable %r" % (
        pair(r, "still_reachable"),))
    # --leaks=all: each block is one, still reachable.
    r = run_check("reachable", "--leaks=all", expect=FOUND)
    for function, expected in (("keep_global", (100, 1)), ("keep_static", (200, 1)),
                               ("keep_in_struct", (316, 2))):
        check(sums(r, "still_reachable", function) == expected, "%s: %s" % (function,
                                                                           describe(r)))
        check(not [f for f in through(r, function) if f.get("class") != "still_reachable"],
              "%s: classes %s" % (function, describe(r)))
    check(not [f for f in r.findings if f.get("class") in ("definitely_lost", "indirectly_lost")],
          "lost blocks: %s" % describe(r))
    expect_frame(through(r, "keep_static")[0], "keep_static", "reachable.c", "check_reachable")
    stderr_has(r, r"^==heaptrail== 200 bytes in 1 blocks are still reachable", "keep_static's")


@scratch_test
def test_peak():
    r = run_check("peak", expect=0)
    check(not r.findings, "no --max-peak: %s" % describe(r))
    peak = r.doc["peak"]
    check(peak["bytes"] >= 4 * MIB and peak["limit"] is None and not peak["exceeded"],
          "peak %r" % peak)
    r = run_check("peak", "--max-peak", "1M", expect=FOUND)
    check(len(r.findings) == 1 and r.findings[0]["kind"] == "peak", "--max-peak 1M: %s" %
          describe(r))
    f = r.findings[0]
    check(f["bytes"] >= 4 * MIB and f["limit"] == MIB and f["at_ns"] >= 0, "finding %r" % f)
    check(r.doc["peak"]["bytes"] == f["bytes"] and r.doc["peak"]["limit"] == MIB and
          r.doc["peak"]["exceeded"], "peak %r" % r.doc["peak"])
    stderr_has(r, r"(?i)^==heaptrail== .*peak", "the peak")
    for value, limit in (("64M", 64 * MIB), ("64MiB", 64 * MIB), ("65536K", 64 * MIB),
                         ("1G", 1024 * MIB)):
        r = run_check("peak", "--max-peak", value, expect=0)
        check(not r.findings and r.doc["peak"]["limit"] == limit and
              not r.doc["peak"]["exceeded"], "--max-peak %s: %r, %s" % (value, r.doc["peak"],
                                                                        describe(r)))
    r = run_check("peak", "--max-peak=1MiB", expect=FOUND)
    check(r.doc["peak"]["limit"] == MIB, "--max-peak=1MiB: %r" % r.doc["peak"])


@scratch_test
def test_threads():
    r = run_check("threads", expect=FOUND)
    f = expect_one(r, "thread_leak", "leak", "definitely_lost")
    check((f["bytes"], f["blocks"]) == (72, 1), "thread_leak: %r" % f)
    expect_frame(f, "thread_leak", "threads.c", "check_threads")
    check(not through(r, "hold_block"), "the blocks on the threads' stacks: %s" % describe(r))
    check(pair(r, "definitely_lost") == (72, 1), "definitely_lost %r" % (
        pair(r, "definitely_lost"),))
    check(pair(r, "still_reachable")[1] >= 4, "still_reachable %r" % (
        pair(r, "still_reachable"),))
    scan = r.doc["scan"]
    check(scan["done"] and scan["complete"] and scan["threads_stopped"] >= 4 and
          scan["threads"] >= scan["threads_stopped"], "scan %r" % scan)
    check(r.doc["status"] == {"exited": True, "code": 0, "signal": 0}, "status %r" %
          r.doc["status"])
    # --leaks=all: the four blocks are there, still reachable.
    r = run_check("threads", "--leaks=all", expect=FOUND)
    check(sums(r, "still_reachable", "hold_block") == (4 * 56, 4), "hold_block: %s" %
          describe(r))
    check(sums(r, "definitely_lost") == (72, 1), "lost: %s" % describe(r))


@scratch_test
def test_masked():
    r = run_check("masked", expect=FOUND)
    f = expect_one(r, "leak_here", "leak", "definitely_lost")
    check((f["bytes"], f["blocks"]) == (77, 1), "leak_here: %r" % f)
    check(not through(r, "hold_masked"), "the block on the masked thread's stack: %s" %
          describe(r))
    scan = r.doc["scan"]
    check(scan["done"] and not scan["complete"] and scan["threads_stopped"] < scan["threads"],
          "scan %r: the thread with every signal blocked cannot have stopped" % scan)
    stderr_has(r, r"the scan stopped \d+ of \d+ threads", "the note on the thread not stopped")


@scratch_test
def test_follow_forks():
    """A shell runs the leaking and the double-freeing programs: without --follow-forks only the
    shell is judged (clean: its own status); with it, each child is judged in its own section,
    its findings under "children" in the JSON and its own <testsuite> in the JUnit file, and the
    run exits 23."""
    script = write("run.sh", "#!/bin/sh\n%s\n%s\necho ran\nexit 5\n" % (program("leak"),
                                                                       program("double_free")))
    os.chmod(script, stat.S_IRWXU)
    r = run_check(script, expect=5)
    check(not r.findings and not r.doc.get("children"), "the shell alone: %s, children %r" % (
        describe(r), r.doc.get("children")))
    r = run_check(script, "--follow-forks", junit=True, expect=FOUND)
    check(r.stdout == "ran\n", "the script's output under check: %r" % r.stdout)
    check(not r.findings, "the shell itself: %s" % describe(r))
    children = r.doc.get("children")
    check(isinstance(children, list) and len(children) == 2, "children: %r" % children)
    by_program = {os.path.basename(c["program"]): c for c in children}
    check(set(by_program) == {"check_leak", "check_double_free"}, "children %r" % list(by_program))
    leaks = [f for f in by_program["check_leak"]["findings"] if f["kind"] == "leak"]
    check(any("leak_me" in functions(f) and f["class"] == "definitely_lost" for f in leaks),
          "check_leak's findings: %r" % by_program["check_leak"]["findings"])
    invalid = by_program["check_double_free"]["findings"]
    check(len(invalid) == 1 and invalid[0]["kind"] == "invalid" and
          "release_twice" in functions(invalid[0]), "check_double_free's findings: %r" % invalid)
    check(all(isinstance(c["pid"], int) and c["pid"] > 0 and c["scan"]["done"] for c in children),
          "children: %r" % children)
    root = r.junit.getroot()
    suites = list(root.iter("testsuite"))
    check(len(suites) == 3, "JUnit: %d testsuites, expected the shell's and two children's" %
          len(suites))
    failures = sum(int(s.get("failures")) for s in suites)
    check(int(root.get("failures")) == failures == len(leaks) + 1,
          "JUnit failures: root %s, suites %d" % (root.get("failures"), failures))
    stderr_has(r, r"^==heaptrail== IN ALL: \d+ findings in 2 of 3 processes$", "the total line")


@scratch_test
def test_seccomp():
    r = run_check("seccomp", expect=FOUND)
    f = expect_one(r, "lose", "leak", "definitely_lost")
    check((f["bytes"], f["blocks"]) == (55, 1), "lose: %r" % f)
    check(pair(r, "still_reachable")[0] >= 123, "the block kept in .data: still_reachable %r" %
          (pair(r, "still_reachable"),))
    check(r.doc["scan"]["done"], "scan %r" % r.doc["scan"])


@scratch_test
def test_oom():
    r = run_check("oom", expect=0)
    check(not r.findings, "a failed allocation without --fail-on-oom: %s" % describe(r))
    r = run_check("oom", "--fail-on-oom", expect=FOUND)
    f = expect_one(r, "ask_too_much", "invalid")
    check(f["operation"] == "alloc", "operation %r" % f["operation"])
    expect_frame(f, "ask_too_much", "oom.c", "check_oom")
    stderr_has(r, frame_line("ask_too_much", "oom.c"), "ask_too_much's frame")


@scratch_test
def test_signal():
    # A fatal signal: no scan, the leak not judged, the signal's status.
    r = run_check("signal", expect=128 + 15)
    check(not r.findings, "SIGTERM: %s" % describe(r))
    check(r.doc["status"]["exited"] is False and r.doc["status"]["signal"] == 15,
          "status %r" % r.doc["status"])
    check(r.doc["scan"]["done"] is False, "scan %r" % r.doc["scan"])
    r = run_check("signal", "--leaks=all", expect=FOUND)
    check(through(r, "leak_before_end", "leak"), "--leaks=all after SIGTERM: %s" % describe(r))
    check(r.doc["scan"]["done"] is False, "scan %r" % r.doc["scan"])
    # _exit: the same, with its status.
    r = run_check("signal", args=["_exit"], expect=5)
    check(not r.findings, "_exit: %s" % describe(r))
    check(r.doc["status"] == {"exited": True, "code": 5, "signal": 0}, "status %r" %
          r.doc["status"])
    check(r.doc["scan"]["done"] is False, "scan %r" % r.doc["scan"])
    r = run_check("signal", "--leaks=all", args=["_exit"], expect=FOUND)
    check(through(r, "leak_before_end", "leak"), "--leaks=all after _exit: %s" % describe(r))


# ---- suppressions -----------------------------------------------------------------------------

def suppressed_entry(result, pattern):
    return [s for s in result.doc["suppressed"] if s["pattern"] == pattern]


@scratch_test
def test_suppressions():
    # One function's leak suppressed, the other's kept.
    only_me = write("me.supp", "leak:leak_me\n")
    r = run_check("leak", "--suppressions", only_me, args=["other"], expect=FOUND)
    f = expect_one(r, "leak_other", "leak", "definitely_lost")
    check((f["bytes"], f["blocks"]) == (80, 1), "leak_other: %r" % f)
    entries = suppressed_entry(r, "leak:leak_me")
    check(len(entries) == 1 and entries[0]["kind"] == "leak" and
          (entries[0]["bytes"], entries[0]["blocks"]) == (48, 1),
          "suppressed: %r" % r.doc["suppressed"])
    check(pair(r, "definitely_lost") == (80, 1), "definitely_lost counts the suppressed: %r" % (
        pair(r, "definitely_lost"),))
    check(r.doc["leaks"]["suppressed"]["bytes"] >= 48, "leaks.suppressed %r" %
          r.doc["leaks"]["suppressed"])
    r = run_check("leak", "--suppressions", only_me, expect=0)
    check(not r.findings and suppressed_entry(r, "leak:leak_me"), "leak_me suppressed: %s, %r" % (
        describe(r), r.doc["suppressed"]))

    # Wildcards.
    r = run_check("leak", "--suppressions", write("all.supp", "leak:leak_*\n"), args=["other"],
                  expect=0)
    check(not r.findings and suppressed_entry(r, "leak:leak_*"), "leak:leak_*: %s" % describe(r))
    r = run_check("leak", "--suppressions", write("m.supp", "leak:leak_m*\n"), args=["other"],
                  expect=FOUND)
    expect_one(r, "leak_other", "leak", "definitely_lost")

    # Comments and blank lines; two files.
    commented = write("commented.supp", "# leaks of leak.c\n\n   \nleak:leak_me\n\n# the end\n")
    other = write("other.supp", "leak:leak_other\n")
    r = run_check("leak", "--suppressions", commented, args=["other"], expect=FOUND)
    expect_one(r, "leak_other", "leak", "definitely_lost")
    r = run_check("leak", "--suppressions", commented, "--suppressions", other, args=["other"],
                  expect=0)
    check(len(r.doc["suppressed"]) >= 2, "two files: suppressed %r" % r.doc["suppressed"])

    # A pattern that only the module (the program's path) matches: all its leaks; not another
    # program's.
    module = write("module.supp", "leak:check_leak\n")
    r = run_check("leak", "--suppressions", module, args=["other"], expect=0)
    check(not r.findings, "leak:check_leak: %s" % describe(r))
    r = run_check("indirect", "--suppressions", module, expect=FOUND)
    check(len(r.findings) == 2, "leak:check_leak on another program: %s" % describe(r))

    # invalid: suppresses the double free; leak: does not.
    r = run_check("double_free", "--suppressions", write("df.supp", "invalid:release_twice\n"),
                  expect=0)
    check(not r.findings, "invalid:release_twice: %s" % describe(r))
    entries = suppressed_entry(r, "invalid:release_twice")
    check(len(entries) == 1 and entries[0]["kind"] == "invalid", "suppressed %r" %
          r.doc["suppressed"])
    r = run_check("double_free", "--suppressions", write("wrong.supp", "leak:release_twice\n"),
                  expect=FOUND)
    expect_one(r, "release_twice", "invalid")
    # ...and invalid: does not suppress a leak.
    r = run_check("leak", "--suppressions", write("wrong2.supp", "invalid:leak_me\n"),
                  expect=FOUND)
    expect_one(r, "leak_me", "leak", "definitely_lost")


@scratch_test
def test_suppression_errors():
    marker = os.path.join(WORK, "ran")
    bad = write("bad.supp", "# comment\n\nfoo:bar\nleak:leak_me\n")
    args = ["check", "--suppressions", bad, "--", program("clean"), "0", marker]
    one_error_line(heaptrail(*args, env=environment(), cwd=WORK), 1,
                   r"^heaptrail: check: %s:3: " % re.escape(bad), "a bad line")
    # The second file's line is named with its file.
    good = write("good.supp", "leak:leak_me\n")
    args = ["check", "--suppressions", good, "--suppressions", bad, "--", program("clean"), "0",
            marker]
    one_error_line(heaptrail(*args, env=environment(), cwd=WORK), 1,
                   r"^heaptrail: check: %s:3: " % re.escape(bad), "a bad line in the second file")
    missing = os.path.join(WORK, "missing.supp")
    args = ["check", "--suppressions", missing, "--", program("clean"), "0", marker]
    one_error_line(heaptrail(*args, env=environment(), cwd=WORK), 2,
                   r"%s.*No such file or directory" % re.escape(missing), "a missing file")
    check(not os.path.exists(marker), "the program ran despite a bad suppressions file")


def printed_suppressions(result):
    """The suppression lines check printed (stderr, or stdout), without a '==heaptrail==' prefix."""
    lines = []
    for text in (result.stderr, result.stdout):
        for line in text.splitlines():
            line = re.sub(r"^==heaptrail==\s*", "", line).strip()
            if re.fullmatch(r"(leak|invalid):\S+", line):
                lines.append(line)
    return lines


@scratch_test
def test_print_suppressions():
    for prog, args, expected in (("leak", ["other"], ["leak:leak_me", "leak:leak_other"]),
                                 ("double_free", [], ["invalid:release_twice"])):
        r = run_check(prog, "--print-suppressions", args=args, expect=FOUND)
        printed = printed_suppressions(r)
        check(sorted(printed) == expected, "%s --print-suppressions printed %r, expected %r:\n%s" %
              (prog, printed, expected, r.stderr[-3000:]))
        # "after the summary"
        if printed[0] in r.stderr and "ERROR SUMMARY" in r.stderr:
            check(r.stderr.index("ERROR SUMMARY") < r.stderr.index(printed[0]),
                  "the suppressions come before the summary:\n%s" % r.stderr[-3000:])
        fed = write("%s.printed.supp" % prog, "".join(line + "\n" for line in printed))
        r = run_check(prog, "--suppressions", fed, args=args, expect=0)
        check(not r.findings, "%s with its printed suppressions: %s" % (prog, describe(r)))


# ---- outputs ----------------------------------------------------------------------------------

def junit_suite(result):
    """The one <testsuite name="heaptrail check">: its failures count, and the failures by kind
    ("invalid", "leaks", "peak"), told by each <failure>'s type. Each finding is a failing test
    case of its own; a kind with no finding is one passing test case named after it."""
    root = result.junit.getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    suites = [s for s in suites if s.get("name") == "heaptrail check"]
    check(len(suites) == 1, "JUnit: %d testsuites named 'heaptrail check'" % len(suites))
    suite = suites[0]
    names = [c.get("name") for c in suite.iter("testcase")]
    check(len(names) == len(set(names)), "JUnit testcases %r: names repeat" % names)
    failures = {name: [] for name in JUNIT_CASE.values()}
    for case in suite.iter("testcase"):
        found = list(case.iter("failure"))
        check(len(found) <= 1, "JUnit testcase %r: %d failures" % (case.get("name"), len(found)))
        if not found:
            check(case.get("name") in JUNIT_CASE.values(),
                  "JUnit passing testcase %r is not one of %s" % (case.get("name"),
                                                                 sorted(JUNIT_CASE.values())))
        for failure in found:
            kind = JUNIT_CASE.get(failure.get("type"))
            check(kind is not None, "JUnit failure type %r" % failure.get("type"))
            failures[kind].append((failure.text or "") + " " + (failure.get("message") or ""))
    count = suite.get("failures")
    check(count is not None and count.isdigit(), "JUnit failures=%r" % count)
    check(int(count) == sum(len(v) for v in failures.values()),
          "JUnit failures=%s, %d <failure> elements" % (count, sum(len(v) for v in
                                                                     failures.values())))
    return int(count), failures


@scratch_test
def test_junit():
    r = run_check("clean", junit=True, expect=3)
    count, failures = junit_suite(r)
    check(count == 0 and not any(failures.values()), "clean: failures=%d" % count)
    cases = ((("leak",), {"args": ["other"]}, {"leaks": ["leak_me", "leak_other"]}),
             (("double_free",), {}, {"invalid": ["release_twice"]}),
             (("peak", "--max-peak", "1M"), {}, {"peak": []}),
             (("threads",), {}, {"leaks": ["thread_leak"]}))
    for options, kwargs, expected in cases:
        r = run_check(*options, junit=True, expect=FOUND, **kwargs)
        count, failures = junit_suite(r)
        check(count == len(r.findings), "%s: failures=%d, %d findings" % (options, count,
                                                                         len(r.findings)))
        for kind in JUNIT_CASE:
            n = sum(1 for f in r.findings if f["kind"] == kind)
            check(len(failures.get(JUNIT_CASE[kind], [])) == n, "%s: %d <failure> under %s, %d "
                  "findings of kind %s" % (options, len(failures.get(JUNIT_CASE[kind], [])),
                                           JUNIT_CASE[kind], n, kind))
        for case, names in expected.items():
            for name in names:
                check(any(name in text for text in failures[case]),
                      "%s: no <failure> under %s with %s's stack: %r" % (options, case, name,
                                                                        failures[case]))


@scratch_test
def test_exitcode():
    r = run_check("leak", "--exitcode", "7", exitcode=7, expect=7)
    check(r.doc["exit_code"] == 7 and r.findings, "--exitcode 7: %r" % r.doc["exit_code"])
    r = run_check("double_free", "--exitcode=99", exitcode=99, expect=99)
    r = run_check("clean", "--exitcode", "7", exitcode=7, expect=3)
    check(not r.findings, "clean: %s" % describe(r))


@scratch_test
def test_usage():
    marker = os.path.join(WORK, "ran")
    clean = [program("clean"), "0", marker]
    for args, what in ((["check"], "no program"), (["check", "--"], "no program after --"),
                       (["check", "--json", os.path.join(WORK, "x.json")], "no program"),
                       (["check", "--leaks=bogus", "--"] + clean, "a bad --leaks"),
                       (["check", "--leaks", "possible", "--"] + clean, "a bad --leaks"),
                       (["check", "--max-peak", "ten", "--"] + clean, "a bad --max-peak"),
                       (["check", "--max-peak", "1.5M", "--"] + clean, "a bad --max-peak"),
                       (["check", "--max-peak", "-5", "--"] + clean, "a bad --max-peak"),
                       (["check", "--max-peak", "64kb", "--"] + clean, "a bad --max-peak")):
        one_error_line(heaptrail(*args, env=environment(), cwd=WORK), 1, r"^heaptrail: check: ",
                       "heaptrail %s (%s)" % (" ".join(args), what))
    check(not os.path.exists(marker), "the program ran despite a usage error")
    check(not os.path.exists(os.path.join(WORK, "x.json")), "a usage error wrote the JSON file")
    # --help, and help check.
    out = heaptrail("check", "--help", check_code=0).stdout.decode()
    check(out.lower().startswith("usage: heaptrail check"), "check --help: %r" % out[:80])
    check(heaptrail("help", "check", check_code=0).stdout.decode() == out, "help check differs")
    for option in ("--leaks", "--suppressions", "--no-default-suppressions",
                   "--print-suppressions", "--max-peak", "--fail-on-oom", "--junit", "--json",
                   "--exitcode", "--trace", "--stacks", "--quiet"):
        check(option in out, "check --help does not mention %s" % option)
    # A program that cannot be run: 127 not found, 126 not executable, as record.
    missing = os.path.join(WORK, "missing-program")
    p = heaptrail("check", "--", missing, env=environment(), cwd=WORK)
    check(p.returncode == 127 and missing in p.stderr.decode(), "a missing program: exit %d, %r" %
          (p.returncode, p.stderr))
    data = write("data.txt", "just data\n")
    os.chmod(data, stat.S_IRUSR | stat.S_IWUSR)
    p = heaptrail("check", "--", data, env=environment(), cwd=WORK)
    check(p.returncode == 126 and data in p.stderr.decode(), "a file not executable: exit %d, %r" %
          (p.returncode, p.stderr))


# ---- real programs ----------------------------------------------------------------------------

def real_program(command, package):
    """command run plainly and under check: the same status (0) and stdout, no finding."""
    require(command[0], package)
    env = environment()
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    plain = run(command, env=env, cwd=WORK)
    check(plain.returncode == 0, "%s alone: exit %d" % (command, plain.returncode))
    json_path = os.path.join(WORK, "real.json")
    p = heaptrail("check", "--json", json_path, "--", *command, env=env, cwd=WORK)
    detail = ""
    if os.path.exists(json_path):
        with open(json_path) as f:
            document = json.load(f)
        validate(document, p.returncode, FOUND, "check %s" % " ".join(command))
        result = Result(p, document, None)
        detail = describe(result)
        check(not result.findings, "%s under check: %s\n%s" % (command, detail,
                                                                p.stderr.decode()[-4000:]))
        check(document["scan"]["done"], "%s: no scan: %r" % (command, document["scan"]))
    check(p.returncode == plain.returncode, "%s under check: exit %d, alone %d (%s)\n%s" % (
        command, p.returncode, plain.returncode, detail, p.stderr.decode()[-4000:]))
    check(p.stdout == plain.stdout, "%s: stdout under check %r, alone %r" % (
        command, p.stdout[:500], plain.stdout[:500]))
    check(os.path.exists(json_path), "%s: no JSON file" % command)


@scratch_test
def test_real_python():
    real_program(["python3", "-c", "print(1)"], "python3")


@scratch_test
def test_real_sqlite3():
    real_program(["sqlite3", ":memory:", "select 1;"], "sqlite3")


@scratch_test
def test_real_bash():
    real_program(["bash", "-c", "echo hi"], "bash")


@scratch_test
def test_real_git():
    real_program(["git", "--version"], "git")


@scratch_test
def test_real_gcc_memcheck():
    """gcc's driver leaks for real (memcheck: a few hundred bytes definitely lost, some
    indirectly): check's two lost classes must be memcheck's, byte for byte and block for
    block, and the run a finding (23) with gcc's own output made."""
    require("gcc", "gcc")
    require("valgrind", "valgrind")
    source = write("hello.c", "int main(void) { return 0; }\n")
    command = ["gcc", "-c", "-o", os.path.join(WORK, "hello.o"), source]
    memcheck = run(["valgrind", "--leak-check=full", "--errors-for-leak-kinds=none"] + command,
                   env=environment(), cwd=WORK)
    check(memcheck.returncode == 0, "gcc under memcheck: exit %d" % memcheck.returncode)
    want = {}
    for kind in ("definitely", "indirectly"):
        m = re.search(r"%s lost: ([\d,]+) bytes in ([\d,]+) blocks" % kind,
                      memcheck.stderr.decode(errors="replace"))
        check(m, "memcheck's summary has no '%s lost' line" % kind)
        want[kind] = (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", "")))
    os.unlink(os.path.join(WORK, "hello.o"))
    r = run_check("gcc", "--leaks=all", args=command[1:], expect=FOUND if want["definitely"][1] or
                  want["indirectly"][1] else 0)
    leaks = r.doc["leaks"]
    for kind, key in (("definitely", "definitely_lost"), ("indirectly", "indirectly_lost")):
        got = (leaks[key]["bytes"], leaks[key]["blocks"])
        check(got == want[kind], "%s lost: check %r, memcheck %r" % (kind, got, want[kind]))
    check(os.path.exists(os.path.join(WORK, "hello.o")), "gcc made no object under check")


TESTS = {name[5:]: function for name, function in globals().items()
         if name.startswith("test_") and callable(function)}


if __name__ == "__main__":
    sys.exit(cli_test.main(TESTS))
