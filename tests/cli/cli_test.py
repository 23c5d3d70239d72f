#!/usr/bin/env python3
"""cli_test.py — tests of the heaptrail command line, one CTest entry per test name.
Usage: cli_test.py --source DIR --heaptrail PATH --preload PATH --bin NAME=PATH... TEST
Real programs run twice, plainly and under `heaptrail record`, in fresh directories with the same
HOME, TZ=UTC and LC_ALL=C: their output and exit status must match, and every trace they leave
must pass trace_check (a strict replay: each FREE and REALLOC names a live block, nothing lands
on a live block, nothing lost). Exit status: 0 pass, 1 fail, 77 skipped. Standard library only.
"""
import argparse
import csv
import glob
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ARGS = None
SKIP = 77


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


# ---- running things ---------------------------------------------------------------------------

def base_env(home):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("HEAPTRAIL_")}
    env.update(HOME=home, TZ="UTC", LC_ALL="C", XDG_CONFIG_HOME=os.path.join(home, ".config"))
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def run(args, env=None, cwd=None, stdin=None, timeout=90, check_code=None):
    try:
        p = subprocess.run(args, env=env, cwd=cwd, stdin=stdin if stdin is not None
                           else subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("timed out: %s" % " ".join(args))
    if check_code is not None and p.returncode != check_code:
        raise Failure("%s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), p.returncode, check_code, p.stdout.decode(errors="replace")[-2000:],
            p.stderr.decode(errors="replace")[-3000:]))
    return p


def heaptrail(*args, **kwargs):
    return run([ARGS.heaptrail] + [str(a) for a in args], **kwargs)


def trace_check(path, lenient=False, heap=None):
    args = [ARGS.bin["check"]]
    if lenient:
        args.append("--lenient")
    if heap:
        args += ["--heap", heap]
    p = run(args + [path])
    if p.returncode != 0:
        raise Failure("trace_check %s failed (exit %d):\n%s%s" % (
            path, p.returncode, p.stdout.decode(), p.stderr.decode()))
    values = {}
    for line in p.stdout.decode().splitlines():
        key, _, value = line.partition("=")
        values[key] = int(value) if re.fullmatch(r"\d+", value) else value
    return values


def dump_rows(path, *options):
    p = heaptrail("dump", "--format", "csv", *options, path, check_code=0)
    return list(csv.DictReader(io.StringIO(p.stdout.decode())))


def scratch():
    return tempfile.mkdtemp(prefix="heaptrail-cli.")


class Program:
    """One real-program case: the same steps run plainly and under heaptrail record."""

    def __init__(self, name):
        self.name = name
        self.root = scratch()

    def runs(self, steps, record_options=()):
        """steps(run_step) runs commands through run_step(args, stdin=None, cwd_name=None) and
        returns nothing; run_step returns the CompletedProcess. Returns (plain output, recorded
        output, trace files)."""
        outputs = {}
        for mode in ("plain", "record"):
            work = os.path.join(self.root, mode, "work")
            home = os.path.join(self.root, mode, "home")
            traces = os.path.join(self.root, mode, "traces")
            for d in (work, home, traces):
                os.makedirs(d, exist_ok=True)
            env = base_env(home)
            log = []
            counter = [0]

            def run_step(args, stdin=None, subdir=None, env_extra=None):
                step_env = dict(env)
                if env_extra:
                    step_env.update(env_extra)
                cwd = os.path.join(work, subdir) if subdir else work
                counter[0] += 1
                if mode == "record":
                    output = os.path.join(traces, "step%d.%%p.trace" % counter[0])
                    args = [ARGS.heaptrail, "record", "-q", "-o", output] + \
                        list(record_options) + ["--"] + list(args)
                with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
                    p = run(args, env=step_env, cwd=cwd, stdin=f)
                log.append("step %d exit=%d\n" % (counter[0], p.returncode))
                log.append(p.stdout.decode(errors="replace"))
                if p.returncode != 0:
                    log.append("stderr: " + p.stderr.decode(errors="replace")[-1500:])
                return p

            steps(run_step, work)
            outputs[mode] = "".join(log)
        plain, recorded = outputs["plain"], outputs["record"]
        if plain != recorded:
            import difflib
            diff = "".join(difflib.unified_diff(plain.splitlines(True), recorded.splitlines(True),
                                                "plain", "record", n=2))
            raise Failure("%s: output differs under heaptrail record:\n%s" % (self.name,
                                                                             diff[:6000]))
        check(" exit=0" in plain or plain == "", "%s: no step succeeded" % self.name)
        traces = sorted(glob.glob(os.path.join(self.root, "record", "traces", "*")))
        return plain, traces

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def check_all(traces, minimum=1, lenient=False):
    check(len(traces) >= minimum, "expected at least %d traces, found %d" % (minimum,
                                                                             len(traces)))
    results = [trace_check(t, lenient=lenient) for t in traces]
    # A forked child that leaves through exec or _exit right away may have written no events
    # (its buffers go with it); the traces as a whole must have some.
    check(any(r["events"] > 0 for r in results), "no events in %s" % traces)
    return results


def require(program, package):
    if shutil.which(program) is None:
        raise Failure("'%s' is not installed: this test needs it (Debian package: %s)" % (
            program, package))


# ---- help and usage ---------------------------------------------------------------------------

MY_COMMANDS = ["record", "dump", "stats", "start", "stop", "status", "snapshot"]


def test_help():
    p = heaptrail("--help", check_code=0)
    text = p.stdout.decode()
    listed = re.findall(r"^  (\w+) ", text.split("Commands:")[1].split("\n\n")[0], re.M)
    for command in MY_COMMANDS:
        check(command in listed, "--help does not list %s" % command)
    p = heaptrail("--version", check_code=0)
    check(re.fullmatch(r"heaptrail \d+\.\d+\.\d+\n", p.stdout.decode()), "bad --version")
    readme = open(os.path.join(ARGS.source, "README.md")).read()
    section = readme.split("## Command line", 1)
    check(len(section) == 2, "README.md has no 'Command line' section")
    section = section[1].split("\n## ", 1)[0]
    for command in listed:
        p = heaptrail(command, "--help", check_code=0)
        out = p.stdout.decode()
        check(out.lower().startswith("usage: heaptrail %s" % command),
              "%s --help does not start with its usage: %r" % (command, out[:80]))
        check(heaptrail("help", command).stdout == p.stdout, "help %s differs" % command)
        check("heaptrail %s" % command in section,
              "README's Command line section does not show 'heaptrail %s'" % command)
        if command in MY_COMMANDS:
            for option in sorted(set(re.findall(r"(--[a-z][a-z-]+)", out))):
                check(option in section, "README does not document %s %s" % (command, option))
    # The environment variables the preload reads are documented.
    for variable in ("HEAPTRAIL_OUTPUT", "HEAPTRAIL_MODE", "HEAPTRAIL_STACKS", "HEAPTRAIL_SAMPLE",
                     "HEAPTRAIL_FOLLOW_FORKS", "HEAPTRAIL_CONTROL", "HEAPTRAIL_CONTROL_DIR"):
        check(variable in readme, "README does not document %s" % variable)


def expect_error(args, code, pattern):
    p = heaptrail(*args)
    err = p.stderr.decode()
    check(p.returncode == code, "heaptrail %s: exit %d, expected %d; stderr: %s" % (
        " ".join(args), p.returncode, code, err))
    check(re.search(pattern, err), "heaptrail %s: stderr %r does not match %r" % (
        " ".join(args), err, pattern))
    return p


