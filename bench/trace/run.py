#!/usr/bin/env python3
"""Runs the tracing benchmarks and writes the table of the "## Tracing" section of
docs/PERFORMANCE.md (between the tracing-table markers; nothing else in the file changes).

  python3 bench/trace/run.py            # measure, print, rewrite the table
  python3 bench/trace/run.py --quick    # fewer iterations and rounds; print only
  python3 bench/trace/run.py --build DIR  # binaries from DIR instead of build/

Measures, on the same workload (bench/trace/workload.h: one thread, a window of 1024 blocks
of 16-511 bytes, one free and one allocation per iteration):
  heaptrail off / on (block mode, file, no stacks) / on with 16-frame stacks (frame pointers,
  libunwind), bytes per event, reader decoding rate (build/bench_trace);
  heaptrack on the same loop over malloc (build/bench_trace_malloc), added time per event;
  LTTng-UST tracepoints with the same fields around heaptrail's heap (build/bench_trace_lttng)
  with a session recording them, if lttng-sessiond can be started.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
DOC = os.path.join(ROOT, "docs", "PERFORMANCE.md")
BEGIN, END = "<!-- tracing-table:begin -->", "<!-- tracing-table:end -->"


def run(cmd, env=None, timeout=600):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), out.stderr[-400:]))
    return out.stdout


def keyvalues(text):
    return {k: float(v) for k, v in re.findall(r"(?:^|\s)([a-z_]+) ([-0-9.]+)(?=\s|$)", text)}


def loop_ns_per_event(cmd, rounds, env=None):
    best = None
    for _ in range(rounds):
        kv = keyvalues(run(cmd, env=env))
        value = kv["loop_ns"] / kv["events"]
        best = value if best is None else min(best, value)
    return best


def lttng(cmd, rounds, tmp):
    """Added ns/event of LTTng-UST recording, or (None, reason)."""
    if not shutil.which("lttng") or not shutil.which("lttng-sessiond"):
        return None, "lttng-tools not installed"
    if not os.path.exists(cmd[0]):
        return None, "bench_trace_lttng not built (liblttng-ust-dev missing)"
    subprocess.run(["lttng-sessiond", "--daemonize"], capture_output=True)
    base = loop_ns_per_event(cmd, rounds)
    traced = None
    for i in range(rounds):
        name = "htbench%d_%d" % (os.getpid(), i)
        out = os.path.join(tmp, name)
        steps = [["lttng", "create", name, "--output=" + out],
                 ["lttng", "enable-channel", "-u", "--subbuf-size=4M", "--num-subbuf=8", "big"],
                 ["lttng", "enable-event", "-u", "-c", "big", "heaptrail_bench:*"],
                 ["lttng", "start"]]
        for step in steps:
            if subprocess.run(step, capture_output=True).returncode != 0:
                subprocess.run(["lttng", "destroy", name], capture_output=True)
                return None, "lttng session could not be set up (%s)" % " ".join(step[:2])
        kv = keyvalues(run(cmd))
        subprocess.run(["lttng", "stop", name], capture_output=True)
        subprocess.run(["lttng", "destroy", name], capture_output=True)
        shutil.rmtree(out, ignore_errors=True)
        value = kv["loop_ns"] / kv["events"]
        traced = value if traced is None else min(traced, value)
    return traced - base, None


def main():
    global BUILD
    quick = "--quick" in sys.argv
    if "--build" in sys.argv[:-1]:
        BUILD = os.path.abspath(sys.argv[sys.argv.index("--build") + 1])
    iterations = 1000000 if quick else 4000000
    rounds = 1 if quick else 3
    tmp = tempfile.mkdtemp(prefix="heaptrail-bench-")
    try:
        ht = keyvalues(run([os.path.join(BUILD, "bench_trace"), "--iterations", str(iterations),
                            "--rounds", str(rounds), "--dir", tmp]))
        malloc_cmd = [os.path.join(BUILD, "bench_trace_malloc"), str(iterations // 2)]
        plain = loop_ns_per_event(malloc_cmd, rounds)
        heaptrack = None
        if shutil.which("heaptrack"):
            env = dict(os.environ)
            best = None
            for i in range(max(1, rounds - 1)):
                out = os.path.join(tmp, "heaptrack%d" % i)
                kv = keyvalues(run(["heaptrack", "-o", out] + malloc_cmd, env=env))
                value = kv["loop_ns"] / kv["events"]
                best = value if best is None else min(best, value)
            heaptrack = best - plain
        lt, lt_reason = lttng([os.path.join(BUILD, "bench_trace_lttng"), str(iterations // 2)],
                              rounds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def fmt(v, digits=1):
        return "n/a" if v is None else ("%.*f" % (digits, v))

    rows = [
        ("workload, tracing off", "%s ns/event" % fmt(ht["off_ns_per_event"]), "—", ""),
        ("added per event, on, no stacks (block mode, file)",
         "%s ns" % fmt(ht["on_added_ns_per_event"]), "≤ 10 ns",
         "pass" if ht["on_added_ns_per_event"] <= 10 else "miss"),
        ("of which the tracer's hooks alone (emit.h calls in a loop)",
         "%s ns" % fmt(ht["hooks_added_ns_per_event"]), "≤ 10 ns",
         "pass" if ht["hooks_added_ns_per_event"] <= 10 else "miss"),
        ("events/s from one thread, block mode",
         "%.1f M/s, %d lost" % (ht["on_events_per_second"] / 1e6, ht["on_lost"]), "≥ 30 M/s, 0 lost",
         "pass" if ht["on_events_per_second"] >= 30e6 and ht["on_lost"] == 0 else "miss"),
        ("bytes per event on disk, no stacks", fmt(ht["on_bytes_per_event"], 2), "≤ 8",
         "pass" if ht["on_bytes_per_event"] <= 8 else "miss"),
        ("reader decoding", "%.1f M events/s" % (ht["decode_events_per_second"] / 1e6),
         "≥ 50 M/s", "pass" if ht["decode_events_per_second"] >= 50e6 else "miss"),
        ("added per event, 16-frame stacks, frame pointers",
         "%s ns" % fmt(ht["fp_added_ns_per_event"]), "≤ ½ heaptrack",
         "pass" if heaptrack and ht["fp_added_ns_per_event"] <= heaptrack / 2 else "miss"),
        ("added per event, 16-frame stacks, libunwind (default)",
         "%s ns" % fmt(ht["libunwind_added_ns_per_event"]), "≤ ½ heaptrack",
         "pass" if heaptrack and ht["libunwind_added_ns_per_event"] <= heaptrack / 2 else "miss"),
        ("bytes per event on disk, frame-pointer stacks", fmt(ht["fp_bytes_per_event"], 2), "—", ""),
        ("heaptrack, added per event (same loop over malloc)", "%s ns" % fmt(heaptrack), "—", ""),
        ("LTTng-UST, added per event (same fields, one session)",
         ("%s ns" % fmt(lt)) if lt is not None else "n/a: " + lt_reason, "—", ""),
    ]
    load = os.getloadavg()[0]
    rows.append(("machine load (1-min average, %d cores) when measured" % os.cpu_count(),
                 "%.1f" % load, "—", "noisy if above the core count"))
    lines = ["| measure | result | target | |", "| --- | --- | --- | --- |"]
    lines += ["| %s | %s | %s | %s |" % row for row in rows]
    table = "\n".join(lines)
    print(table)
    if quick:
        return
    with open(DOC) as f:
        text = f.read()
    block = BEGIN + "\n" + table + "\n" + END
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Tracing\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(text)
    print("updated", DOC)


if __name__ == "__main__":
    main()
