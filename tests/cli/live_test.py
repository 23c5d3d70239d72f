#!/usr/bin/env python3
"""live_test.py — heaptrail watching programs while they run: the periodic pprof profiles of
`record --pprof-every` and `start --pprof-every` (their count, their atomic appearance, and
totals decoded with `protoc --decode` against profile.proto equal to `report`'s for the same
interval), `--pprof-at-peak`, `record -o -`, and `heaptrail top` / `record --live` driven as a
person would, in tmux (send-keys, capture-pane) at 80x24: its screen, its keys, and that quitting
leaves the process exactly as before (no session, no descriptor, no thread) and the terminal as
it was, also after SIGTERM and when the target dies.
Usage: the arguments of cli_test.py (whose helpers this uses), then one test name.
Exit status: 0 pass, 1 fail."""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_test  # noqa: E402
from cli_test import (Failure, Target, base_env, check, footprint, heaptrail, raw_status,  # noqa
                      require, run, scratch, wait_for)

PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "live", "profile.proto")

# A real program with phases: allocations that stay, that go, and pauses between them.
WORKLOAD = r"""
import sys, time
keep = []
for phase in range(int(sys.argv[1])):
    for i in range(3000):
        keep.append(bytearray(64 + (i % 7) * 100))
        if i % 3 == 0:
            keep.pop(0)
    time.sleep(float(sys.argv[2]))
print("done", len(keep))
"""

# Two rises with a fall between them: the second peak is the higher.
PEAKS = r"""
import time
a = [bytearray(4096) for _ in range(2000)]
time.sleep(0.3)
del a
time.sleep(0.3)
b = [bytearray(4096) for _ in range(5000)]
time.sleep(0.3)
del b
print("done")
"""


# ---- profiles ----------------------------------------------------------------------------------