def free_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_usage():
    expect_error([], 1, r"Usage: heaptrail COMMAND")
    expect_error(["frobnicate"], 1, r"^heaptrail: unknown command 'frobnicate'\n")
    expect_error(["--frobnicate"], 1, r"^heaptrail: unknown option '--frobnicate'\n")
    expect_error(["dump", "--bogus", "x"], 1,
                 r"^heaptrail: dump: unknown option '--bogus'\nTry 'heaptrail dump --help'")
    expect_error(["dump", "-Z", "x"], 1, r"^heaptrail: dump: unknown option '-Z'")
    expect_error(["dump"], 1, r"^heaptrail: dump: no trace file given")
    expect_error(["dump", "a", "b"], 1, r"one trace file at a time")
    expect_error(["dump", "--format", "xml", "x"], 1,
                 r"bad value 'xml' for --format: expected one of text, csv, jsonl")
    expect_error(["dump", "x", "--limit"], 1, r"option '--limit' needs a value")
    expect_error(["dump", "--limit", "ten", "x"], 1, r"bad value 'ten' for --limit")
    expect_error(["dump", "--event", "MALLOC", "x"], 1, r"bad value 'MALLOC' for --event")
    expect_error(["dump", "--source", "FAST", "x"], 1, r"bad value 'FAST' for --source")
    expect_error(["dump", "--from", "yesterday", "x"], 1, r"bad value 'yesterday' for --from")
    expect_error(["stats", "--format", "xml", "x"], 1, r"bad value 'xml' for --format")
    expect_error(["stats", "--help=3"], 1, r"option '--help' takes no value")
    expect_error(["record"], 1, r"^heaptrail: record: no program given")
    expect_error(["record", "--mode", "fast", "--", "true"], 1,
                 r"bad value 'fast' for --mode: expected one of block, discard, ring")
    expect_error(["record", "--stacks=0", "--", "true"], 1, r"bad value '0' for --stacks")
    expect_error(["record", "--stacks=999", "--", "true"], 1, r"expected 1 to 128 frames")
    expect_error(["record", "--sample", "-5", "--", "true"], 1, r"bad value '-5' for --sample")
    expect_error(["record", "--compress", "30", "--", "true"], 1, r"expected 1 to 19")
    expect_error(["record", "--unknown", "--", "true"], 1, r"unknown option '--unknown'")
    work = scratch()
    try:
        expect_error(["record", "-o", os.path.join(work, "no", "such", "dir", "t.trace"), "--",
                      "true"], 2, r"record: cannot create '.*t\.trace': No such file or directory")
        expect_error(["record", "-o", os.path.join(work, "t.trace"), "--",
                      os.path.join(work, "missing-program")], 127,
                     r"record: cannot run '.*missing-program': No such file or directory")
        not_executable = os.path.join(work, "data.txt")
        open(not_executable, "w").write("just data\n")
        expect_error(["record", "-o", os.path.join(work, "t2.trace"), "--", not_executable], 126,
                     r"cannot run '.*data\.txt': Permission denied")
        check(not os.path.exists(os.path.join(work, "t.trace")),
              "record left an empty trace behind after a failed exec")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    expect_error(["start"], 1, r"^heaptrail: start: no process id given")
    expect_error(["status", "12ab"], 1, r"'12ab' is not a process id")
    expect_error(["stop", "1", "2"], 1, r"one process at a time")
    expect_error(["start", "--mode", "x", "1"], 1, r"bad value 'x' for --mode")
    pid = free_pid()
    expect_error(["status", str(pid)], 2, r"^heaptrail: status: no process %d\n" % pid)
    sleeper = subprocess.Popen(["sleep", "30"], env=base_env("/tmp"))
    try:
        expect_error(["status", str(sleeper.pid)], 2,
                     r"process %d \(sleep\) has not loaded libheaptrail-preload.so" % sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


# ---- traces made through the API --------------------------------------------------------------

def make_trace(directory, name="made.trace", *options):
    path = os.path.join(directory, name)
    p = run([ARGS.bin["make_trace"], path] + list(options), check_code=0)
    heap = p.stdout.decode().strip().split("=")[1]
    return path, heap


def test_bad_traces():
    work = scratch()
    try:
        missing = os.path.join(work, "missing.trace")
        for command in ("dump", "stats"):
            p = heaptrail(command, missing)
            check(p.returncode == 2, "%s of a missing file: exit %d" % (command, p.returncode))
            check(p.stderr.decode() == "heaptrail: %s: cannot open '%s': No such file or "
                  "directory\n" % (command, missing), "message: %r" % p.stderr.decode())
        expect_error(["dump", work], 2, r"cannot open '.*': Is a directory")
        expect_error(["dump", "/dev/null"], 2, r"cannot open '/dev/null': not a regular file")
        empty = os.path.join(work, "empty.trace")
        open(empty, "wb").close()
        expect_error(["dump", empty], 3, r"is not a readable heaptrail trace: .*shorter than")
        text = os.path.join(work, "text.trace")
        open(text, "w").write("hello, this is not a trace at all\n" * 10)
        expect_error(["stats", text], 3, r"is not a readable heaptrail trace: .*bad magic")
        if os.geteuid() != 0:
            unreadable = os.path.join(work, "unreadable.trace")
            open(unreadable, "wb").write(b"x")
            os.chmod(unreadable, 0)
            expect_error(["dump", unreadable], 2, r"cannot open '.*': Permission denied")

        good, _ = make_trace(work)
        data = open(good, "rb").read()
        full = heaptrail("dump", "--format", "csv", good, check_code=0).stdout
        # Compared without timestamps: a cut trace has fewer clock pairs to convert ticks with.
        def untimed(text):
            return {line.split(b",", 1)[1] for line in text.splitlines()[1:]}
        full_lines = untimed(full)
        # Cut at many points: never a crash; a clear message; a prefix of the full output.
        cuts = sorted(set([1, 15, 16, 17, 31, 32, 100, 1000] +
                          [len(data) * k // 23 for k in range(1, 23)] + [len(data) - 1]))
        for cut in cuts:
            path = os.path.join(work, "cut.trace")
            open(path, "wb").write(data[:cut])
            for command in (["dump", "--format", "csv"], ["dump", "--format", "jsonl"],
                            ["dump"], ["stats"], ["stats", "--format", "json"]):
                p = heaptrail(*(command + [path]))
                err = p.stderr.decode()
                check(p.returncode in (0, 3), "%s of a trace cut at %d: exit %d (%s)" % (
                    command, cut, p.returncode, err))
                check(p.returncode == 0 or err.startswith("heaptrail: %s: " % command[0]),
                      "cut at %d: unclear message %r" % (cut, err))
                if command == ["dump", "--format", "csv"]:
                    extra = untimed(p.stdout) - full_lines
                    check(not extra, "cut at %d: events that are not in the whole trace: %s" %
                          (cut, sorted(extra)[:3]))
        # Damage inside the file: checksum errors name an offset, exit 3, no crash.
        for position in range(40, len(data), max(1, len(data) // 17)):
            damaged = bytearray(data)
            damaged[position] ^= 0x5A
            path = os.path.join(work, "damaged.trace")
            open(path, "wb").write(bytes(damaged))
            for command in (["dump", "--format", "csv"], ["stats"]):
                p = heaptrail(*(command + [path]))
                check(p.returncode in (0, 3), "%s with byte %d damaged: exit %d" % (
                    command, position, p.returncode))
                if p.returncode == 3:
                    check(re.search(r"offset \d+", p.stderr.decode()),
                          "damage at %d: no offset in %r" % (position, p.stderr.decode()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


CSV_HEADER = ("timestamp_ns,thread,event,HeapHandle,Address,Size,NewAddress,OldAddress,NewSize,"
              "OldSize,Source,stack")
KINDS = {"ALLOC", "FREE", "REALLOC", "HEAP_CREATE", "HEAP_DESTROY", "HEAP_EXPAND",
         "HEAP_CONTRACT", "RUNDOWN_HEAP", "RUNDOWN_BLOCK", "LOST"}
SOURCES = {"MEMORY_FROM_LOOKASIDE", "MEMORY_FROM_LOWFRAG", "MEMORY_FROM_MAINPATH",
           "MEMORY_FROM_SLOWPATH", "MEMORY_FROM_INVALID"}
# Which of the columns between event and Source each kind fills.
FILLED = {
    "ALLOC": {"HeapHandle", "Address", "Size", "Source"},
    "FREE": {"HeapHandle", "Address", "Source"},
    "REALLOC": {"HeapHandle", "NewAddress", "OldAddress", "NewSize", "OldSize", "Source"},
    "HEAP_CREATE": {"HeapHandle"},
    "HEAP_DESTROY": {"HeapHandle"},
    "HEAP_EXPAND": {"HeapHandle", "Size"},
    "HEAP_CONTRACT": {"HeapHandle", "Size"},
    "RUNDOWN_HEAP": {"HeapHandle"},
    "RUNDOWN_BLOCK": {"HeapHandle", "Address", "Size", "Source"},
    "LOST": {"Size"},
}
ADDRESS_COLUMNS = {"HeapHandle", "Address", "NewAddress", "OldAddress"}
SIZE_COLUMNS = {"Size", "NewSize", "OldSize"}


def validate_csv(text):
    lines = text.splitlines()
    check(lines and lines[0] == CSV_HEADER, "csv header is %r" % (lines[:1],))
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    result = []
    for number, row in enumerate(rows[1:], 2):
        check(len(row) == 12, "csv line %d has %d cells" % (number, len(row)))
        record = dict(zip(header, row))
        kind = record["event"]
        check(kind in KINDS, "csv line %d: event %r" % (number, kind))
        check(re.fullmatch(r"\d+", record["timestamp_ns"]) and re.fullmatch(r"\d+",
              record["thread"]), "csv line %d: timestamp/thread %r" % (number, row[:2]))
        for column in header[3:11]:
            value = record[column]
            if column in FILLED[kind]:
                if column in ADDRESS_COLUMNS:
                    check(re.fullmatch(r"0x[0-9a-f]+", value), "line %d %s=%r" % (
                        number, column, value))
                elif column in SIZE_COLUMNS:
                    check(re.fullmatch(r"\d+", value), "line %d %s=%r" % (number, column, value))
                else:
                    check(value in SOURCES, "line %d Source=%r" % (number, value))
            else:
                check(value == "", "line %d (%s): %s should be empty, is %r" % (
                    number, kind, column, value))
        check(record["stack"] == "" or re.fullmatch(r"[1-9]\d*", record["stack"]),
              "line %d stack=%r" % (number, record["stack"]))
        result.append(record)
    return result


def validate_jsonl(text, csv_records):
    lines = text.splitlines()
    check(len(lines) == len(csv_records), "jsonl has %d lines, csv %d rows" % (
        len(lines), len(csv_records)))
    keys = CSV_HEADER.split(",")
    for number, (line, record) in enumerate(zip(lines, csv_records), 1):
        obj = json.loads(line)
        check(list(obj.keys()) == keys, "jsonl line %d keys %s" % (number, list(obj)))
        for key in keys:
            value = obj[key]
            expected = record[key]
            if expected == "":
                check(value is None, "jsonl line %d %s=%r, csv empty" % (number, key, value))
            elif key in ("timestamp_ns", "thread", "stack") or key in SIZE_COLUMNS:
                check(value == int(expected), "jsonl line %d %s=%r, csv %r" % (
                    number, key, value, expected))
            else:
                check(value == expected, "jsonl line %d %s=%r, csv %r" % (
                    number, key, value, expected))


def test_dump_formats():
    work = scratch()
    try:
        path, heap = make_trace(work)
        checked = trace_check(path)
        csv_text = heaptrail("dump", "--format", "csv", path, check_code=0).stdout.decode()
        records = validate_csv(csv_text)
        check(len(records) == checked["events"], "csv rows %d, events %d" % (
            len(records), checked["events"]))
        validate_jsonl(heaptrail("dump", "-f", "jsonl", path, check_code=0).stdout.decode(),
                       records)
        text = heaptrail("dump", path, check_code=0).stdout.decode().splitlines()
        body = [l for l in text if not l.startswith("#")]
        check(len(body) == len(records), "text lines %d, csv rows %d" % (len(body), len(records)))
        check(all(re.match(r"\d+\.\d{9} \d+ [A-Z_]+ ", l) for l in body), "text line format")
        kinds = [r["event"] for r in records]
        # What make_trace did, exactly.
        allocs = [r for r in records if r["event"] == "ALLOC"]
        check(sum(1 for r in allocs if 1000 <= int(r["Size"]) < 1300) == 300, "300 kept ALLOCs")
        check(sum(1 for r in allocs if r["Size"] == "40") == 200, "200 ALLOCs of 40")
        check(kinds.count("REALLOC") == 50, "50 REALLOCs, got %d" % kinds.count("REALLOC"))
        check(any(r["event"] == "FREE" and r["Source"] == "MEMORY_FROM_INVALID" for r in records),
              "the invalid FREE")
        check(any(r["event"] == "ALLOC" and r["Size"] == "700000" and
                  r["Source"] == "MEMORY_FROM_SLOWPATH" for r in records), "the large block")
        for kind in ("RUNDOWN_HEAP", "RUNDOWN_BLOCK", "HEAP_CREATE", "HEAP_DESTROY"):
            check(kind in kinds, "no %s event" % kind)
        check(any(r["event"] == "RUNDOWN_BLOCK" and r["Size"] == "77" for r in records),
              "the block from before the start is in the rundown")
        timestamps = [int(r["timestamp_ns"]) for r in records]
        check(timestamps == sorted(timestamps), "events out of time order")

        # Filters.
        def rows(*options):
            return validate_csv(heaptrail("dump", "-f", "csv", *options, path,
                                          check_code=0).stdout.decode())
        only = rows("--event", "alloc,Realloc")
        check({r["event"] for r in only} == {"ALLOC", "REALLOC"} and
              len(only) == len(allocs) + 50, "--event alloc,Realloc")
        check(len(rows("--event", "blocks")) == sum(k in ("ALLOC", "FREE", "REALLOC")
                                                     for k in kinds), "--event blocks")
        lowfrag = rows("--source", "LOWFRAG,memory_from_lookaside")
        check(lowfrag and all(r["Source"] in ("MEMORY_FROM_LOWFRAG", "MEMORY_FROM_LOOKASIDE")
                              for r in lowfrag), "--source")
        invalid = rows("--source", "5")
        check(len(invalid) == 1 and invalid[0]["event"] == "FREE", "--source 5: %s" % invalid)
        by_heap = rows("--heap", heap)
        check(by_heap and all(r["HeapHandle"] == heap for r in by_heap), "--heap")
        sized = rows("--min-size", "1100", "--max-size", "1199")
        check(len(sized) == 100 and all(1100 <= int(r["Size"] or r["NewSize"]) <= 1199
                                        for r in sized), "--min-size/--max-size: %d" % len(sized))
        check(len(rows("--min-size", "1k", "--max-size", "1k")) == 1, "size suffixes")
        check(len(rows("--limit", "7")) == 7, "--limit 7")
        check(len(rows("--limit", "0")) == 0, "--limit 0")
        start = int(records[0]["timestamp_ns"])
        middle = timestamps[len(timestamps) // 2]
        window = rows("--from", "@%d" % middle)
        check(window and all(int(r["timestamp_ns"]) >= middle for r in window), "--from @")
        check(len(window) + len(rows("--to", "@%d" % middle)) == len(records), "--from/--to split")
        relative = rows("--from", "%dns" % (middle - start + 0), "--to", "1000s")
        check(len(relative) >= len(window) - 5, "relative --from")
        threads = {r["thread"] for r in records}
        check(len(threads) >= 2, "two threads in make_trace")
        one = sorted(threads)[0]
        check(all(r["thread"] == one for r in rows("--thread", one)), "--thread")
        # -o writes the same bytes.
        out = os.path.join(work, "out.csv")
        heaptrail("dump", "-f", "csv", "-o", out, path, check_code=0)
        check(open(out).read() == csv_text, "--output")
        # Stacks and sampling also dump and check.
        stacked, _ = make_trace(work, "stacks.trace", "--stacks")
        srows = validate_csv(heaptrail("dump", "-f", "csv", stacked,
                                       check_code=0).stdout.decode())
        check(any(r["stack"] for r in srows), "no stack ids in a trace with stacks")
        sampled, _ = make_trace(work, "sampled.trace", "--sample", "4096")
        heaptrail("dump", sampled, check_code=0)
        ring, _ = make_trace(work, "ring.trace", "--mode", "ring")
        validate_csv(heaptrail("dump", "-f", "csv", ring, check_code=0).stdout.decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def piped(args, path):
    """args run with the bytes of path on a pipe as standard input (as `cat path | ...`)."""
    with open(path, "rb") as f:
        cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
        try:
            return run(args, stdin=cat.stdout)
        finally:
            cat.stdout.close()
            cat.wait()


def test_dump_stdin():
    """`cat F | heaptrail dump -` equals `heaptrail dump F` (text and csv), and stats and report
    read `-` alike; a stream cut inside a chunk ends with the file reader's warning."""
    work = scratch()
    try:
        path = os.path.join(work, "live.trace")
        heaptrail("record", "-q", "--stacks", "-o", path, "--", ARGS.bin["live_check"], "2",
                  "300", env=base_env(work), cwd=work, check_code=0)
        for options in ([], ["--format", "csv"], ["-f", "jsonl", "--event", "blocks"]):
            want = heaptrail("dump", *options, path, check_code=0)
            got = piped([ARGS.heaptrail, "dump"] + options + ["-"], path)
            check(got.returncode == 0, "dump -: exit %d: %s" % (got.returncode, got.stderr))
            check(got.stdout == want.stdout, "dump %s -: differs from the file's (%d and %d "
                  "bytes)" % (" ".join(options), len(got.stdout), len(want.stdout)))
            check(len(want.stdout.splitlines()) > 100, "a real trace: %d lines" %
                  len(want.stdout.splitlines()))
        want = json.loads(heaptrail("stats", "-f", "json", path, check_code=0).stdout)
        got = piped([ARGS.heaptrail, "stats", "-f", "json", "-"], path)
        check(got.returncode == 0, "stats -: %s" % got.stderr)
        got = json.loads(got.stdout)
        for key in ("trace", "duration_ns"):
            want.pop(key, None)
            got.pop(key, None)
        check(got == want, "stats - differs: %s" % sorted(
            k for k in want if want.get(k) != got.get(k)))
        want = heaptrail("report", "--sections", "summary,top", path, check_code=0).stdout
        got = piped([ARGS.heaptrail, "report", "--sections", "summary,top", "-"], path)
        check(got.returncode == 0, "report -: %s" % got.stderr)
        check(got.stdout.replace(b"report: -", b"report: " + path.encode()) == want,
              "report - differs:\n%s\n%s" % (got.stdout.decode(), want.decode()))
        # Cut inside a chunk: the same events and the same warning as the file cut there.
        cut = os.path.join(work, "cut.trace")
        with open(path, "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:len(data) * 2 // 3])
        want = heaptrail("dump", "-f", "csv", cut)
        got = piped([ARGS.heaptrail, "dump", "-f", "csv", "-"], cut)
        check(got.returncode == want.returncode and got.stdout == want.stdout,
              "cut: exit %d and %d" % (got.returncode, want.returncode))
        check(b"ends inside" in got.stderr and
              got.stderr.replace(b"-:", cut.encode() + b":") == want.stderr,
              "cut: %r, file: %r" % (got.stderr, want.stderr))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stats_json(path):
    return json.loads(heaptrail("stats", "--format", "json", path, check_code=0).stdout)


def test_stats():
    work = scratch()
    try:
        path, heap = make_trace(work)
        checked = trace_check(path)
        s = stats_json(path)
        check(s["events"] == checked["events"], "stats events %d, check %d" % (
            s["events"], checked["events"]))
        check(s["live_blocks"] == checked["live_blocks"] == 301,
              "live blocks: stats %s, check %s, expected 301" % (s["live_blocks"],
                                                                 checked["live_blocks"]))
        check(s["live_bytes"] == checked["live_bytes"] == 77 + sum(range(1000, 1300)),
              "live bytes: stats %s, check %s" % (s["live_bytes"], checked["live_bytes"]))
        check(s["by_event"]["ALLOC"]["count"] == checked["alloc"], "ALLOC count")
        check(s["by_event"]["REALLOC"]["count"] == 50, "REALLOC count")
        check(s["invalid"] == 1 == checked["invalid"], "one invalid operation")
        check(s["peak_bytes"] >= s["live_bytes"] + 700000, "the peak includes the large block")
        check(sum(v["alloc"] for v in s["by_source"].values()) == checked["alloc"],
              "by_source sums to the ALLOC count")
        heaps = {h["HeapHandle"]: h for h in s["heaps"]}
        check(heaps[heap]["live_blocks"] == 301, "per-heap live blocks")
        check(any(h["destroyed"] for h in s["heaps"]), "the destroyed heap")
        check(len(s["threads"]) == 2, "two threads")
        check(s["lost"] == 0 and s["complete"], "complete, nothing lost")
        text = heaptrail("stats", path, check_code=0).stdout.decode()
        for word in ("by event", "by Source", "heaps (", "threads (", "peak", "MEMORY_FROM_"):
            check(word in text, "stats text lacks %r" % word)
        sampled, _ = make_trace(work, "sampled.trace", "--sample", "65536")
        s = stats_json(sampled)
        check(s["sample_interval"] == 65536, "sampled trace")
        check("estimates" in heaptrail("stats", sampled, check_code=0).stdout.decode(),
              "sampled stats are marked as estimates")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- real programs ------------------------------------------------------------------------------

PRELOAD_TESTS = os.path.join("tests", "preload")


def preload_file(name):
    return os.path.join(ARGS.source, PRELOAD_TESTS, name)


def test_record_python():
    require("python3", "python3")
    case = Program("python")
    try:
        def steps(step, work):
            step(["python3", "-I", "-B", preload_file("py_exercise.py")],
                 env_extra={"PYTHONMALLOC": "malloc"})
        _, traces = case.runs(steps)
        results = check_all(traces)
        check(results[0]["alloc"] > 10000, "python3 made few allocations: %d" % results[0]["alloc"])
        check("python" in results[0]["program"], "trace of %s" % results[0]["program"])
        # The summary line and stats agree with the checker.
        s = stats_json(traces[0])
        check(s["events"] == results[0]["events"] and s["live_blocks"] ==
              results[0]["live_blocks"], "stats and trace_check disagree")
        # dump's csv and jsonl of a real trace are well formed (first 20000 events).
        records = validate_csv(heaptrail("dump", "-f", "csv", "-n", "20000", traces[0],
                                         check_code=0).stdout.decode())
        validate_jsonl(heaptrail("dump", "-f", "jsonl", "-n", "20000", traces[0],
                                 check_code=0).stdout.decode(), records)
    finally:
        case.cleanup()


def test_record_sqlite3():
    require("sqlite3", "sqlite3")
    case = Program("sqlite3")
    try:
        def steps(step, work):
            step(["sqlite3", "-batch", "test.db"], stdin=preload_file("sqlite_exercise.sql"))
        _, traces = case.runs(steps)
        results = check_all(traces)
        check(results[0]["alloc"] > 1000, "sqlite3 made few allocations")
    finally:
        case.cleanup()


def test_record_git():
    require("git", "git")
    case = Program("git")
    try:
        def steps(step, work):
            env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat",
                   "GIT_AUTHOR_NAME": "Ada Author", "GIT_AUTHOR_EMAIL": "ada@example.invalid",
                   "GIT_COMMITTER_NAME": "Cy Committer",
                   "GIT_COMMITTER_EMAIL": "cy@example.invalid",
                   "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+0000",
                   "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+0000"}
            step(["git", "init", "-q", "-b", "main", "repo"], env_extra=env)
            repo = os.path.join(work, "repo")
            for i in range(1, 41):
                with open(os.path.join(repo, "file%d.txt" % i), "w") as f:
                    f.write("".join("line %d: %d\n" % (i, j) for j in range(i * 20)))
            step(["git", "add", "-A"], subdir="repo", env_extra=env)
            step(["git", "commit", "-q", "-m", "first"], subdir="repo", env_extra=env)
            for i in range(3, 41, 3):
                path = os.path.join(repo, "file%d.txt" % i)
                open(path, "a").write("changed\n")
            step(["git", "commit", "-q", "-a", "-m", "second"], subdir="repo", env_extra=env)
            step(["git", "log", "--format=%H %an %s"], subdir="repo", env_extra=env)
            step(["git", "diff", "--stat", "HEAD~1", "HEAD"], subdir="repo", env_extra=env)
            step(["git", "gc", "-q"], subdir="repo", env_extra=env)
            step(["git", "fsck", "--no-progress", "--strict"], subdir="repo", env_extra=env)
            step(["git", "rev-parse", "HEAD^{tree}"], subdir="repo", env_extra=env)
        _, traces = case.runs(steps, record_options=["--follow-forks"])
        # git gc runs pack-objects and friends: their traces come along with --follow-forks.
        results = check_all(traces, minimum=9)
        programs = {os.path.basename(r["program"]) for r in results}
        check(any(r["alloc"] > 500 for r in results), "git made few allocations")
        check(len(traces) > 9, "git gc's children were not traced (%s)" % sorted(programs))
    finally:
        case.cleanup()


BASH_SCRIPT = r"""
set -u
declare -a numbers=()
for ((i = 0; i < 4000; i++)); do numbers+=($(( (i * 7919) % 10007 ))); done
total=0; for n in "${numbers[@]}"; do total=$((total + n)); done
echo "array: ${#numbers[@]} elements, sum $total, slice ${numbers[*]:100:5}"
declare -A colour=()
for ((i = 0; i < 3000; i++)); do colour["key$((i % 700))"]+="$((i % 10))"; done
echo "assoc: ${#colour[@]} keys, key5=${colour[key5]}"
text=""; for ((i = 0; i < 3000; i++)); do text+="word$((i % 13)) "; done
replaced=${text//word1/W}; upper=${text^^}
echo "string: ${#text} ${#replaced} ${upper:0:24}"
sub=$(echo "${#numbers[@]}" | tr 0-9 a-j); echo "substitution: $sub"
( declare -a inner=("${numbers[@]:0:500}"); echo "subshell: ${#inner[@]}" )
printf '%s\n' "${numbers[@]:0:300}" | sort -n | uniq | wc -l
f() { local x=$1; echo $((x * 2)); }; echo "function: $(f 21)"
"""


def test_record_bash():
    require("bash", "bash")
    case = Program("bash")
    try:
        # Subshells, command substitutions and pipelines are forks of bash: with
        # --follow-forks each is traced from the fork on, starting with a rundown of the heap it
        # inherited; the commands they run (tr, sort, ...) get traces of their own.
        def steps(step, work):
            step(["bash", "--norc", "--noprofile", "-c", BASH_SCRIPT])
        _, traces = case.runs(steps, record_options=["--follow-forks"])
        results = check_all(traces, minimum=6)
        check(any("bash" in r["program"] and r["alloc"] > 5000 for r in results),
              "no busy bash trace")
        check(sum(1 for r in results if "bash" in r["program"] and r["rundown_blocks"] > 1000)
              >= 3, "no forked bash with an inherited heap")
        programs = {os.path.basename(r["program"]) for r in results}
        check({"tr", "sort"} <= programs, "commands run by bash: %s" % sorted(programs))
    finally:
        case.cleanup()


def test_record_gcc():
    require("gcc", "gcc")
    case = Program("gcc")
    try:
        def steps(step, work):
            step(["gcc", "-std=c11", "-O2", "-Wall", "-c", "-o", "prog.o",
                  preload_file("gcc_input.c")])
            step(["sha256sum", "prog.o"])
        _, traces = case.runs(steps, record_options=["--follow-forks"])
        results = check_all(traces, minimum=3)
        programs = {os.path.basename(r["program"]) for r in results}
        check("cc1" in programs, "cc1 was not traced: %s" % sorted(programs))
    finally:
        case.cleanup()


def test_record_cxx_threads():
    case = Program("cxx_threads")
    try:
        def steps(step, work):
            step([ARGS.bin["cxx_threads"], "4", "200"])
        _, traces = case.runs(steps)
        results = check_all(traces)
        check(results[0]["alloc"] > 10000, "few allocations")
    finally:
        case.cleanup()


def test_record_fork():
    case = Program("fork_child")
    try:
        def steps(step, work):
            step([ARGS.bin["fork_child"], "8"])
        _, traces = case.runs(steps, record_options=["--follow-forks"])
        # The parent, 8 children, 2 grandchildren (children 0 and 4).
        results = check_all(traces, minimum=11)
        check(len(traces) == 11, "expected 11 traces, found %d" % len(traces))
        pids = {r["pid"] for r in results}
        check(len(pids) == 11, "traces of %d distinct processes" % len(pids))
        # Every generation is named from the pattern: step1.PID.trace, grandchildren included.
        for path, r in zip(traces, results):
            check(os.path.basename(path) == "step1.%d.trace" % r["pid"],
                  "the trace of pid %d is named %s" % (r["pid"], os.path.basename(path)))
    finally:
        case.cleanup()
    # Without --follow-forks: the parent only.
    case = Program("fork_child")
    try:
        def steps(step, work):
            step([ARGS.bin["fork_child"], "4"])
        _, traces = case.runs(steps)
        check(len(traces) == 1, "without --follow-forks: %d traces" % len(traces))
        check_all(traces)
    finally:
        case.cleanup()


def test_live_set():
    work = scratch()
    try:
        trace = os.path.join(work, "live.trace")
        p = heaptrail("record", "-o", trace, "--", ARGS.bin["live_check"], "4", "20000",
                      env=base_env(work), cwd=work, check_code=0)
        line = p.stdout.decode().strip()
        m = re.fullmatch(r"heap=(0x[0-9a-f]+) live_blocks=(\d+) requested=(\d+) summary=1 "
                         r"stopped=0", line)
        check(m, "live_check printed %r" % line)
        heap, blocks, requested = m.group(1), int(m.group(2)), int(m.group(3))
        checked = trace_check(trace, heap=heap)
        check((checked["live_blocks"], checked["live_bytes"]) == (blocks, requested),
              "trace's live set %d blocks / %d bytes; the heap says %d / %d" % (
                  checked["live_blocks"], checked["live_bytes"], blocks, requested))
        s = stats_json(trace)
        h = [x for x in s["heaps"] if x["HeapHandle"] == heap][0]
        check((h["live_blocks"], h["live_bytes"]) == (blocks, requested),
              "stats' live set per heap %s" % h)
        # The footer and the summary line of record agree (live_check stopped the session).
        check((checked["end_live_blocks"], checked["end_live_bytes"]) == (blocks, requested),
              "the footer's live set %d blocks / %d bytes; the heap says %d / %d" % (
                  checked["end_live_blocks"], checked["end_live_bytes"], blocks, requested))
        check(summary_live(p.stderr) == (blocks, "when tracing stopped"),
              "record's summary: %r" % p.stderr.decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summary_live(stderr):
    """(blocks, "at exit" or "when tracing stopped") from record's summary line, or None."""
    m = re.search(r"; [\d.]+ (?:B|KiB|MiB|GiB) in ([\d,]+) blocks? live (at exit|when tracing "
                  r"stopped), peak committed [\d.]+ (?:B|KiB|MiB|GiB); peak live bytes: "
                  r"heaptrail stats \S+\n", stderr.decode())
    return (int(m.group(1).replace(",", "")), m.group(2)) if m else None


def test_record_summary():
    """record's summary comes from the footer, which has the heaps' own live set: exact with
    sampling and with the block events filtered out, which the events could not give."""
    work = scratch()
    try:
        for name, options, extra in (("sampled", ["--sample", "65536"], {}),
                                     ("heap-events", [], {"HEAPTRAIL_EVENTS": "heap"})):
            trace = os.path.join(work, name + ".trace")
            env = base_env(work)
            env.update(extra)
            p = heaptrail("record", *options, "-o", trace, "--", ARGS.bin["live_check"], "2",
                          "5000", env=env, cwd=work, check_code=0)
            m = re.fullmatch(r"heap=(0x[0-9a-f]+) live_blocks=(\d+) requested=(\d+) summary=1 "
                             r"stopped=0", p.stdout.decode().strip())
            check(m, "%s: live_check printed %r" % (name, p.stdout))
            blocks, requested = int(m.group(2)), int(m.group(3))
            check(summary_live(p.stderr) == (blocks, "when tracing stopped"),
                  "%s: %d blocks live; record's summary: %r" % (name, blocks, p.stderr.decode()))
            checked = trace_check(trace, lenient=True)
            check((checked["end_live_blocks"], checked["end_live_bytes"]) == (blocks, requested),
                  "%s: the footer says %s" % (name, checked))
            check(checked["live_blocks"] != blocks, "%s: the events alone give the live set "
                  "(%d blocks): the test shows nothing" % (name, blocks))
            check(checked["peak_committed"] >= requested, "%s: peak committed %d" % (
                name, checked["peak_committed"]))
        # A session that ends with the program: "at exit".
        trace = os.path.join(work, "true.trace")
        p = heaptrail("record", "-o", trace, "--", "true", env=base_env(work), cwd=work,
                      check_code=0)
        live = summary_live(p.stderr)
        check(live and live[1] == "at exit", "record's summary: %r" % p.stderr.decode())
        check(trace_check(trace)["stopped_at_exit"] == 1, "the footer's at-exit flag")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_one_bottom_line():
    """record's summary, stats and report print the same bottom line for the same trace: events,
    lost events, the live set at the end (the footer's exact count), peak committed; and stats
    and report the same peak of the model. Block, ring and sampled traces."""
    work = scratch()
    try:
        for name, options in (("block", []), ("ring", ["--mode", "ring"]),
                              ("sampled", ["--sample", "65536"])):
            trace = os.path.join(work, name + ".trace")
            p = heaptrail("record", *options, "-o", trace, "--", ARGS.bin["live_check"], "3",
                          "6000", env=base_env(work), cwd=work, check_code=0)
            err = p.stderr.decode()
            m = re.search(r"heaptrail: ([\d,]+) events, ([\d,]+) lost, .*; (\S+ \S+ in [\d,]+ "
                          r"blocks?) live (at exit|when tracing stopped), peak committed "
                          r"(\S+ \S+);", err)
            check(m, "%s: record's summary: %r" % (name, err))
            if not m:
                continue
            events, lost = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
            live_text, when, committed_text = m.group(3), m.group(4), m.group(5)
            st = stats_json(trace)
            rep = json.loads(heaptrail("report", "--no-symbols", "--format", "json", trace,
                                       check_code=0).stdout)["totals"]
            for key in ("events", "lost", "live_blocks", "live_bytes", "live_when",
                        "live_exact", "peak_committed", "peak_bytes", "peak_blocks", "peak_ns",
                        "invalid"):
                check(st.get(key) == rep.get(key), "%s: %s: stats %r, report %r" % (
                    name, key, st.get(key), rep.get(key)))
            check((st["events"], st["lost"], st["live_when"]) == (events, lost, when),
                  "%s: stats %s; record said %d events, %d lost, %s" % (name, st, events, lost,
                                                                        when))
            check(st["live_exact"], "%s: the live set is not the footer's" % name)
            check(st["live_blocks"] == int(re.search(r"in ([\d,]+) block", live_text).group(1)
                                           .replace(",", "")), "%s: live blocks" % name)
            stats_text = heaptrail("stats", trace, check_code=0).stdout.decode()
            report_text = heaptrail("report", "--no-symbols", trace, check_code=0).stdout.decode()
            line = "%s %s (the heaps' own count)" % (live_text, when)
            check(("live at end    " + line) in stats_text, "%s: stats text lacks %r:\n%s" % (
                name, line, stats_text))
            check(("live at end      " + line) in report_text, "%s: report text lacks %r" % (
                name, line))
            for text, what in ((stats_text, "stats"), (report_text, "report")):
                check("peak committed" in text and committed_text in text,
                      "%s: %s lacks peak committed %s" % (name, what, committed_text))
                peak = re.search(r"peak live +(.*)\n", text)
                check(peak, "%s: %s has no peak live line" % (name, what))
            peaks = [re.search(r"peak live +(.*)\n", t) for t in (stats_text, report_text)]
            check(all(peaks) and peaks[0].group(1) == peaks[1].group(1),
                  "%s: peak lines differ: %s" % (name, [x and x.group(1) for x in peaks]))
        sampled = stats_json(os.path.join(work, "sampled.trace"))
        check(sampled["sample_interval"] == 65536, "the sampled trace is not sampled")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_record_free_stacks():
    """record --stacks: a stack with every ALLOC and REALLOC, none with a FREE (the report
    matches a free to its allocation by address); --free-stacks adds one to every FREE."""
    work = scratch()
    try:
        counts = {}
        for name, options in (("allocations", []), ("frees", ["--free-stacks"])):
            trace = os.path.join(work, name + ".trace")
            heaptrail("record", "--stacks=8", *options, "-o", trace, "--", ARGS.bin["live_check"],
                      "2", "2000", env=base_env(work), cwd=work, check_code=0)
            rows = [r for r in dump_rows(trace) if r["event"] in ("ALLOC", "FREE", "REALLOC")]
            for event in ("ALLOC", "FREE", "REALLOC"):
                those = [r for r in rows if r["event"] == event]
                check(those, "%s: no %s event" % (name, event))
                counts[name, event] = sum(1 for r in those if r["stack"]) / len(those)
        check(counts["allocations", "ALLOC"] == 1 and counts["allocations", "REALLOC"] == 1,
              "record --stacks: allocations without a stack: %s" % counts)
        check(counts["allocations", "FREE"] == 0, "record --stacks: frees with a stack: %s" % counts)
        check(counts["frees", "FREE"] == 1 and counts["frees", "ALLOC"] == 1,
              "record --stacks --free-stacks: events without a stack: %s" % counts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_thread_exit():
    """Heap operations made while threads exit, after heaptrail's own exit destructor (a
    program key's destructor freeing the thread's value, a destructor that is a thread's first
    heap use, the C library freeing its per-thread buffers) are in the trace."""
    work = scratch()
    try:
        trace = os.path.join(work, "exit.trace")
        p = heaptrail("record", "-o", trace, "--", ARGS.bin["thread_exit"], "10",
                      env=base_env(work), cwd=work, check_code=0)
        line = p.stdout.decode().strip()
        m = re.fullmatch(r"heap=(0x[0-9a-f]+) live_blocks=(\d+) requested=(\d+) summary=1 "
                         r"stopped=0", line)
        check(m, "thread_exit printed %r" % line)
        heap, blocks, requested = m.group(1), int(m.group(2)), int(m.group(3))
        checked = trace_check(trace, heap=heap)  # strict: nothing lost, no unknown block
        check((checked["live_blocks"], checked["live_bytes"]) == (blocks, requested),
              "trace's live set %d blocks / %d bytes; the heap says %d / %d" % (
                  checked["live_blocks"], checked["live_bytes"], blocks, requested))
        rows = dump_rows(trace)
        # Each value (150 + i bytes, even i) is freed after its ALLOC (rows are in time order).
        values = [(n, r["Address"]) for n, r in enumerate(rows) if r["event"] == "ALLOC" and
                  r["Size"] in ("150", "152", "154", "156", "158")]
        freed = [any(r["event"] == "FREE" and r["Address"] == address for r in rows[n + 1:])
                 for n, address in values]
        check(len(values) == 5 and all(freed),
              "the values freed by a key destructor: %d allocated, %d of them freed" % (
                  len(values), sum(freed)))
        late = [r for r in rows if r["event"] == "ALLOC" and 300 <= int(r["Size"]) < 310]
        check(len(late) == 10, "allocations in a late destructor: %d of 10" % len(late))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_own_threads():
    """The C library allocates the thread-local storage of heaptrail's own threads (the control
    listener, the writer) through the traced malloc: none of it is an event, in the traced
    process or in a forked child."""
    work = scratch()
    try:
        trace = os.path.join(work, "idle.trace")
        heaptrail("record", "--follow-forks", "-o", trace, "--", ARGS.bin["idle"], "fork",
                  env=base_env(work), cwd=work, check_code=0)
        files = sorted(f for f in os.listdir(work) if f.startswith("idle.trace"))
        check(len(files) == 2, "expected the parent's and the child's traces: %s" % files)
        for name in files:
            path = os.path.join(work, name)
            trace_check(path)
            operations = [r for r in dump_rows(path) if r["event"] in ("ALLOC", "FREE",
                                                                        "REALLOC")]
            check(not operations, "%s: a program that never uses the heap has %d heap "
                  "operations in its trace: %s" % (name, len(operations), operations[:3]))
        # With stacks, the report finds no block of heaptrail's own either.
        trace = os.path.join(work, "stacks.trace")
        heaptrail("record", "--stacks=8", "-o", trace, "--", ARGS.bin["idle"],
                  env=base_env(work), cwd=work, check_code=0)
        text = heaptrail("report", trace, check_code=0).stdout.decode()
        check("[heaptrail's own tracing]" not in text, "report shows heaptrail's own blocks:\n%s"
              % text[:3000])
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- the control socket -------------------------------------------------------------------------

class Target:
    """control_target under the preload library, driven through its stdin."""

    def __init__(self, work, env_extra=None, preexec=None, cwd=None, preload=True):
        env = base_env(work)
        if preload:
            env["LD_PRELOAD"] = ARGS.preload
        if env_extra:
            env.update(env_extra)
        self.process = subprocess.Popen([ARGS.bin["control_target"]], env=env,
                                        cwd=cwd or work, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, preexec_fn=preexec)
        self.pid = self.process.pid
        self.command("churn 16 1")  # started, constructor done

    def command(self, line):
        self.process.stdin.write((line + "\n").encode())
        self.process.stdin.flush()
        answer = self.process.stdout.readline().decode().strip()
        check(answer == "ok", "control_target: %r -> %r" % (line, answer))

    def finish(self):
        if self.process.poll() is None:
            try:
                self.command("quit")
            except (Failure, BrokenPipeError):
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def footprint(pid):
    """What a program can see of itself: the targets of its descriptors and its thread count."""
    fds = sorted(os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" %
                                                                                pid))
    fds = [re.sub(r"\[\d+\]", "[]", target) for target in fds]  # pipe:[1234]: the kind only
    return fds, len(os.listdir("/proc/%d/task" % pid))


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def raw_status(pid, *extra):
    p = heaptrail("status", "--raw", *extra, pid, check_code=0)
    return dict(line.split("=", 1) for line in p.stdout.decode().splitlines())


def sizes_of(rows, kind):
    counts = {}
    for r in rows:
        if r["event"] == kind:
            size = int(r["Size"] or r["NewSize"])
            counts[size] = counts.get(size, 0) + 1
    return counts


def stale_socket(directory):
    """A socket file of a process that no longer exists, as _exit or SIGKILL leave them."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, "%d.sock" % free_pid())
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    return path


def test_control():
    work = scratch()
    target = None
    try:
        stale = stale_socket("/tmp/heaptrail-%d" % os.geteuid())
        target = Target(work)
        pid = str(target.pid)
        socket_path = "/tmp/heaptrail-%d/%s.sock" % (os.geteuid(), pid)
        # Idle, the preloaded process has no descriptor and no thread a plain run lacks.
        plain = Target(work, preload=False)
        check(footprint(target.pid) == footprint(plain.pid), "idle footprint %s, plain %s" % (
            footprint(target.pid), footprint(plain.pid)))
        plain.finish()
        check(not os.path.exists(socket_path), "a socket before any request: %s" % socket_path)
        target.command("alloc 1111 50")
        p = heaptrail("status", pid, check_code=0)
        check("not tracing" in p.stdout.decode(), "status: %r" % p.stdout.decode())
        check(os.path.exists(socket_path), "no socket at %s after a request" % socket_path)
        check(os.stat(os.path.dirname(socket_path)).st_mode & 0o777 == 0o700,
              "the socket directory is not 0700")
        check(not os.path.exists(stale), "a stale socket was not swept: %s" % stale)
        # The listener ends with its socket about a second after the last request.
        check(wait_for(lambda: not os.path.exists(socket_path), 5), "the socket stayed open")
        check(wait_for(lambda: footprint(target.pid)[1] == 1, 5),
              "the listener thread stayed: %s" % (footprint(target.pid),))
        check(raw_status(pid)["active"] == "0", "raw status active")
        expect_error(["stop", pid], 4, r"process %s \(cli_control_ta\w*\): no trace session is "
                     r"running" % pid)
        trace = os.path.join(work, "window.trace")
        p = heaptrail("start", "-o", "window.trace", pid, cwd=work, check_code=0)
        check("tracing to %s" % trace in p.stdout.decode(), "start: %r" % p.stdout.decode())
        expect_error(["start", "-o", os.path.join(work, "other.trace"), pid], 4,
                     r"a trace session is already running")
        target.command("alloc 2222 40")
        target.command("churn 2323 100")
        target.command("free 1111")
        status = raw_status(pid)
        check(status["active"] == "1" and status["output"] == trace and
              status["mode"] == "block", "status while tracing: %s" % status)
        check(int(status["events"]) >= 0, "events")
        human = heaptrail("status", pid, check_code=0).stdout.decode()
        check("tracing to %s" % trace in human and "mode block" in human, human)
        heaptrail("snapshot", pid, check_code=0)
        p = heaptrail("stop", pid, check_code=0)
        check(re.search(r"stopped tracing; [\d,]+ events, 0 lost", p.stdout.decode()),
              "stop: %r" % p.stdout.decode())
        target.command("alloc 3333 30")
        rows = dump_rows(trace)
        allocs = sizes_of(rows, "ALLOC")
        check(allocs.get(2222) == 40 and allocs.get(2323) == 100,
              "ALLOCs in the window: %s" % {k: v for k, v in allocs.items() if k > 1000})
        check(1111 not in allocs and 3333 not in allocs, "ALLOCs outside the window were traced")
        check(sizes_of(rows, "RUNDOWN_BLOCK").get(1111) == 50, "the 1111-byte blocks are in the "
              "rundown")
        frees = sum(1 for r in rows if r["event"] == "FREE")
        check(frees >= 150, "FREEs in the window: %d" % frees)
        trace_check(trace)
        # A second window, ring mode, with options; then the process exits while tracing: the
        # exit handler stops the session and writes the ring.
        ring = os.path.join(work, "ring.trace")
        heaptrail("start", "--mode", "ring", "--buffer", "256k", "--stacks=8", "-o", ring, pid,
                  check_code=0)
        status = raw_status(pid)
        check(status["mode"] == "ring" and status["stacks"] == "8", "ring status %s" % status)
        target.command("alloc 4444 20")
        target.finish()
        check(target.process.returncode == 0, "control_target exit %d" %
              target.process.returncode)
        check(not os.path.exists(socket_path), "the socket outlived the process")
        rows = dump_rows(ring)
        check(sizes_of(rows, "ALLOC").get(4444) == 20, "ring trace lacks the last ALLOCs")
        check(any(r["stack"] for r in rows if r["event"] == "ALLOC"), "no stacks")
        check(stats_json(ring)["complete"], "ring trace not closed at exit")
        # HEAPTRAIL_CONTROL_DIR moves the socket; the client finds it through /proc.
        control_dir = os.path.join(work, "ctl")
        target = Target(work, env_extra={"HEAPTRAIL_CONTROL_DIR": control_dir})
        check(raw_status(str(target.pid))["active"] == "0", "status via HEAPTRAIL_CONTROL_DIR")
        check(os.path.exists(os.path.join(control_dir, "%d.sock" % target.pid)),
              "no socket in HEAPTRAIL_CONTROL_DIR")
        target.finish()
        # HEAPTRAIL_CONTROL=0: no socket, and the client says why.
        target = Target(work, env_extra={"HEAPTRAIL_CONTROL": "0"})
        expect_error(["status", str(target.pid)], 2, r"HEAPTRAIL_CONTROL=0")
        target.finish()
        # A process traced from the start (record) can be stopped and restarted.
        trace = os.path.join(work, "recorded.trace")
        env = base_env(work)
        recorder = subprocess.Popen([ARGS.heaptrail, "record", "-q", "-o", trace, "--",
                                     ARGS.bin["control_target"]], env=env, cwd=work,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        target = Target.__new__(Target)
        target.process = recorder
        target.command("alloc 5555 5")
        children = [int(x) for x in open("/proc/%d/task/%d/children" % (
            recorder.pid, recorder.pid)).read().split()]
        check(len(children) == 1, "record's child: %s" % children)
        status = raw_status(str(children[0]))
        check(status["active"] == "1" and status["output"] == trace, "recorded status %s" %
              status)
        heaptrail("stop", children[0], check_code=0)
        target.command("alloc 6666 5")
        target.finish()
        check(recorder.returncode == 0, "record exit %d" % recorder.returncode)
        allocs = sizes_of(dump_rows(trace), "ALLOC")
        check(allocs.get(5555) == 5 and 6666 not in allocs, "recorded then stopped: %s" %
              {k: v for k, v in allocs.items() if k > 5000})
        target = None
    finally:
        if target:
            target.finish()
        shutil.rmtree(work, ignore_errors=True)


def test_control_follow_forks():
    """A session started through the control socket with --follow-forks follows a fork: the
    child writes a complete trace of its own, and the parent's session goes on."""
    work = scratch()
    target = None
    try:
        target = Target(work)
        pid = str(target.pid)
        trace = os.path.join(work, "parent.trace")
        heaptrail("start", "--follow-forks", "-o", trace, pid, check_code=0)
        target.command("fork 777 100")
        target.command("alloc 888 3")
        heaptrail("stop", pid, check_code=0)
        target.finish()
        target = None
        children = [f for f in os.listdir(work) if re.fullmatch(r"parent\.trace\.\d+", f)]
        check(len(children) == 1, "the child's trace: %s" % sorted(os.listdir(work)))
        child = os.path.join(work, children[0])
        r = trace_check(child)
        check(r["complete"] == 1 and str(r["pid"]) == children[0].rsplit(".", 1)[1],
              "child trace: %s" % r)
        check(sizes_of(dump_rows(child), "ALLOC").get(777) == 100, "the child's ALLOCs")
        check(trace_check(trace)["complete"] == 1, "the parent's trace is not complete")
        allocs = sizes_of(dump_rows(trace), "ALLOC")
        check(allocs.get(888) == 3 and 777 not in allocs, "the parent's ALLOCs: %s" % allocs)
    finally:
        if target:
            target.finish()
        shutil.rmtree(work, ignore_errors=True)


def test_control_signal():
    """The control signal reaches a process in every state it can be in: parked in a system
    call (the handler answers), busy allocating (the next malloc answers), spinning beside a
    sleeping thread (the signal moves on to it); a program's own handler for the signal keeps
    getting what is not a request; a process that cannot answer gets one clear line."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import control_client
    work = scratch()
    running = []

    def launch(mode, signal_number=control_client.DEFAULT_SIGNAL, env_extra=None):
        env = base_env(work)
        env["LD_PRELOAD"] = ARGS.preload
        env.update(env_extra or {})
        p = subprocess.Popen([ARGS.bin["signal_target"], mode, str(signal_number)], env=env,
                             cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        running.append(p)
        line = p.stdout.readline().decode()
        check(line == "ready\n", "%s: %r" % (mode, line))
        return p

    try:
        for mode in ("busy-malloc", "busy-spin"):
            p = launch(mode)
            trace = os.path.join(work, mode + ".trace")
            heaptrail("start", "-o", trace, str(p.pid), check_code=0, timeout=30)
            check(raw_status(str(p.pid))["active"] == "1", "%s: not tracing" % mode)
            heaptrail("stop", str(p.pid), check_code=0, timeout=30)
            # Lenient: in a process that allocates all the time, a block allocated before the
            # switch and freed before the rundown's time is a FREE of a block the trace does
            # not know, which FORMAT.md's rule ("Rundown") ignores and the strict check counts.
            check(trace_check(trace, lenient=True)["complete"] == 1,
                  "%s: trace not complete" % mode)
            p.kill()
            p.wait()
        # The program's handler: chained for what is not a request, reported by sigaction.
        p = launch("handler")
        control_client.sigqueue(p.pid, control_client.DEFAULT_SIGNAL, 1234)
        line = p.stdout.readline().decode()
        check(line == "program handler 1234\n", "the program's handler got %r" % line)
        check(raw_status(str(p.pid))["active"] == "0", "status beside the program's handler")
        p.stdin.close()
        check(p.wait(timeout=20) == 0, "handler: exit %d" % p.returncode)
        # SIG_DFL set by the program: a request still answers, any other signal ends it.
        p = launch("default")
        check(raw_status(str(p.pid))["active"] == "0", "status after signal(SIG_DFL)")
        control_client.sigqueue(p.pid, control_client.DEFAULT_SIGNAL, 7)
        check(p.wait(timeout=20) == -control_client.DEFAULT_SIGNAL,
              "SIG_DFL: the signal did not end the process (status %s)" % p.returncode)
        # Another signal number.
        other = signal.SIGRTMAX - 2
        p = launch("handler", other, {"HEAPTRAIL_SIGNAL": "RTMAX-2"})
        check(raw_status(str(p.pid))["active"] == "0", "status with HEAPTRAIL_SIGNAL=RTMAX-2")
        p.stdin.close()
        p.wait(timeout=20)
        # Processes that cannot answer: one line, exit 2, and the process lives on.
        for mode, message in (("blocked", r"blocks signal \d+ \(its control signal\) in every "
                               r"thread"),
                              ("spin-only", r"did not answer within 5 s")):
            p = launch(mode)
            expect_error(["status", str(p.pid)], 2, message)
            check(p.poll() is None, "%s: the process ended" % mode)
            p.kill()
            p.wait()
        p = launch("handler", control_client.DEFAULT_SIGNAL, {"HEAPTRAIL_SIGNAL": "RTMIN+99"})
        expect_error(["status", str(p.pid)], 2, r"HEAPTRAIL_SIGNAL=\"RTMIN\+99\", which it "
                     r"refused")
        p.kill()
        p.wait()
        err = p.stderr.read().decode()
        check(re.fullmatch(r'heaptrail: HEAPTRAIL_SIGNAL="RTMIN\+99": out of range \(expected a '
                           r'signal from SIGRTMIN to SIGRTMAX\); control disabled\n', err),
              "the refusal line: %r" % err)
    finally:
        for p in running:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


NOBODY = 65534


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def in_child(function):
    """Runs function in a forked child; returns its result (a small integer)."""
    pid = os.fork()
    if pid == 0:
        try:
            code = function()
        except BaseException:
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_control_permissions():
    if os.geteuid() != 0:
        print("skipped: needs root (switches to uid %d)" % NOBODY)
        return SKIP
    work = scratch()
    os.chmod(work, 0o755)
    # Copies the other user can reach whatever the build tree's permissions are.
    copies = os.path.join(work, "bin")
    os.mkdir(copies)
    for attribute, source in (("heaptrail", ARGS.heaptrail), ("preload", ARGS.preload)):
        setattr(ARGS, attribute, shutil.copy(source, copies))
    ARGS.bin["control_target"] = shutil.copy(ARGS.bin["control_target"], copies)
    for name in os.listdir(copies):
        os.chmod(os.path.join(copies, name), 0o755)
    targets = []
    try:
        # 1. Another user cannot reach root's process: the directory is closed to it, and the
        #    client says so; even with the socket's path, connect() is refused.
        root_target = Target(work)
        targets.append(root_target)
        socket_path = "/tmp/heaptrail-0/%d.sock" % root_target.pid
        check(raw_status(str(root_target.pid))["active"] == "0", "root's own process")
        p = subprocess.run([ARGS.heaptrail, "status", str(root_target.pid)], env=base_env("/tmp"),
                           cwd="/tmp", preexec_fn=as_nobody, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        check(p.returncode == 4 and b"permission denied" in p.stderr,
              "nobody -> root's process: exit %d, %r" % (p.returncode, p.stderr))
        p = subprocess.run([ARGS.heaptrail, "start", "--socket", socket_path, "-o",
                            "/tmp/x.trace", str(root_target.pid)], env=base_env("/tmp"),
                           cwd="/tmp", preexec_fn=as_nobody, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        check(p.returncode == 4 and b"permission denied" in p.stderr,
              "nobody -> root's socket: exit %d, %r" % (p.returncode, p.stderr))

        def connect_as_nobody():
            as_nobody()
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(socket_path)
            except PermissionError:
                return 0
            return 1
        check(in_child(connect_as_nobody) == 0, "nobody could connect to root's socket")
        check(raw_status(str(root_target.pid))["active"] == "0", "root's own process")
        # 2. Root cannot switch a process of another user either (owner only): the process
        #    itself checks the peer's credentials.
        nobody_target = Target(work, preexec=as_nobody, cwd="/tmp")
        targets.append(nobody_target)
        for command in (["status"], ["start", "-o", os.path.join(work, "n.trace")], ["stop"]):
            p = heaptrail(*(command + [nobody_target.pid]))
            check(p.returncode == 4 and b"belongs to another user" in p.stderr,
                  "root -> nobody's process (%s): exit %d, %r" % (command[0], p.returncode,
                                                                   p.stderr))
        check(not os.path.exists(os.path.join(work, "n.trace")), "a trace was started")
        # nobody itself may.
        p = subprocess.run([ARGS.heaptrail, "status", "--raw", str(nobody_target.pid)],
                           preexec_fn=as_nobody, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, env=base_env("/tmp"), cwd="/tmp")
        check(p.returncode == 0 and b"active=0" in p.stdout, "nobody -> its own process: %d %r" %
              (p.returncode, p.stderr))
        # 3. A socket directory that is not private disables the control socket (and says so).
        loose = os.path.join(work, "loose")
        os.mkdir(loose)
        os.chmod(loose, 0o777)
        env = base_env(work)
        env.update(LD_PRELOAD=ARGS.preload, HEAPTRAIL_CONTROL_DIR=loose)
        p = subprocess.run(["true"], env=env, stderr=subprocess.PIPE, timeout=30)
        check(b"control disabled" in p.stderr and p.returncode == 0,
              "a world-writable socket directory: %r" % p.stderr)
        check(os.listdir(loose) == [], "a socket was created in a shared directory")
    finally:
        for t in targets:
            t.finish()
        shutil.rmtree(work, ignore_errors=True)


def test_signals():
    work = scratch()
    try:
        for how, signal_number in (("segv", signal.SIGSEGV), ("abort", signal.SIGABRT),
                                   ("bus", signal.SIGBUS)):
            trace = os.path.join(work, how + ".trace")
            p = heaptrail("record", "-o", trace, "--", ARGS.bin["crash"], how, "1000",
                          env=base_env(work), cwd=work)
            check(p.returncode == 128 + signal_number, "%s: record exit %d" % (how, p.returncode))
            check(p.stdout == b"allocated\n", "%s: output %r" % (how, p.stdout))
            check(("ended by signal %d" % signal_number).encode() in p.stderr,
                  "%s: record's message %r" % (how, p.stderr))
            rows = dump_rows(trace, "--event", "ALLOC", "--min-size", "4242", "--max-size",
                             "4242")
            check(len(rows) == 1000, "%s: %d of 1000 allocations in the trace" % (how, len(rows)))
            check(stats_json(trace)["complete"], "%s: no footer after the emergency flush" % how)
            # The crash flush's footer has no counts: the summary says where to find them.
            check(b"; lost events, peak and live blocks: heaptrail stats " in p.stderr,
                  "%s: record's summary %r" % (how, p.stderr))
            trace_check(trace)
        # SIGTERM sent to heaptrail reaches the program; events written before it are kept.
        trace = os.path.join(work, "term.trace")
        recorder = subprocess.Popen([ARGS.heaptrail, "record", "-o", trace, "--",
                                     ARGS.bin["crash"], "term", "300"], env=base_env(work),
                                    cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check(recorder.stdout.readline() == b"allocated\n", "term: not started")
        time.sleep(0.5)  # past the writer's 100 ms flush interval
        recorder.send_signal(signal.SIGTERM)
        _, err = recorder.communicate(timeout=30)
        check(recorder.returncode == 128 + signal.SIGTERM, "term: exit %d (%r)" % (
            recorder.returncode, err))
        rows = dump_rows(trace, "--event", "ALLOC", "--min-size", "4242", "--max-size", "4242")
        check(len(rows) == 300, "term: %d of 300 allocations" % len(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_exec_chain():
    work = scratch()
    try:
        live = ARGS.bin["live_check"]
        # The traced process becomes another program through exec: the trace follows it.
        trace = os.path.join(work, "exec.trace")
        p = heaptrail("record", "-o", trace, "--", "sh", "-c", "exec %s 1 2000" % live,
                      env=base_env(work), cwd=work, check_code=0)
        r = trace_check(trace)
        check(os.path.basename(r["program"]) == "cli_live_check", "exec'd: trace of %s" %
              r["program"])
        # Without --follow-forks, children (fork + exec) are not traced.
        trace = os.path.join(work, "sh.trace")
        heaptrail("record", "-o", trace, "--", "sh", "-c", "%s 1 2000; %s 1 100" % (live, live),
                  env=base_env(work), cwd=work, check_code=0)
        files = sorted(os.listdir(work))
        check(files == ["exec.trace", "sh.trace"], "extra traces: %s" % files)
        check(os.path.basename(trace_check(trace)["program"]) in ("sh", "dash", "bash"),
              "trace of the shell")
        # With it, each child gets FILE.PID.
        trace = os.path.join(work, "follow.trace")
        p = heaptrail("record", "--follow-forks", "-o", trace, "--", "sh", "-c",
                      "%s 1 2000; %s 1 100" % (live, live), env=base_env(work), cwd=work,
                      check_code=0)
        children = sorted(f for f in os.listdir(work) if f.startswith("follow.trace."))
        check(len(children) == 2 and all(re.fullmatch(r"follow\.trace\.\d+", f)
                                         for f in children), "child traces: %s" % children)
        for f in children:
            r = trace_check(os.path.join(work, f))
            check(os.path.basename(r["program"]) == "cli_live_check", "child trace of %s" %
                  r["program"])
        check(b"and 2 traces of child processes" in p.stderr, "summary: %r" % p.stderr)
        # Default file name: heaptrail.PROG.PID.trace in the current directory.
        p = heaptrail("record", "--", live, "1", "100", env=base_env(work), cwd=work,
                      check_code=0)
        named = [f for f in os.listdir(work) if re.fullmatch(r"heaptrail\.cli_live_check\.\d+"
                                                             r"\.trace", f)]
        check(len(named) == 1, "default name: %s" % os.listdir(work))
        check(("in %s" % named[0]).encode() in p.stderr, "summary names the file: %r" % p.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


TESTS = {name[5:]: function for name, function in globals().items()
         if name.startswith("test_") and callable(function)}


def main(tests=None):
    """Runs the test named on the command line from tests (this file's by default); the test
    files that reuse these helpers (diff_test.py, control_waits_test.py) pass their own."""
    global ARGS
    tests = tests if tests is not None else TESTS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--heaptrail", required=True)
    parser.add_argument("--preload", required=True)
    parser.add_argument("--bin", action="append", default=[])
    parser.add_argument("test", choices=sorted(tests))
    ARGS = parser.parse_args()
    ARGS.bin = dict(b.split("=", 1) for b in ARGS.bin)
    os.environ.pop("LD_PRELOAD", None)
    started = time.monotonic()
    try:
        result = tests[ARGS.test]()
    except Failure as failure:
        print("FAIL %s: %s" % (ARGS.test, failure))
        return 1
    if result == SKIP:
        return SKIP
    print("ok %s (%.1f s)" % (ARGS.test, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
