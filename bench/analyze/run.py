#!/usr/bin/env python3
"""bench/analyze/run.py — what `heaptrail report` costs on a large trace, next to heaptrack_print.

One workload (bench_analyze_workload: a malloc program churning a window of live blocks from 32
call paths, with reallocations and temporaries) is recorded twice with the same arguments:
by heaptrail (the preload library, 16-frame stacks) and by heaptrack. Then `heaptrail report`
runs on the first recording and `heaptrack_print` on the second, each timed (wall clock, best
of --rounds) with its peak RSS (ru_maxrss from wait4); the exports run once each. The table
goes between the analysis-table markers of docs/PERFORMANCE.md (full runs only, or --docs),
raw numbers to bench/results/analyze-last-run.json.

  python3 bench/analyze/run.py                    # 100 M events, 3 rounds
  python3 bench/analyze/run.py --events 2000000 --rounds 1 --no-docs   # smoke run
  python3 bench/analyze/run.py --no-heaptrack     # heaptrail only

Targets (SPEC §8 and the analysis issue): report on a 100 M-event trace in under 10 s and
under 1 GiB on the 2-core CI machine.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEGIN = "<!-- analysis-table:begin -->"
END = "<!-- analysis-table:end -->"
TARGET_SECONDS = 10.0
TARGET_BYTES = 1 << 30


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HEAPTRAIL") and k != "LD_PRELOAD"}
    env.update(extra or {})
    return env


def measure(command, env=None, stdout=subprocess.DEVNULL):
    """Runs command; returns (seconds, peak RSS bytes)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(command), process.returncode, stderr[-2000:]))
    return seconds, usage.ru_maxrss * 1024


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def mib(n):
    return "%.1f MiB" % (n / (1 << 20))