def decode_profile(path):
    """The profile through `protoc --decode`: sample types, per-sample values, comments, times."""
    require("protoc", "protobuf-compiler")
    data = gzip.decompress(open(path, "rb").read())
    p = subprocess.run(["protoc", "--decode=perftools.profiles.Profile",
                        "--proto_path=" + os.path.dirname(PROTO), os.path.basename(PROTO)],
                       input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check(p.returncode == 0, "protoc --decode %s: %s" % (path, p.stderr.decode()[-500:]))
    text = p.stdout.decode()
    strings = [json.loads(s) for s in re.findall(r'^string_table: (".*")$', text, re.M)]
    types = []
    for block in re.findall(r"^sample_type \{(.*?)^\}", text, re.M | re.S):
        types.append(strings[int(re.search(r"type: (\d+)", block).group(1))])
    totals = [0] * len(types)
    labels = set()
    for block in re.findall(r"^sample \{(.*?)^\}", text, re.M | re.S):
        values = [int(v) for v in re.findall(r"^  value: (-?\d+)$", block, re.M)]
        check(len(values) == len(types), "a sample with %d values for %d types" % (len(values),
                                                                                len(types)))
        for k, v in enumerate(values):
            totals[k] += v
        for key in re.findall(r"label \{\s*key: (\d+)", block):
            labels.add(strings[int(key)])
    comments = [strings[int(i)] for i in re.findall(r"^comment: (\d+)$", text, re.M)]
    number = lambda name: int((re.search(r"^%s: (\d+)$" % name, text, re.M) or [0, 0])[1])
    return {"types": types, "totals": dict(zip(types, totals)), "labels": labels,
            "comments": comments, "time": number("time_nanos"),
            "duration": number("duration_nanos")}


def report_json(trace, *options):
    p = heaptrail("report", "--format", "json", "--no-symbols", *options, trace, check_code=0)
    return json.loads(p.stdout)["summary"]


def watch_directory(directory, seen, stop):
    """Reads every profile the moment its name appears: each must be whole (gzip checks its
    length and CRC), so none is ever visible half-written."""
    while not stop.is_set():
        for name in os.listdir(directory):
            if name.endswith(".pb.gz") and name not in seen:
                try:
                    gzip.decompress(open(os.path.join(directory, name), "rb").read())
                    seen[name] = "whole"
                except (OSError, EOFError) as error:
                    seen[name] = "broken: %s" % error
        time.sleep(0.002)


def record_profiles(work, every_ms, phases, pause, *options):
    trace = os.path.join(work, "w.trace")
    out = os.path.join(work, "profiles")
    seen, stop = {}, threading.Event()
    os.makedirs(out)
    watcher = threading.Thread(target=watch_directory, args=(out, seen, stop))
    watcher.start()
    try:
        p = heaptrail("record", "--pprof-every", "%dms" % every_ms, "--pprof-dir", out,
                      "-o", trace, *options, "--", sys.executable, "-c", WORKLOAD, phases, pause,
                      env=base_env(work), cwd=work, timeout=120, check_code=0)
    finally:
        stop.set()
        watcher.join()
    check(b"done" in p.stdout, "the program's output: %r" % p.stdout)
    check(re.search(rb"\d+ profiles? in ", p.stderr), "no profile count said: %r" % p.stderr)
    names = sorted(n for n in os.listdir(out) if n.endswith(".pb.gz"))
    check(not [n for n in os.listdir(out) if n.startswith(".")],
          "temporary files left: %s" % os.listdir(out))
    broken = {n: s for n, s in seen.items() if s != "whole"}
    check(not broken, "profiles seen half-written: %s" % broken)
    check(set(seen) == set(names), "the watcher saw %s, the directory has %s" % (sorted(seen),
                                                                                  names))
    return trace, out, names


def check_interval_profiles(trace, out, names, every_ms, exact=True):
    every = every_ms * 1000000
    whole_trace = heaptrail("report", "--format", "json", "--no-symbols", trace, check_code=0)
    duration = json.loads(whole_trace.stdout)["trace"]["duration_ns"]
    expected = duration // every + (1 if duration % every else 0)
    check(len(names) == expected, "%d profiles for %d ns every %d ns: %s" % (
        len(names), duration, every, names))
    check(names == ["w.%04d.pb.gz" % (k + 1) for k in range(len(names))], "names %s" % names)
    for k, name in enumerate(names):
        profile = decode_profile(os.path.join(out, name))
        check(profile["types"] == ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space",
                                   "interval_alloc_objects", "interval_alloc_space",
                                   "interval_inuse_objects", "interval_inuse_space"],
              "%s: sample types %s" % (name, profile["types"]))
        check({"program", "pid"} <= profile["labels"], "%s: labels %s" % (name, profile["labels"]))
        check(any(c.startswith("pid: ") for c in profile["comments"]) and
              any(c.startswith("time: ") for c in profile["comments"]),
              "%s: comments %s" % (name, profile["comments"]))
        start = k * every
        end = min((k + 1) * every, duration)
        check(profile["duration"] == end - start, "%s: duration %d, expected %d" % (
            name, profile["duration"], end - start))
        whole = report_json(trace, "--to", "%dns" % end)
        part = report_json(trace, "--from", "%dns" % start, "--to", "%dns" % end) if start \
            else whole
        t = profile["totals"]
        got = [t["alloc_objects"], t["alloc_space"], t["inuse_objects"], t["inuse_space"],
               t["interval_alloc_objects"], t["interval_alloc_space"],
               t["interval_inuse_objects"], t["interval_inuse_space"]]
        want = [whole["allocations"], whole["allocated_bytes"], whole["leaked_blocks"],
                whole["leaked_bytes"], part["allocations"], part["allocated_bytes"],
                part["leaked_blocks"], part["leaked_bytes"]]
        if exact:
            check(got == want, "%s [%d, %d) ns: profile %s, report %s" % (name, start, end, got,
                                                                          want))
        else:  # sampled: per-stack rounding of estimates; within one unit per sample
            for g, w in zip(got, want):
                check(abs(g - w) <= max(64, w * 0.002), "%s: profile %s, report %s" % (
                    name, got, want))
    return duration


def test_pprof_every():
    """record --pprof-every: one profile per interval of the session and one for the last,
    partial interval; each appears whole; its totals are report's for its interval."""
    work = scratch()
    try:
        trace, out, names = record_profiles(work, 300, "8", "0.2")
        check(len(names) >= 5, "too few profiles: %s" % names)
        check_interval_profiles(trace, out, names, 300)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_pprof_sampled():
    """With --sample the profiles are estimates scaled like heapprofd's, as report's are."""
    work = scratch()
    try:
        trace, out, names = record_profiles(work, 400, "6", "0.2", "--sample", "8192")
        check_interval_profiles(trace, out, names, 400, exact=False)
        comments = decode_profile(os.path.join(out, names[0]))["comments"]
        check(any("sampled" in c for c in comments), "no sampling comment: %s" % comments)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_pprof_at_peak():
    """--pprof-at-peak: the last peak profile shows the session's peak, as report finds it."""
    work = scratch()
    try:
        trace = os.path.join(work, "p.trace")
        out = os.path.join(work, "peaks")
        heaptrail("record", "--pprof-at-peak", "--pprof-dir", out, "-o", trace, "--",
                  sys.executable, "-c", PEAKS, env=base_env(work), cwd=work, timeout=120,
                  check_code=0)
        names = sorted(n for n in os.listdir(out) if n.endswith(".pb.gz"))
        check(names and all(re.fullmatch(r"p\.peak\.\d{4}\.pb\.gz", n) for n in names),
              "peak profiles: %s" % names)
        summary = report_json(trace)
        last = decode_profile(os.path.join(out, names[-1]))
        check(last["totals"]["inuse_space"] == summary["peak_bytes"],
              "last peak profile %d bytes in use, report's peak %d" % (
                  last["totals"]["inuse_space"], summary["peak_bytes"]))
        check(summary["peak_bytes"] > 5000 * 4096, "the peak %d" % summary["peak_bytes"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


# sqlite3 loaded by the program after its session began.
LATE_MODULE = r"""
import time
time.sleep(0.5)
import sqlite3
db = sqlite3.connect(":memory:")
db.execute("create table t (v text)")
for i in range(20000):
    db.execute("insert into t values (?)", ("x" * (i % 300),))
time.sleep(0.3)
print("done")
"""


def test_late_modules():
    """A library loaded after tracing began is in the trace's module map and in the live
    profiles: its frames are named, not bare addresses."""
    work = scratch()
    try:
        trace = os.path.join(work, "late.trace")
        out = os.path.join(work, "profiles")
        heaptrail("record", "--pprof-every", "300ms", "--pprof-dir", out, "-o", trace, "--",
                  sys.executable, "-c", LATE_MODULE, env=base_env(work), cwd=work, timeout=120,
                  check_code=0)
        report = heaptrail("report", "--sections", "top", trace, check_code=0).stdout.decode()
        check(re.search(r"in (libsqlite3|_sqlite3)", report),
              "the report names no frame of sqlite:\n%s" % report[:3000])
        names = sorted(n for n in os.listdir(out) if n.endswith(".pb.gz"))
        last = gzip.decompress(open(os.path.join(out, names[-1]), "rb").read())
        check(b"libsqlite3" in last or b"_sqlite3" in last,
              "the last live profile has no sqlite mapping")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_record_stdout():
    """record -o - writes the trace to standard output (the program's own output goes to
    standard error), readable as it comes by `dump -` and whole once it ended."""
    work = scratch()
    try:
        trace = os.path.join(work, "out.trace")
        with open(trace, "wb") as f:
            p = subprocess.run([cli_test.ARGS.heaptrail, "record", "-o", "-", "--",
                                sys.executable, "-c", WORKLOAD, "2", "0.05"], stdout=f,
                               stderr=subprocess.PIPE, env=base_env(work), cwd=work, timeout=120)
        check(p.returncode == 0, "exit %d: %s" % (p.returncode, p.stderr[-1000:]))
        check(b"done" in p.stderr, "the program's output is not on stderr: %r" % p.stderr[-500:])
        info = cli_test.trace_check(trace)
        check(info["events"] > 6000, "events %s" % info)
        piped = subprocess.run("'%s' record -o - -- '%s' -c '%s' 2 0.05 2>/dev/null | '%s' dump -"
                               " --format csv | wc -l" % (
                                   cli_test.ARGS.heaptrail, sys.executable,
                                   WORKLOAD.replace("'", "'\\''"), cli_test.ARGS.heaptrail),
                               shell=True, stdout=subprocess.PIPE, env=base_env(work), cwd=work,
                               timeout=120)
        check(int(piped.stdout) > 6000, "dump - read %s rows" % piped.stdout)
        expect = heaptrail("record", "-o", "-", "--", "true", env=base_env(work), cwd=work)
        check(expect.returncode != 0 or expect.stdout[:8] == b"\x89HTRACE\n", "-o - to a pipe")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_start_pprof():
    """start --pprof-every PID: profiles of a running process until it exits; its trace file
    too; the profiles' totals equal report's."""
    work = scratch()
    target = Target(work)
    try:
        before = footprint(target.pid)
        out = os.path.join(work, "profiles")
        trace = os.path.join(work, "w.trace")
        collector = subprocess.Popen([cli_test.ARGS.heaptrail, "start", "--pprof-every", "300ms",
                                      "--pprof-dir", out, "-o", trace, str(target.pid)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=base_env(work), cwd=work)
        check(wait_for(lambda: raw_status(target.pid).get("active") == "1", 10),
              "the session did not start")
        for _ in range(5):
            target.command("churn 2000 64")
            time.sleep(0.2)
        target.finish()
        try:
            stdout, stderr = collector.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            collector.kill()
            raise Failure("start --pprof-every went on after the process ended")
        check(collector.returncode == 0, "exit %d: %s" % (collector.returncode, stderr))
        names = sorted(n for n in os.listdir(out) if n.endswith(".pb.gz"))
        check_interval_profiles(trace, out, names, 300)
        del before
    finally:
        target.finish()
        shutil.rmtree(work, ignore_errors=True)


def test_usage():
    """The live options' usage errors: one line and exit 1; top without a terminal: exit 2."""
    work = scratch()
    target = Target(work)
    try:
        for args in (["record", "--pprof-dir", work, "--", "true"],
                     ["record", "--pprof-every", "0.1us", "--", "true"],
                     ["record", "--pprof-every", "soon", "--", "true"],
                     ["record", "--live", "-o", "-", "--", "true"],
                     ["record", "--live", "--", "true"],
                     ["record", "--pprof-every", "1s", "--follow-forks", "--", "true"],
                     ["start", "--pprof-dir", work, str(target.pid)],
                     ["start", "--pprof-every", "1s", "--raw", str(target.pid)],
                     ["top", "--leak-scan", str(target.pid)],
                     ["top"]):
            p = heaptrail(*args, env=base_env(work), cwd=work)
            check(p.returncode == 1 and p.stderr.startswith(b"heaptrail: "),
                  "%s: exit %d, %r" % (args, p.returncode, p.stderr))
        p = heaptrail("top", str(target.pid), env=base_env(work), cwd=work)
        check(p.returncode == 2 and b"terminal" in p.stderr, "top without a tty: %d %r" % (
            p.returncode, p.stderr))
        check(raw_status(target.pid).get("active") == "0", "a session was left running")
    finally:
        target.finish()
        shutil.rmtree(work, ignore_errors=True)


# ---- top in tmux -------------------------------------------------------------------------------

TOP_TARGET = r"""
import sys, time
keep = []
print("ready", flush=True)
while True:
    keep.append(bytearray(2000))
    if len(keep) > 4000:
        del keep[:2000]
    time.sleep(0.0005)
"""


class Tmux:
    """A tmux server of its own with one 80x24 window."""

    def __init__(self, work):
        require("tmux", "tmux")
        self.socket = os.path.join(work, "tmux.sock")
        self.env = base_env(work)
        self.env["TERM"] = "xterm-256color"
        self.env.pop("TMUX", None)
        self.run("new-session", "-d", "-x", "80", "-y", "24", "-s", "t", "bash --norc --noprofile")
        self.run("set-option", "-g", "status", "off")

    def run(self, *args):
        p = subprocess.run(["tmux", "-S", self.socket] + list(args), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(p.returncode == 0, "tmux %s: %s" % (args, p.stderr.decode()))
        return p.stdout.decode()

    def type(self, text, enter=True):
        self.run("send-keys", "-t", "t", "-l", text)
        if enter:
            self.run("send-keys", "-t", "t", "Enter")

    def key(self, name):
        self.run("send-keys", "-t", "t", name)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "t")

    def wait_screen(self, pattern, seconds=20):
        deadline = time.monotonic() + seconds
        while True:
            text = self.screen()
            if re.search(pattern, text, re.M):
                return text
            if time.monotonic() > deadline:
                raise Failure("waited %d s for %r on the screen:\n%s" % (seconds, pattern, text))
            time.sleep(0.1)

    def shell_ready(self, marker):
        """The shell prompts again and the terminal is sane (stty shows echo and icanon)."""
        self.type("clear; stty -a | tr ' ;' '\\n\\n' | grep -xE 'echo|icanon|isig' | tr '\\n' ' ';"
                  " echo \"=$((40+2))=%s\"" % marker)
        text = self.wait_screen(r"=42=%s$" % marker)
        line = [l for l in text.splitlines() if l.endswith("=42=" + marker)][-1]
        check(all(w in line.split() for w in ("echo", "icanon", "isig")),
              "the terminal was not restored: %r" % line)

    def close(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_top_target(work):
    env = base_env(work)
    env["LD_PRELOAD"] = cli_test.ARGS.preload
    p = subprocess.Popen([sys.executable, "-c", TOP_TARGET], env=env, cwd=work,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    check(p.stdout.readline().strip() == b"ready", "the target did not start")
    return p


def untraced_as_before(pid, before):
    """No session, and the descriptors and threads the process had before top."""
    check(wait_for(lambda: footprint(pid) == before, 10),
          "the process is not as before: %s, before %s" % (footprint(pid), before))
    check(raw_status(pid).get("active") == "0", "a session still runs: %s" % raw_status(pid))


def lines_fit(text, columns=80):
    for line in text.splitlines():
        check(len(line) <= columns, "a line wider than %d columns: %r" % (columns, line))


def test_top_keys():
    """top PID in tmux at 80x24: the screen, sorting, expanding a stack, pausing; q leaves the
    process untraced with nothing of ours in it, and the terminal sane."""
    work = scratch()
    tmux = Tmux(work)
    target = start_top_target(work)
    try:
        before = footprint(target.pid)
        tmux.type("%s top %d" % (cli_test.ARGS.heaptrail, target.pid))
        text = tmux.wait_screen(r"^heaptrail top - ")
        text = tmux.wait_screen(r"python3? \(pid %d\)" % target.pid)
        text = tmux.wait_screen(r"^[> ].*\b_?Py[A-Za-z_]+")
        lines_fit(text)
        check(len(text.splitlines()) <= 24, "more than 24 lines")
        check(re.search(r"LIVE", text), "no LIVE column:\n%s" % text)
        check(raw_status(target.pid).get("active") == "1", "no session while top runs")
        tmux.key("a")
        tmux.wait_screen(r"ALLOC\*|\*ALLOC|ALLOC ?[▼v]|sort: alloc", 5)
        tmux.key("Down")
        tmux.key("Enter")
        text = tmux.wait_screen(r"(?i)stack|#\d|  at ", 5)
        tmux.key("p")
        tmux.wait_screen(r"(?i)paused", 5)
        tmux.key("p")
        tmux.key("q")
        tmux.shell_ready("AFTERQ")
        untraced_as_before(target.pid, before)
    finally:
        target.kill()
        target.wait()
        tmux.close()
        shutil.rmtree(work, ignore_errors=True)


def test_top_signals():
    """SIGTERM to top restores the terminal and stops the session; a target that dies is said
    on the screen, and q then leaves a sane terminal."""
    work = scratch()
    tmux = Tmux(work)
    target = start_top_target(work)
    try:
        before = footprint(target.pid)
        tmux.type("%s top %d; echo top-exit=$?" % (cli_test.ARGS.heaptrail, target.pid))
        tmux.wait_screen(r"^heaptrail top - ")
        top = subprocess.run(["pgrep", "-f", "heaptrail top %d" % target.pid],
                             stdout=subprocess.PIPE).stdout.split()
        check(top, "top's pid not found")
        os.kill(int(top[0]), 15)
        tmux.wait_screen(r"^top-exit=143$")
        tmux.shell_ready("AFTERTERM")
        untraced_as_before(target.pid, before)
        # The target dies under the view.
        tmux.type("clear; %s top %d; echo top-exit=$?" % (cli_test.ARGS.heaptrail, target.pid))
        tmux.wait_screen(r"^heaptrail top - ")
        target.kill()
        target.wait()
        tmux.wait_screen(r"(?i)exited|ended|gone", 15)
        tmux.key("q")
        tmux.wait_screen(r"^top-exit=0$")
        tmux.shell_ready("AFTERDEAD")
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
        tmux.close()
        shutil.rmtree(work, ignore_errors=True)


def test_top_errors():
    """A process that is not ours, has no library, or does not exist: start's one-line errors."""
    work = scratch()
    try:
        plain = subprocess.Popen(["sleep", "30"], env=base_env(work))
        try:
            for pid in (str(plain.pid), str(cli_test.free_pid()), "abc"):
                s = heaptrail("start", "-o", os.path.join(work, "x.trace"), pid,
                              env=base_env(work))
                t = heaptrail("top", pid, env=base_env(work))
                check(t.returncode == s.returncode and t.returncode != 0,
                      "top %s: exit %d, start %d" % (pid, t.returncode, s.returncode))
                top_line = re.sub(r"heaptrail:? top", "heaptrail X", t.stderr.decode())
                start_line = re.sub(r"heaptrail:? start", "heaptrail X", s.stderr.decode())
                check(top_line == start_line and top_line.splitlines()[0].startswith("heaptrail"),
                      "top %s said %r, start %r" % (pid, top_line, start_line))
        finally:
            plain.kill()
            plain.wait()
        if os.getuid() == 0:
            init = heaptrail("top", "1", env=base_env(work))
            check(init.returncode != 0 and init.stderr.count(b"\n") == 1, "top 1: %r" %
                  init.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_record_live():
    """record --live in tmux: the view of its own program, whose output goes to NAME.out; q
    stops tracing and the program runs on to its end; record exits with its status."""
    work = scratch()
    tmux = Tmux(work)
    try:
        script = os.path.join(work, "w.py")
        with open(script, "w") as f:
            f.write(WORKLOAD)
        tmux.type("cd %s && %s record --live -o live.trace -- %s %s 40 0.1; echo rec-exit=$?" % (
            work, cli_test.ARGS.heaptrail, sys.executable, script))
        text = tmux.wait_screen(r"^heaptrail top - ")
        tmux.wait_screen(r"python3? \(pid \d+\)")
        lines_fit(tmux.screen())
        tmux.key("q")
        tmux.wait_screen(r"^rec-exit=0$", 60)
        output = open(os.path.join(work, "live.out")).read()
        check(output.startswith("done "), "the program's output: %r" % output)
        info = cli_test.trace_check(os.path.join(work, "live.trace"), lenient=True)
        check(info["events"] > 0, "the trace has no events: %s" % info)
        tmux.shell_ready("AFTERLIVE")
        del text
    finally:
        tmux.close()
        shutil.rmtree(work, ignore_errors=True)


TESTS = {name[5:]: function for name, function in globals().items()
         if name.startswith("test_") and callable(function)}

if __name__ == "__main__":
    sys.exit(cli_test.main(TESTS))