def revision():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              check=True).stdout.decode().strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--window", type=int, default=100_000, help="live blocks churned")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--work-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                           "heaptrail-bench-analyze"))
    parser.add_argument("--no-heaptrack", action="store_true")
    parser.add_argument("--no-exports", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the recordings")
    parser.add_argument("--docs", default=None, help="file whose analysis table to rewrite")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--json", default=os.path.join(ROOT, "bench", "results",
                                                       "analyze-last-run.json"))
    args = parser.parse_args()

    build = args.build_dir
    workload = os.path.join(build, "bench_analyze_workload")
    preload = os.path.join(build, "libheaptrail-preload.so")
    cli = [os.path.join(build, "heaptrail")]
    if not os.access(cli[0], os.X_OK):
        cli = [os.path.join(build, "ht_analyze_cli")]  # the test driver: same code paths
    for path in (workload, preload, cli[0]):
        if not os.path.exists(path):
            sys.exit("missing %s: run make first" % path)
    heaptrack = shutil.which("heaptrack")
    heaptrack_print = shutil.which("heaptrack_print")
    use_heaptrack = not args.no_heaptrack and heaptrack and heaptrack_print
    os.makedirs(args.work_dir, exist_ok=True)
    trace = os.path.join(args.work_dir, "workload.trace")
    workload_args = [workload, "--events", str(args.events), "--window", str(args.window)]
    results = {"events_requested": args.events, "window": args.window,
               "load_start": load_average(), "rounds": args.rounds}

    print("recording %d events with heaptrail ..." % args.events, flush=True)
    if os.path.exists(trace):
        os.unlink(trace)
    seconds, _ = measure(workload_args, env=clean_env({
        "LD_PRELOAD": preload, "HEAPTRAIL_OUTPUT": trace, "HEAPTRAIL_STACKS": "16",
        "HEAPTRAIL_UNWIND": "fp"}))
    results["heaptrail_record_s"] = seconds
    results["trace_bytes"] = os.path.getsize(trace)

    hk_file = None
    if use_heaptrack:
        print("recording the same workload with heaptrack ...", flush=True)
        base = os.path.join(args.work_dir, "workload.heaptrack")
        for f in os.listdir(args.work_dir):
            if f.startswith("workload.heaptrack"):
                os.unlink(os.path.join(args.work_dir, f))
        seconds, _ = measure([heaptrack, "-o", base] + workload_args, env=clean_env())
        results["heaptrack_record_s"] = seconds
        found = [f for f in os.listdir(args.work_dir) if f.startswith("workload.heaptrack")]
        if found:
            hk_file = os.path.join(args.work_dir, found[0])
            results["heaptrack_file_bytes"] = os.path.getsize(hk_file)

    # heaptrail report, best of rounds (text), once as JSON; the event count from the JSON.
    times, rss = [], []
    for r in range(args.rounds):
        print("heaptrail report, round %d ..." % (r + 1), flush=True)
        s, m = measure(cli + ["report", trace, "--no-progress"])
        times.append(s)
        rss.append(m)
    results["report_s"] = min(times)
    results["report_all_s"] = times
    results["report_rss"] = max(rss)
    out = os.path.join(args.work_dir, "report.json")
    with open(out, "w") as f:
        s, m = measure(cli + ["report", trace, "--format", "json", "--no-progress"], stdout=f)
    results["report_json_s"], results["report_json_rss"] = s, m
    with open(out) as f:
        report = json.load(f)
    results["events"] = report["trace"]["events"]
    results["allocations"] = report["summary"]["allocations"]
    results["peak_bytes"] = report["summary"]["peak_bytes"]
    results["leaked_bytes"] = report["summary"]["leaked_bytes"]

    if not args.no_exports:
        for fmt in ("chrome", "massif", "folded", "pprof"):
            print("heaptrail export --format %s ..." % fmt, flush=True)
            target = os.path.join(args.work_dir, "export." + fmt)
            s, m = measure(cli + ["export", trace, "--format", fmt, "-o", target,
                                  "--no-progress"])
            results["export_%s_s" % fmt], results["export_%s_rss" % fmt] = s, m
            results["export_%s_bytes" % fmt] = os.path.getsize(target)
            os.unlink(target)

    if hk_file:
        times, rss = [], []
        for r in range(args.rounds):
            print("heaptrack_print, round %d ..." % (r + 1), flush=True)
            s, m = measure([heaptrack_print, hk_file])
            times.append(s)
            rss.append(m)
        results["heaptrack_print_s"] = min(times)
        results["heaptrack_print_all_s"] = times
        results["heaptrack_print_rss"] = max(rss)
        text = subprocess.run([heaptrack_print, hk_file], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode(errors="replace")
        m = re.search(r"calls to allocation functions: (\d+)", text)
        results["heaptrack_calls"] = int(m.group(1)) if m else None
        m = re.search(r"peak heap memory consumption: (\S+)", text)
        results["heaptrack_peak"] = m.group(1) if m else None

    results["load_end"] = load_average()
    results["date"] = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    results["revision"] = revision()
    results["machine"] = "nproc %d, %s, Linux %s" % (os.cpu_count(), platform.processor() or
                                                      platform.machine(), platform.release())
    results["command"] = "python3 bench/analyze/run.py" + (
        " " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    if not args.keep:
        os.unlink(trace)
        if hk_file:
            os.unlink(hk_file)

    table = render(results, use_heaptrack and hk_file)
    print(table)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    full = args.events == 100_000_000 and args.rounds >= 3 and not args.no_heaptrack
    docs = args.docs or (os.path.join(ROOT, "docs", "PERFORMANCE.md") if full else None)
    if docs and not args.no_docs:
        text = open(docs).read()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            with open(docs, "w") as f:
                f.write(head + BEGIN + "\n" + table + END + tail)
            print("wrote %s" % docs)
        else:
            print("%s has no analysis-table markers: not written" % docs)
    ok = results["report_s"] < TARGET_SECONDS and results["report_rss"] < TARGET_BYTES
    return 0 if ok or args.events != 100_000_000 else 1


def render(r, with_heaptrack):
    def verdict(ok):
        return "pass" if ok else "miss"
    rows = ["| measure | heaptrail | heaptrack | target | |", "| --- | ---: | ---: | --- | --- |"]
    hk = with_heaptrack
    rows.append("| events in the recording | %.1f M | %s | — | |" % (
        r["events"] / 1e6, "%.1f M allocation calls" % (r["heaptrack_calls"] / 1e6)
        if hk and r.get("heaptrack_calls") else "—"))
    rows.append("| recording file | %s | %s | — | |" % (
        mib(r["trace_bytes"]), mib(r["heaptrack_file_bytes"]) + " (zstd)"
        if hk and r.get("heaptrack_file_bytes") else "—"))
    rows.append("| recording time (workload + tracer) | %.1f s | %s | — | |" % (
        r["heaptrail_record_s"], "%.1f s" % r["heaptrack_record_s"]
        if hk and r.get("heaptrack_record_s") else "—"))
    report_ok = r["report_s"] < TARGET_SECONDS
    rows.append("| `report` / `heaptrack_print`, wall time (best of %d) | %.2f s | %s | < 10 s | %s |" % (
        r["rounds"], r["report_s"], "%.2f s" % r["heaptrack_print_s"]
        if hk and r.get("heaptrack_print_s") else "—", verdict(report_ok)))
    rows.append("| peak RSS | %s | %s | < 1 GiB | %s |" % (
        mib(r["report_rss"]), mib(r["heaptrack_print_rss"])
        if hk and r.get("heaptrack_print_rss") else "—",
        verdict(r["report_rss"] < TARGET_BYTES)))
    rows.append("| events analysed per second | %.1f M/s | %s | — | |" % (
        r["events"] / r["report_s"] / 1e6,
        "%.1f M calls/s" % (r["heaptrack_calls"] / r["heaptrack_print_s"] / 1e6)
        if hk and r.get("heaptrack_calls") and r.get("heaptrack_print_s") else "—"))
    rows.append("| `report --format json` | %.2f s, %s | — | — | |" % (
        r["report_json_s"], mib(r["report_json_rss"])))
    for fmt in ("chrome", "massif", "folded", "pprof"):
        if "export_%s_s" % fmt in r:
            rows.append("| `export --format %s` (one run) | %.2f s, %s (output %s) | — | — | |" % (
                fmt, r["export_%s_s" % fmt], mib(r["export_%s_rss" % fmt]),
                mib(r["export_%s_bytes" % fmt])))
    notes = [
        "",
        "- Workload: `bench_analyze_workload --events %d --window %d` (%.1f M allocations, "
        "peak %s live); heaptrail recorded it with `HEAPTRAIL_STACKS=16 HEAPTRAIL_UNWIND=fp`, "
        "heaptrack with its defaults." % (r["events_requested"], r["window"],
                                          r["allocations"] / 1e6, mib(r["peak_bytes"])),
        "- Machine: %s; load average %.2f at start, %.2f at end." % (
            r["machine"], r["load_start"], r["load_end"]),
        "- Date: %s; heaptrail revision %s." % (r["date"], r["revision"]),
        "- Command: `%s`" % r["command"],
        "- All report rounds: %s s%s." % (
            ", ".join("%.2f" % t for t in r["report_all_s"]),
            "; heaptrack_print rounds: %s s" % ", ".join(
                "%.2f" % t for t in r["heaptrack_print_all_s"])
            if hk and r.get("heaptrack_print_all_s") else ""),
    ]
    return "\n".join(rows + notes) + "\n"


if __name__ == "__main__":
    sys.exit(main())
