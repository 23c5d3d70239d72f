#!/usr/bin/env python3
"""run_tests.py — the analysis tests (`heaptrail report` and `heaptrail export`), one case per
CTest entry:

  report     leaky.c recorded under the preload library: the report (text and JSON) names the
             leaking functions with exact counts and bytes, the peak and the stack holding it,
             the temporary allocations, the INVALID frees; also with --no-symbols and with the
             trace moved to another directory
  heaptrack  the same program recorded by heaptrack: leaked bytes and peak agree with
             heaptrack_print within the tolerances explained in compare_heaptrack()
  exports    every export read back by its consumer: ms_print (massif), json + schema checks
             (chrome), a protobuf decoder written here and `protoc --decode_raw` when installed
             (pprof), line syntax and sums (folded)
  scenarios  scenarios.c (heaptrail's API, linked statically): WPA lifetime classes, Source
             breakdown against the heap's own counters, every INVALID kind, heap destroy,
             sampling, lost events, stripping of statically linked heaptrail frames
  errors     bad input gives one line on stderr and a non-zero status
  symbols    binaries found again through --symbols-path; a binary with another build-id is
             never used
  ranges     phases.c's three phases, found in the trace by their times: --from/--to narrow
             every section of the report (allocations, leaks, the peak) and of the exports,
             `export --at T` gives the blocks live at T; bad ranges are one-line errors
  html       `report --format html`: the page's embedded data against the JSON report (site
             totals, the timeline's sums) and its lifetime cells against `report --window` for
             ranges of bins; the data cannot close its script element

Exit status 0 on success, 77 when a case cannot run here (CTest SKIP_RETURN_CODE), 1 on failure.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys

SKIP = 77

# leaky.c's known numbers
LEAK_A = ("leak_parser", 7, 4096)
LEAK_B = ("cache_entry", 5, 10000)  # inlined into leak_cache()
PEAK = ("build_peak", 8, 1 << 20)
TEMP = ("make_temporaries", 25, 48)
CHURN = ("churn", 40)


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(command, env=None, expect=0, stdin=None):
    result = subprocess.run(command, env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=120)
    if expect is not None and result.returncode != expect:
        raise Failure("%s exited %d (expected %d)\nstdout: %s\nstderr: %s" % (
            " ".join(command), result.returncode, expect,
            result.stdout.decode(errors="replace")[-2000:],
            result.stderr.decode(errors="replace")[-2000:]))
    return result


class Context:
    def __init__(self, args):
        self.cli = args.cli
        self.preload = args.preload
        self.leaky = args.leaky
        self.scenarios = args.scenarios
        self.phases = args.phases
        self.work = os.path.join(args.workdir, args.case)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)

    def path(self, name):
        return os.path.join(self.work, name)

    def record_leaky(self, name="leaky.trace", program=None):
        trace = self.path(name)
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("HEAPTRAIL") or key == "LD_PRELOAD":
                del env[key]
        # leaky.c frees twice on purpose (an INVALID event to report): keep it running
        env.update(LD_PRELOAD=self.preload, HEAPTRAIL_OUTPUT=trace, HEAPTRAIL_STACKS="64",
                   HEAPTRAIL_TERMINATE_ON_CORRUPTION="0")
        run([program or self.leaky], env=env)
        check(os.path.getsize(trace) > 0, "no trace written")
        return trace

    def report_json(self, trace, *extra):
        result = run([self.cli, "report", trace, "--format", "json", "--top", "50"] + list(extra))
        return json.loads(result.stdout)

    def report_text(self, trace, *extra):
        return run([self.cli, "report", trace, "--top", "50"] + list(extra)).stdout.decode()


# ---- helpers over the JSON report ----

def by_function(stacks, function, key="bytes"):
    """Sums key over the stacks whose innermost frame is function."""
    return sum(s[key] for s in stacks if s["function"] == function)


def count_by_function(stacks, function):
    return sum(s["count"] for s in stacks if s["function"] == function)


def check_leaky_report(report):
    summary = report["summary"]
    leaks = report["leaks"]["stacks"]
    for function, count, size in (LEAK_A, LEAK_B):
        check(count_by_function(leaks, function) == count,
              "%s: %d leaked blocks reported, expected %d" % (
                  function, count_by_function(leaks, function), count))
        check(by_function(leaks, function) == count * size,
              "%s: %d leaked bytes reported, expected %d" % (
                  function, by_function(leaks, function), count * size))
    leaked_known = LEAK_A[1] * LEAK_A[2] + LEAK_B[1] * LEAK_B[2]
    check(summary["leaked_bytes"] == report["leaks"]["bytes"], "leak totals differ")
    # Traced from the library's constructor on: nothing was live before, and heaptrail's own
    # memory (its threads' thread-local storage, libunwind's set-up) is never in the trace.
    check(summary["rundown_bytes"] == 0 and summary["tracer_leaked_bytes"] == 0,
          "blocks not made by the program: %d B before tracing, %d B of heaptrail's own" % (
              summary["rundown_bytes"], summary["tracer_leaked_bytes"]))
    check(summary["leaked_bytes"] == leaked_known, "leaked bytes: %d, expected %d" % (
        summary["leaked_bytes"], leaked_known))
    peak = report["peak"]
    function, count, size = PEAK
    check(peak["stacks"][0]["function"] == function,
          "the peak's first stack is %s, expected %s" % (peak["stacks"][0]["function"], function))
    check(by_function(peak["stacks"], function) == count * size and
          count_by_function(peak["stacks"], function) == count,
          "%s holds %d bytes at the peak, expected %d" % (
              function, by_function(peak["stacks"], function), count * size))
    # At the peak: the 8 MiB and every leak (made before).
    expected_peak = count * size + leaked_known
    check(peak["bytes"] == expected_peak,
          "peak %d bytes, expected %d" % (peak["bytes"], expected_peak))
    check(0 < peak["time_ns"] <= report["trace"]["duration_ns"], "peak time out of the trace")
    temporary = report["temporary"]["stacks"]
    function, count, size = TEMP
    check(count_by_function(temporary, function) == count and
          by_function(temporary, function) == count * size,
          "%s: %d temporary allocations, expected %d" % (
              function, count_by_function(temporary, function), count))
    check(count_by_function(temporary, CHURN[0]) == 0, "churn() made temporaries")
    check(report["top_by_bytes"][0]["function"] == PEAK[0], "top site by bytes")
    check(report["top_by_count"][0]["function"] == CHURN[0] and
          report["top_by_count"][0]["count"] == CHURN[1], "top site by count")
    hist_count = sum(b["count"] for b in report["histogram"])
    check(hist_count == summary["allocations"], "histogram counts %d allocations of %d" % (
        hist_count, summary["allocations"]))
    big = [b for b in report["histogram"] if b["min"] == 1 << 20]
    check(big and big[0]["count"] == PEAK[1], "1 MiB bucket")
    heap_allocs = sum(src["count"] for h in report["sources"]["heaps"]
                      for src in h["allocations"].values())
    check(heap_allocs == summary["allocations"], "Source breakdown does not add up")
    kinds = sorted(g["kind"] for g in report["invalid"]["groups"])
    check(kinds == ["double free", "free of an unknown pointer"], "INVALID kinds: %s" % kinds)
    check(all(g["function"] == "misuse" for g in report["invalid"]["groups"]),
          "INVALID events not attributed to misuse()")
    check(report["lost"]["count"] == 0 and summary["lost_events"] == 0, "lost events")
    check(report["trace"]["complete"], "trace incomplete")
    frame = leaks[0]["frames"][0]
    for key in ("address", "function", "file", "line", "module", "offset", "inlined"):
        check(key in frame, "frame without %s" % key)


# ---- cases ----

def case_report(ctx):
    trace = ctx.record_leaky()
    report = ctx.report_json(trace)
    check(report["schema"] == "heaptrail-report/1", "schema name")
    check_leaky_report(report)
    leak_stack = [s for s in report["leaks"]["stacks"] if s["function"] == LEAK_A[0]][0]
    frame = leak_stack["frames"][0]
    check((frame["file"] or "").endswith("leaky.c") and frame["line"] > 0,
          "leak_parser's file:line")
    check(any(f["function"] == "main" for f in leak_stack["frames"]), "main in the stack")
    # The inlined call is a frame of its own, at its line inside the function it was inlined in.
    inlined = [s for s in report["leaks"]["stacks"] if s["function"] == LEAK_B[0]][0]["frames"]
    check(inlined[0]["inlined"] and not inlined[1]["inlined"] and
          inlined[1]["function"] == "leak_cache" and inlined[0]["line"] != inlined[1]["line"] and
          (inlined[1]["file"] or "").endswith("leaky.c"), "inlined frames: %s" % inlined[:2])

    text = ctx.report_text(trace)
    for needle in ("LEAKS", "PEAK", "TOP SITES BY BYTES ALLOCATED",
                   "TOP SITES BY NUMBER OF ALLOCATIONS", "TEMPORARY ALLOCATIONS",
                   "SIZE HISTOGRAM", "SOURCE BREAKDOWN", "INVALID EVENTS", "LOST EVENTS",
                   "28.00 KiB in 7 blocks", "48.83 KiB in 5 blocks", "8.00 MiB in 8 blocks",
                   "25 temporary (1.17 KiB)", "40 allocations", "double free",
                   "free of an unknown pointer", "leak_parser at ", "(inlined) cache_entry at ",
                   "leak_cache at ",
                   "build_peak at ", "make_temporaries at ", "misuse at "):
        check(needle in text, "text report lacks %r" % needle)

    # Without symbols: the same numbers, frames as module+offset.
    bare = ctx.report_json(trace, "--no-symbols")
    for key in ("allocations", "allocated_bytes", "leaked_bytes", "peak_bytes",
                "temporary_allocations", "invalid_events"):
        check(bare["summary"][key] == report["summary"][key], "--no-symbols changes %s" % key)
    names = [s["function"] for s in bare["leaks"]["stacks"]]
    check(all(n.startswith("[") or re.match(r"^[\w.+-]+\+0x[0-9a-f]+$", n) for n in names),
          "--no-symbols frames: %s" % names)

    # The trace moved to another directory still symbolizes (module records carry paths).
    moved_dir = ctx.path("moved")
    os.makedirs(moved_dir)
    moved = os.path.join(moved_dir, "renamed.trace")
    shutil.move(trace, moved)
    again = ctx.report_json(moved)
    check(again["summary"] == report["summary"], "moved trace: numbers differ")
    check_leaky_report(again)

    # Output to a file, and the temporary threshold widening the definition.
    out = ctx.path("report.txt")
    run([ctx.cli, "report", moved, "-o", out])
    check(open(out).read().startswith("heaptrail report:"), "-o output")
    wide = ctx.report_json(moved, "--temporary-threshold", "1h")
    check(wide["temporary"]["threshold_ns"] == 3600 * 10**9, "threshold")
    check(wide["summary"]["temporary_allocations"] == wide["summary"]["frees"],
          "with a 1 h threshold every freed block is temporary")


HEAPTRACK_UNITS = {"": 1, "B": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def heaptrack_bytes(text):
    """'78.72K' -> (78720.0, half a unit of the last printed digit)."""
    m = re.match(r"^([0-9.]+)([BKMGT]?)$", text)
    check(m, "cannot parse heaptrack size %r" % text)
    unit = HEAPTRACK_UNITS[m.group(2)]
    decimals = len(m.group(1).split(".")[1]) if "." in m.group(1) else 0
    return float(m.group(1)) * unit, 0.5 * unit / 10 ** decimals


def case_heaptrack(ctx):
    heaptrack = shutil.which("heaptrack")
    heaptrack_print = shutil.which("heaptrack_print")
    if not heaptrack or not heaptrack_print:
        print("heaptrack not installed: skipped")
        return SKIP
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("HEAPTRAIL") or key == "LD_PRELOAD":
            del env[key]
    base = ctx.path("leaky.heaptrack")
    run([heaptrack, "-o", base, ctx.leaky], env=env)
    data = [f for f in os.listdir(ctx.work) if f.startswith("leaky.heaptrack")]
    check(data, "heaptrack wrote no data file")
    data_file = os.path.join(ctx.work, data[0])
    summary = run([heaptrack_print, "-l", "1", "-p", "1", "-a", "0", "-T", "0", data_file]
                  ).stdout.decode()
    hk_leaked = re.search(r"total memory leaked: (\S+)", summary)
    hk_peak = re.search(r"peak heap memory consumption: (\S+)", summary)
    check(hk_leaked and hk_peak, "heaptrack_print output not understood")
    hk_leaked, leaked_rounding = heaptrack_bytes(hk_leaked.group(1))
    hk_peak, peak_rounding = heaptrack_bytes(hk_peak.group(1))

    report = ctx.report_json(ctx.record_leaky())
    check_leaky_report(report)
    s = report["summary"]
    compare_heaptrack(s, summary, hk_leaked, leaked_rounding, hk_peak, peak_rounding, report)


# Tolerances, and why:
#  - heaptrack_print rounds every size to two decimals of 1000-based units ("78.72K",
#    "8.54M"): half a unit of the last digit either way.
#  - heaptrail's preload starts tracing at the top of main() here (leaky.c asks for it), so what
#    the loader and libc allocated earlier is seen only as a rundown (blocks without stacks);
#    heaptrack hooks from its own constructor on and applies built-in leak suppressions to
#    loader internals. Leaks are therefore compared without heaptrail's rundown blocks, with
#    LOADER_SLACK for the few loader allocations (dlsym's) heaptrack still reports.
#  - Each tool leaves out its own allocations: heaptrack's are not recorded, heaptrail's (the
#    thread-local storage of its writer and control threads) come from a private heap that is
#    never traced.
#  - heaptrack's preload library is C++ and brings libstdc++ into the process, whose emergency
#    exception pool (72,704 bytes with GCC 12's libstdc++) is allocated before main and counts in
#    heaptrack's peak; in heaptrail's run of this C program that library is not loaded at all.
#    Peaks are compared without heaptrail's rundown bytes, allowing up to CXX_POOL_SLACK more
#    on heaptrack's side.
#  - Per-function figures (the leaking functions, the peak's holder) have no such noise: they
#    agree within heaptrack's rounding alone.
LOADER_SLACK = 1024
CXX_POOL_SLACK = 128 * 1024


def compare_heaptrack(s, text, hk_leaked, leaked_rounding, hk_peak, peak_rounding, report):
    ht_leaked = s["leaked_bytes"] - s["rundown_bytes"] - s["tracer_leaked_bytes"]
    check(abs(ht_leaked - hk_leaked) <= leaked_rounding + LOADER_SLACK,
          "leaked: heaptrail %d B (without %d B live before tracing), heaptrack %.0f B" % (
              ht_leaked, s["rundown_bytes"], hk_leaked))
    ht_peak = s["peak_bytes"] - s["rundown_bytes"] - by_function(report["peak"]["stacks"],
                                                                  "[heaptrail's own tracing]")
    check(ht_peak - peak_rounding - LOADER_SLACK <= hk_peak <=
          ht_peak + peak_rounding + LOADER_SLACK + CXX_POOL_SLACK,
          "peak: heaptrail %d B (without the rundown), heaptrack %.0f B" % (ht_peak, hk_peak))
    for function, count, size in (LEAK_A, LEAK_B):
        # heaptrack names the innermost frame too; inlined ones depend on its version.
        names = function if function != "cache_entry" else "(?:cache_entry|leak_cache)"
        m = re.search(r"^(\S+) leaked over (\d+) calls from\n%s\n" % names, text, re.M)
        check(m, "heaptrack_print lists no leak from %s" % function)
        value, rounding = heaptrack_bytes(m.group(1))
        ours = by_function(report["leaks"]["stacks"], function)
        check(abs(value - ours) <= rounding and int(m.group(2)) == count,
              "%s: heaptrack %s over %s calls, heaptrail %d B" % (function, m.group(1),
                                                                   m.group(2), ours))
    m = re.search(r"^(\S+) peak memory consumed over (\d+) calls from\n%s\n" % PEAK[0], text, re.M)
    check(m, "heaptrack_print lists no peak consumer %s" % PEAK[0])
    value, rounding = heaptrack_bytes(m.group(1))
    ours = by_function(report["peak"]["stacks"], PEAK[0])
    check(abs(value - ours) <= rounding, "%s at the peak: heaptrack %s, heaptrail %d" % (
        PEAK[0], m.group(1), ours))
    print("heaptrack: leaked %.0f B, peak %.0f B; heaptrail: leaked %d B, peak %d B "
          "(rundown %d B)" % (hk_leaked, hk_peak, s["leaked_bytes"], s["peak_bytes"],
                               s["rundown_bytes"]))


# ---- pprof: a small protobuf decoder ----

def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        check(pos < len(data), "truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        check(shift < 70, "varint too long")


def decode_message(data):
    """Returns {field: [values]}: ints for varints, bytes for length-delimited fields."""
    fields, pos = {}, 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 2:
            length, pos = read_varint(data, pos)
            check(pos + length <= len(data), "field %d overruns its message" % field)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise Failure("unexpected wire type %d" % wire)
        fields.setdefault(field, []).append(value)
    return fields


def packed(values):
    out = []
    for v in values:
        if isinstance(v, int):
            out.append(v)
        else:
            pos = 0
            while pos < len(v):
                x, pos = read_varint(v, pos)
                out.append(x)
    return out


def check_pprof(path, report):
    raw = open(path, "rb").read()
    check(raw[:2] == b"\x1f\x8b", "pprof output is not gzip")
    data = gzip.decompress(raw)
    profile = decode_message(data)
    strings = [s.decode() for s in profile.get(6, [])]
    check(strings and strings[0] == "", "string table must start with an empty string")
    types = []
    for vt in profile.get(1, []):
        m = decode_message(vt)
        types.append((strings[m.get(1, [0])[0]], strings[m.get(2, [0])[0]]))
    check(types == [("alloc_objects", "count"), ("alloc_space", "bytes"),
                    ("inuse_objects", "count"), ("inuse_space", "bytes")],
          "sample types %s" % types)
    functions = {}
    for f in profile.get(5, []):
        m = decode_message(f)
        functions[m[1][0]] = strings[m.get(2, [0])[0]]
    mappings = {}
    for mp in profile.get(3, []):
        m = decode_message(mp)
        mappings[m[1][0]] = (strings[m.get(5, [0])[0]], strings[m.get(6, [0])[0]])
    locations = {}
    for loc in profile.get(4, []):
        m = decode_message(loc)
        lines = [decode_message(l) for l in m.get(4, [])]
        check(lines, "location without lines")
        for l in lines:
            check(l[1][0] in functions, "line refers to an unknown function")
        mapping = m.get(2, [0])[0]
        check(mapping == 0 or mapping in mappings, "location refers to an unknown mapping")
        locations[m[1][0]] = [functions[l[1][0]] for l in lines]
    totals = [0, 0, 0, 0]
    leaf_inuse = {}
    for sample in profile.get(2, []):
        m = decode_message(sample)
        ids = packed(m.get(1, []))
        values = packed(m.get(2, []))
        check(len(values) == 4, "sample with %d values" % len(values))
        for i in ids:
            check(i in locations, "sample refers to an unknown location")
        for k in range(4):
            totals[k] += values[k]
        leaf = locations[ids[0]][0]
        leaf_inuse[leaf] = leaf_inuse.get(leaf, 0) + values[3]
    s = report["summary"]
    check(totals == [s["allocations"], s["allocated_bytes"], s["leaked_blocks"],
                     s["leaked_bytes"]],
          "pprof totals %s, report %s" % (totals, [s["allocations"], s["allocated_bytes"],
                                                   s["leaked_blocks"], s["leaked_bytes"]]))
    for function, count, size in (LEAK_A, LEAK_B):
        check(leaf_inuse.get(function) == count * size, "pprof inuse_space of %s" % function)
    check(any(re.fullmatch(r"[0-9a-f]{40}", bid) for _, bid in mappings.values()),
          "no mapping carries a build id")
    check(profile.get(9, [0])[0] > 0 and profile.get(10, [0])[0] > 0, "time and duration")
    protoc = shutil.which("protoc")
    if protoc:
        decoded = run([protoc, "--decode_raw"], stdin=open(path.replace(".pb.gz", ".pb"), "rb"))
        check(b"alloc_space" in decoded.stdout, "protoc --decode_raw output")


def check_chrome(path, report):
    doc = json.load(open(path))
    check(isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list), "traceEvents")
    check(doc.get("displayTimeUnit") in ("ms", "ns"), "displayTimeUnit")
    phases = {}
    last_counter = -1.0
    for e in doc["traceEvents"]:
        check(isinstance(e.get("name"), str) and e.get("ph") in "CiXbeM", "event %s" % e)
        check(isinstance(e.get("pid"), int), "pid")
        phases[e["ph"]] = phases.get(e["ph"], 0) + 1
        if e["ph"] != "M":
            check(isinstance(e.get("ts"), (int, float)) and e["ts"] >= 0, "ts of %s" % e)
        if e["ph"] == "C":
            check(e["args"] and all(isinstance(v, (int, float)) and v >= 0
                                    for v in e["args"].values()), "counter args %s" % e)
        if e["ph"] == "X":
            check(isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0, "dur")
        if e["ph"] == "i":
            check(e.get("s") in ("t", "p", "g"), "instant scope")
        if e["ph"] in "be":
            check("id" in e and "cat" in e, "async event without id/cat")
    for ph in "CiXbeM":
        check(phases.get(ph), "no %r events" % ph)
    check(phases["b"] == phases["e"], "unbalanced async slices")
    peak_counter = max(sum(e["args"].values()) for e in doc["traceEvents"]
                       if e["ph"] == "C" and e["name"] == "live bytes")
    check(peak_counter == report["summary"]["peak_bytes"],
          "chrome counter peak %d, report %d" % (peak_counter, report["summary"]["peak_bytes"]))
    names = {e["name"] for e in doc["traceEvents"] if e["ph"] == "i"}
    check({"double free", "free of an unknown pointer", "peak"} <= names, "instants %s" % names)
    large = [e for e in doc["traceEvents"] if e["ph"] == "b"]
    check(len(large) == PEAK[1], "large block slices: %d" % len(large))
    check(all("build_peak" in e["args"]["stack"] for e in large), "large block stacks")


def check_massif(path, report):
    ms_print = shutil.which("ms_print")
    text = open(path).read()
    check(text.startswith("desc:") and "\ncmd:" in text and "\ntime_unit: ms\n" in text,
          "massif header")
    snapshots = re.findall(r"^mem_heap_B=(\d+)$", text, re.M)
    check(max(int(v) for v in snapshots) == report["summary"]["peak_bytes"], "massif peak")
    check("heap_tree=peak" in text and "build_peak" in text, "massif peak tree")
    if not ms_print:
        print("ms_print not installed: the massif file is only checked by this script")
        return
    out = run([ms_print, path]).stdout.decode()
    check("build_peak" in out and "(peak)" in out, "ms_print output lacks the peak tree")
    # Every detailed snapshot has a tree; the peak's build_peak node holds all its blocks (an
    # earlier detailed snapshot, taken while build_peak was still allocating, holds fewer).
    nodes = [int(v.replace(",", "")) for v in
             re.findall(r"^->\d+\.\d+% \(([\d,]+)B\) 0x[0-9a-f]+: build_peak", out, re.M)]
    check(PEAK[1] * PEAK[2] in nodes and max(nodes) == PEAK[1] * PEAK[2],
          "ms_print's build_peak nodes %s" % nodes)


def check_folded(ctx, trace, report):
    def folded(value):
        out = run([ctx.cli, "export", trace, "--format", "folded", "--folded-value", value])
        lines = out.stdout.decode().splitlines()
        rows = []
        for line in lines:
            m = re.fullmatch(r"(.+) (\d+)", line)
            check(m, "bad folded line %r" % line)
            frames = m.group(1).split(";")
            check(all(frames), "empty frame in %r" % line)
            rows.append((frames, int(m.group(2))))
        check(len({";".join(f) for f, _ in rows}) == len(rows), "duplicate folded stacks")
        return rows
    s = report["summary"]
    rows = folded("bytes")
    check(sum(v for _, v in rows) == s["allocated_bytes"], "folded bytes total")
    rows = folded("count")
    check(sum(v for _, v in rows) == s["allocations"], "folded count total")
    rows = folded("leaked")
    check(sum(v for _, v in rows) == s["leaked_bytes"], "folded leaked total")
    leaf = {}
    for frames, v in rows:
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + v
    for function, count, size in (LEAK_A, LEAK_B):
        check(leaf.get(function) == count * size, "folded leaked %s" % function)
    main_first = [f for f, _ in rows if "main" in f]
    check(main_first and all(f.index("main") < len(f) - 1 for f in main_first),
          "folded frames must run outermost first")
    rows = folded("peak")
    check(sum(v for _, v in rows) == s["peak_bytes"], "folded peak total")


def case_exports(ctx):
    trace = ctx.record_leaky()
    report = ctx.report_json(trace)
    check_leaky_report(report)
    massif = ctx.path("massif.out")
    run([ctx.cli, "export", trace, "--format", "massif", "-o", massif])
    check_massif(massif, report)
    chrome = ctx.path("trace.json")
    run([ctx.cli, "export", trace, "--format", "chrome", "-o", chrome])
    check_chrome(chrome, report)
    pprof = ctx.path("profile.pb.gz")
    run([ctx.cli, "export", trace, "--format", "pprof", "-o", pprof])
    with open(pprof.replace(".pb.gz", ".pb"), "wb") as f:
        f.write(gzip.decompress(open(pprof, "rb").read()))
    check_pprof(pprof, report)
    check_folded(ctx, trace, report)
    # stdout works too, and gives the same bytes as -o
    out = run([ctx.cli, "export", trace, "--format", "chrome"]).stdout
    check(out == open(chrome, "rb").read(), "chrome export to stdout differs")


def case_scenarios(ctx):
    prefix = ctx.path("sc")
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("HEAPTRAIL"):
            del env[key]
    run([ctx.scenarios, prefix], env=env)
    known = json.load(open(prefix + ".json"))
    start = ctx.report_json(prefix + ".window.trace")["trace"]["start_monotonic_ns"]
    window = "%dus..%dus" % ((known["window_begin_monotonic_ns"] - start) // 1000,
                             (known["window_end_monotonic_ns"] - start) // 1000)
    report = ctx.report_json(prefix + ".window.trace", "--window", window)
    w = report["window"]
    for name, (count, size) in known["classes"].items():
        got = w["classes"][name]
        check(got["count"] == count and got["bytes"] == size,
              "%s: %s, expected %d blocks / %d bytes" % (name, got, count, size))
    impact = known["classes"]["AIFO"][1] - known["classes"]["AOFI"][1]
    check(w["impacting_bytes"] == impact, "impacting size %d, expected %d" % (
        w["impacting_bytes"], impact))
    sites = {s["function"]: s for s in w["stacks"]}
    check(sites["inside_phase"]["impacting_bytes"] == known["classes"]["AIFO"][1] and
          sites["before_phase"]["impacting_bytes"] == -known["classes"]["AOFI"][1],
          "impacting size by site")
    # The Source breakdown of the heap equals the heap's own counters (ALLOC + REALLOC for
    # allocations, FREE + the old blocks of REALLOC for frees).
    heap = [h for h in report["sources"]["heaps"] if h["heap"] == known["heap"]][0]
    counters = known["counters"]
    for source, value in heap["allocations"].items():
        expected = counters["ALLOC"][source] + counters["REALLOC"][source]
        check(value["count"] == expected, "allocations from %s: %d, heap counted %d" % (
            source, value["count"], expected))
    for source, value in heap["frees"].items():
        expected = counters["FREE"][source] + counters["REALLOC"][source]
        check(value["count"] == expected, "frees to %s: %d, heap counted %d" % (
            source, value["count"], expected))
    check(heap["invalid"]["FREE"] == counters["FREE"]["MEMORY_FROM_INVALID"] and
          heap["invalid"]["REALLOC"] == counters["REALLOC"]["MEMORY_FROM_INVALID"],
          "INVALID counts of the heap")
    check(heap["allocations"]["MEMORY_FROM_LOWFRAG"]["count"] > 0, "no LFH allocation seen")
    kinds = sorted(g["kind"] for g in report["invalid"]["groups"])
    check(kinds == sorted(["double free", "free of an unknown pointer",
                           "free through the wrong heap", "reallocation of a freed block",
                           "failed allocation"]), "INVALID kinds %s" % kinds)
    check(all(g["function"] == "misuse" for g in report["invalid"]["groups"]),
          "INVALID stacks must start at misuse(): heaptrail's own frames not stripped")
    check(report["summary"]["heap_destroy_blocks"] == 5, "blocks released by HEAP_DESTROY")
    check(all(s["function"] != "doomed_heap" for s in report["leaks"]["stacks"]),
          "blocks of a destroyed heap reported as leaks")
    allowed = {"before_phase", "inside_phase", "after_phase", "source_traffic", "misuse",
               "doomed_heap", "[allocated before tracing started]", "[no stack]",
               "[heaptrail's own tracing]"}
    tops = {s["function"] for s in report["top_by_count"]}
    check(tops <= allowed, "sites not stripped to the program's functions: %s" % (tops - allowed))

    sampled = ctx.report_json(prefix + ".sampled.trace")
    check(sampled["trace"]["sample_interval"] == 4096, "sample interval")
    heap = [h for h in sampled["sources"]["heaps"] if h["heap"] == known["sampled"]][0]
    estimate = sum(v["count"] for v in heap["allocations"].values())
    count = known["sampled_count"]
    check(abs(estimate - count) <= 0.15 * count,
          "sampled estimate %d allocations, made %d" % (estimate, count))
    kept = sum(s["count"] for s in sampled["leaks"]["stacks"] if s["function"] == "sampled_work")
    check(abs(kept - known["sampled_keep"]) <= 0.2 * known["sampled_keep"],
          "sampled leak estimate %d blocks, kept %d" % (kept, known["sampled_keep"]))

    # Ring mode: the stop's rundown does not list the blocks whose FREE events were overwritten
    # in the freeing thread's ring; they must not stay live (leaked) in the report.
    ring = ctx.report_json(prefix + ".ring.trace")
    check(ring["trace"]["mode"] == "ring", "ring trace mode")
    check(ring["summary"]["stale_blocks"] >= known["ring_count"],
          "ring: %d stale blocks dropped, expected at least %d" % (
              ring["summary"]["stale_blocks"], known["ring_count"]))
    check(all(s["function"] != "ring_alloc" for s in ring["leaks"]["stacks"]),
          "ring: blocks freed by another thread reported as leaks")

    lost = ctx.report_json(prefix + ".lost.trace")
    check(known["lost"] > 0, "the scenario lost no events: the test needs some")
    check(lost["lost"]["count"] == known["lost"] and lost["summary"]["lost_events"] ==
          known["lost"], "lost events %d, the tracer counted %d" % (lost["lost"]["count"],
                                                                    known["lost"]))
    check(lost["lost"]["by_reason"].get("BUFFER_FULL") == known["lost"], "loss reason")
    text = ctx.report_text(prefix + ".lost.trace")
    check("{:,} events lost".format(known["lost"]) in text, "text report on lost events")
    text = ctx.report_text(prefix + ".window.trace", "--window", window)
    for needle in ("WINDOW", "AIFI", "AIFO", "AOFI", "AOFO", "impacting size",
                   "free through the wrong heap", "inside_phase at "):
        check(needle in text, "text report lacks %r" % needle)
    # Temporaries across threads: each thread's last allocation had the address of the block it
    # frees next, but that block was allocated by the other thread; only true_temporaries()
    # makes temporaries.
    check(known["cross_reused"] >= known["cross_rounds"] // 2,
          "the scenario reused an address in %d of %d rounds: the test needs reuse" % (
              known["cross_reused"], known["cross_rounds"]))
    temporary = ctx.report_json(prefix + ".temporary.trace")
    expected = known["true_temporaries"]
    check(temporary["summary"]["temporary_allocations"] == expected and
          temporary["summary"]["temporary_bytes"] == expected * known["true_temporary_size"],
          "temporaries: %d (%d B) reported, %d made" % (
              temporary["summary"]["temporary_allocations"],
              temporary["summary"]["temporary_bytes"], expected))
    check([s["function"] for s in temporary["temporary"]["stacks"]] == ["true_temporaries"],
          "temporary stacks: %s" % [s["function"] for s in temporary["temporary"]["stacks"]])
    check(temporary["summary"]["frees"] == 2 * known["cross_rounds"] + expected,
          "frees in the temporaries scenario: %d" % temporary["summary"]["frees"])
    # Exports of a trace with heap lifetimes and INVALID events also parse.
    chrome = ctx.path("window.json")
    run([ctx.cli, "export", prefix + ".window.trace", "--format", "chrome", "-o", chrome])
    doc = json.load(open(chrome))
    check(any(e["ph"] == "X" and e["name"].startswith("heap ") for e in doc["traceEvents"]),
          "heap lifetimes")


USAGE, IO, MALFORMED = 1, 2, 3  # README "Exit codes"


def expect_error(ctx, args, status, pattern):
    """A failure is one line on stderr, "heaptrail: <command>: ..."; usage errors add the line
    "Try 'heaptrail <command> --help'."."""
    result = run([ctx.cli] + args, expect=status)
    err = result.stderr.decode()
    lines = err.strip().splitlines()
    command = args[0]
    if status == USAGE:
        check(len(lines) == 2 and lines[1] == "Try 'heaptrail %s --help'." % command,
              "%s: expected a usage error and the --help hint, got %r" % (" ".join(args), err))
    else:
        check(len(lines) == 1, "%s: expected one line on stderr, got %r" % (" ".join(args), err))
    check(lines[0].startswith("heaptrail: %s: " % command), "message prefix: %r" % lines[0])
    check(re.search(pattern, lines[0]), "%s: %r does not match %r" % (" ".join(args), lines[0],
                                                                       pattern))
    check(not result.stdout, "%s: output on stdout" % " ".join(args))


def chunk_ends(data):
    """The offsets where the trace's chunks end (FORMAT.md section 1: a 16-byte preamble, then
    chunks of a 16-byte header, M meta bytes and B body bytes)."""
    ends, pos = [], 16
    while pos + 16 <= len(data):
        meta, body = struct.unpack_from("<HI", data, pos + 2)
        pos += 16 + meta + body
        if pos > len(data):
            break
        ends.append(pos)
    check(ends and ends[-1] == len(data), "the trace does not end with a whole chunk")
    return ends


def case_errors(ctx):
    prefix = ctx.path("sc")
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("HEAPTRAIL"):
            del env[key]
    run([ctx.scenarios, prefix], env=env)
    good = prefix + ".window.trace"
    data = open(good, "rb").read()
    missing = ctx.path("missing.trace")
    expect_error(ctx, ["report", missing], IO, r"cannot open '.*missing\.trace'")
    expect_error(ctx, ["export", missing, "--format", "chrome"], IO, r"cannot open")
    expect_error(ctx, ["report", ctx.work], IO, r"cannot open")
    empty = ctx.path("empty.trace")
    open(empty, "wb").close()
    expect_error(ctx, ["report", empty], MALFORMED, r"not a readable heaptrail trace")
    garbage = ctx.path("garbage.trace")
    open(garbage, "wb").write(b"this is not a trace\n" * 10)
    expect_error(ctx, ["report", garbage], MALFORMED, r"not a readable heaptrail trace")
    expect_error(ctx, ["export", garbage, "--format", "folded"], MALFORMED,
                 r"not a readable heaptrail trace")
    # A damaged byte: the reader's checksum catches it, naming the offset.
    corrupt = ctx.path("corrupt.trace")
    broken = bytearray(data)
    broken[len(broken) // 2] ^= 0xFF
    open(corrupt, "wb").write(bytes(broken))
    expect_error(ctx, ["report", corrupt], MALFORMED, r"offset \d+")
    out = ctx.path("corrupt.json")
    expect_error(ctx, ["export", corrupt, "--format", "chrome", "-o", out], MALFORMED,
                 r"offset \d+")
    check(not os.path.exists(out), "a failed export left its file behind")
    # Cut short inside a chunk (FORMAT.md "Truncation"): still a report, with a warning on
    # stderr and in the report. Cut at a chunk's end, it is a trace without its footer: a
    # valid one, with no warning.
    ends = chunk_ends(data)
    inside = len(data) * 2 // 3
    if inside in ends:
        inside += 1
    cut = ctx.path("cut.trace")
    open(cut, "wb").write(data[:inside])
    result = run([ctx.cli, "report", cut, "--format", "json"])
    report = json.loads(result.stdout)
    check(report["trace"]["truncated"] and report["trace"]["warnings"], "truncation warning")
    check(b"warning" in result.stderr, "no warning on stderr for a truncated trace")
    boundary = [end for end in ends if end < len(data)][-1]
    open(cut, "wb").write(data[:boundary])
    result = run([ctx.cli, "report", cut, "--format", "json"])
    info = json.loads(result.stdout)["trace"]
    check(not info["complete"] and not info["truncated"] and not info["warnings"],
          "a trace cut at a chunk's end: %r" % info)
    for window in ("abc", "1s", "3s..1s", "1s..1s", "1x..2s", "1s..2s..3s", "-1s..2s",
                   "1e3s..2e3s", "s..2s", "0x10..2s"):
        expect_error(ctx, ["report", good, "--window", window], USAGE,
                     r"bad value '.*' for --window")
    expect_error(ctx, ["report", good, "--window"], USAGE, r"'--window' needs a value")
    expect_error(ctx, ["report", good, "--bogus"], USAGE, r"unknown option '--bogus'")
    expect_error(ctx, ["report", good, "--format", "xml"], USAGE, r"bad value 'xml' for --format")
    expect_error(ctx, ["report", good, "--top", "0"], USAGE, r"bad value '0' for --top")
    expect_error(ctx, ["report", good, "--temporary-threshold", "soon"], USAGE,
                 r"--temporary-threshold")
    expect_error(ctx, ["report"], USAGE, r"expected one trace file")
    expect_error(ctx, ["report", good, good], USAGE, r"is extra")
    expect_error(ctx, ["export", good], USAGE, r"--format is required")
    expect_error(ctx, ["export", good, "--format", "svg"], USAGE, r"bad value 'svg' for --format")
    expect_error(ctx, ["export", good, "--format", "folded", "--folded-value", "x"], USAGE,
                 r"--folded-value")
    expect_error(ctx, ["export", good, "--format", "chrome", "--large-block", "big"], USAGE,
                 r"--large-block")
    out = ctx.path("no-such-dir/out.json")
    expect_error(ctx, ["export", good, "--format", "chrome", "-o", out], IO, r"cannot write")
    expect_error(ctx, ["report", good, "-o", out], IO, r"cannot write")
    for command in ("report", "export"):
        help_text = run([ctx.cli, command, "--help"]).stdout.decode()
        check(help_text.lower().startswith("usage: heaptrail %s" % command), "%s --help" % command)
    # A window on a good trace: ".." is the whole trace.
    whole = ctx.report_json(good, "--window", "..")
    check(whole["window"]["begin_ns"] == 0 and whole["window"]["end_ns"] is None, "window ..")
    # Options after the file and --opt=value work as well.
    run([ctx.cli, "report", good, "--format=json", "--top=3"])


def case_symbols(ctx):
    elsewhere = ctx.path("build-a")
    moved = ctx.path("build-b")
    os.makedirs(elsewhere)
    os.makedirs(moved)
    program = os.path.join(elsewhere, "leaky")
    shutil.copy2(ctx.leaky, program)
    trace = ctx.record_leaky(program=program)
    shutil.move(program, os.path.join(moved, "leaky"))
    lost = ctx.report_json(trace)
    names = {s["function"] for s in lost["leaks"]["stacks"]}
    check(LEAK_A[0] not in names and any(n.startswith("leaky+0x") for n in names),
          "the binary is gone: frames must stay module+offset, got %s" % names)
    found = ctx.report_json(trace, "--symbols-path", moved)
    check_leaky_report(found)
    # Another binary at the recorded path (other build-id) must not be used for symbols.
    shutil.copy2(ctx.scenarios, program)
    wrong = ctx.report_json(trace)
    names = {s["function"] for s in wrong["leaks"]["stacks"]}
    check(not names & {"before_phase", "inside_phase", "main"} and LEAK_A[0] not in names,
          "a binary with another build-id was used: %s" % names)


# ---- time ranges ----

def record_phases(ctx, *args):
    trace = ctx.path("phases.trace")
    run([ctx.cli, "record", "-q", "--stacks", "-o", trace, "--", ctx.phases] + list(args))
    return trace


def phase_times(ctx, trace):
    """The first and last event of each phase, ns since the trace start."""
    start = ctx.report_json(trace)["trace"]["start_monotonic_ns"]
    dump = run([ctx.cli, "dump", "--format", "csv", trace]).stdout.decode().splitlines()
    times = {}
    for row in dump[1:]:
        cells = row.split(",")
        if cells[2] == "ALLOC" and cells[5] in ("1000", "2000", "3000"):
            t = int(cells[0]) - start
            first, last = times.get(cells[5], (t, t))
            times[cells[5]] = (min(first, t), max(last, t))
    check(sorted(times) == ["1000", "2000", "3000"], "phases in the trace: %s" % times)
    one, two, three = times["1000"], times["2000"], times["3000"]
    check(two[0] - one[1] > 100000000 and three[0] - two[1] > 100000000,
          "phases not apart: %s" % times)
    return one, two, three


def ns(value):
    return "%dns" % value


def folded_sums(text):
    sums = {}
    for line in text.splitlines():
        stack, value = line.rsplit(" ", 1)
        leaf = stack.split(";")[-1].split(" ")[0]
        sums[leaf] = sums.get(leaf, 0) + int(value)
    return sums


def case_ranges(ctx):
    trace = record_phases(ctx)
    one, two, three = phase_times(ctx, trace)
    m12, m23 = (one[1] + two[0]) // 2, (two[1] + three[0]) // 2

    whole = ctx.report_json(trace)
    check("range" not in whole["trace"], "no range: no range object")
    check(by_function(whole["leaks"]["stacks"], "phase_three") == 90000, "whole: leaks")

    first = ctx.report_json(trace, "--to", ns(m12))
    check(first["trace"]["range"] == {"from_ns": 0, "to_ns": m12}, "range object: %s" %
          first["trace"].get("range"))
    check(by_function(first["top_by_bytes"], "phase_one") == 10000 and
          count_by_function(first["top_by_bytes"], "phase_one") == 10, "--to: phase one")
    check(by_function(first["top_by_bytes"], "phase_two") == 0, "--to: no phase two")
    check(by_function(first["leaks"]["stacks"], "phase_one") == 10000, "--to: leaks at its end")
    check(first["totals"]["live_when"].startswith("at the end of the range"), "live_when")

    second = ctx.report_json(trace, "--from", ns(m12), "--to", ns(m23))
    check(by_function(second["top_by_bytes"], "phase_two") == 40000 and
          count_by_function(second["top_by_bytes"], "phase_two") == 20, "range: phase two")
    check(by_function(second["top_by_bytes"], "phase_one") == 0 and
          by_function(second["top_by_bytes"], "phase_three") == 0, "range: other phases")
    check(second["summary"]["frees"] == 10 and second["summary"]["freed_bytes"] == 10000,
          "range: phase one's frees: %s" % second["summary"])
    # Leaks of a range: allocated in it and live at its end (phase one's blocks are not).
    check(by_function(second["leaks"]["stacks"], "phase_two") == 40000 and
          by_function(second["leaks"]["stacks"], "phase_one") == 0, "range: leaks")
    # Its peak: phase one's blocks were live too, just before their free.
    peak = second["peak"]
    check(by_function(peak["stacks"], "phase_one") == 10000 and
          by_function(peak["stacks"], "phase_two") == 40000, "range: peak composition")
    check(m12 <= peak["time_ns"] < m23, "range: peak time %d" % peak["time_ns"])
    kinds = second["trace"]["events_by_kind"]
    check(kinds.get("ALLOC") == 20 and kinds.get("FREE") == 10, "range: events %s" % kinds)
    text = ctx.report_text(trace, "--from", ns(m12), "--to", ns(m23))
    check("range " in text and "phase_two at " in text and "phase_one at " in text,
          "text report with a range")

    third = ctx.report_json(trace, "--from", ns(m23))
    check(by_function(third["top_by_bytes"], "phase_three") == 90000 and
          by_function(third["leaks"]["stacks"], "phase_three") == 90000 and
          by_function(third["leaks"]["stacks"], "phase_two") == 0, "--from: phase three")
    check(third["summary"]["freed_bytes"] == 40000, "--from: phase two's frees")

    # A range with no event in it: nothing allocated or leaked there; its peak is what was live.
    quiet = ctx.report_json(trace, "--from", ns(one[1] + 1000000), "--to", ns(two[0] - 1000000))
    check(quiet["summary"]["allocations"] == 0 and quiet["summary"]["frees"] == 0 and
          quiet["summary"]["leaked_bytes"] == 0, "empty range: %s" % quiet["summary"])
    check(by_function(quiet["peak"]["stacks"], "phase_one") == 10000, "empty range: peak")

    # export: the same range, and --at for an instant.
    folded = run([ctx.cli, "export", "--format", "folded", "--from", ns(m12), "--to", ns(m23),
                  trace]).stdout.decode()
    sums = folded_sums(folded)
    check(sums.get("phase_two") == 40000 and "phase_one" not in sums and
          "phase_three" not in sums, "folded with a range: %s" % sums)
    at = folded_sums(run([ctx.cli, "export", "--format", "folded", "--at", ns(m23),
                          trace]).stdout.decode())
    check(at.get("phase_two") == 40000 and "phase_one" not in at and "phase_three" not in at,
          "--at between phases two and three: %s" % at)
    at = folded_sums(run([ctx.cli, "export", "--format", "folded", "--at", ns(m12),
                          trace]).stdout.decode())
    check(at.get("phase_one") == 10000 and "phase_two" not in at, "--at m12: %s" % at)
    # The other exports take the range too.
    for fmt in ("chrome", "massif", "pprof"):
        out = ctx.path("range." + fmt)
        run([ctx.cli, "export", "--format", fmt, "--from", ns(m12), "--to", ns(m23), "-o", out,
             trace])
        check(os.path.getsize(out) > 0, "export %s with a range" % fmt)
    # A window inside a range.
    windowed = ctx.report_json(trace, "--from", ns(m12), "--window", "%s.." % ns(m12))
    classes = {k: v["bytes"] for k, v in windowed["window"]["classes"].items()}
    check(classes == {"AIFI": 40000, "AIFO": 90000, "AOFI": 10000, "AOFO": 0}, "window: %s" %
          classes)

    # Bad ranges: one line, status 1.
    for args, pattern in (
            (["report", "--from", "100s", trace], r"after the trace's end"),
            (["report", "--from", "2s", "--to", "1s", trace], r"--from must be before --to"),
            (["report", "--from", "soon", trace], r"bad value 'soon' for --from"),
            (["export", "--format", "folded", "--to", "1x", trace], r"bad value '1x' for --to"),
            (["export", "--format", "chrome", "--at", "1s", trace], r"--at needs --format folded"),
            (["export", "--format", "folded", "--at", "1s", "--from", "0.5s", trace],
             r"--at cannot be combined"),
            (["export", "--format", "folded", "--from", "100s", trace], r"after the trace's end")):
        result = run([ctx.cli] + args, expect=1)
        # One line (usage errors add the usual pointer to --help).
        err = "\n".join(line for line in result.stderr.decode().strip().splitlines()
                        if not line.startswith("Try 'heaptrail "))
        check(len(err.splitlines()) == 1 and re.search(pattern, err),
              "%s: stderr %r" % (" ".join(args), err))
        check(not result.stdout, "%s: nothing on stdout" % " ".join(args))


# ---- the HTML report's data ----

def html_data(path):
    with open(path, encoding="utf-8") as f:
        page = f.read()
    head = '<script id="heaptrail-data" type="application/json">'
    check(page.count(head) == 1, "one data element")
    body = page.split(head, 1)[1]
    data, _ = body.split("</script>", 1)
    return json.loads(data), page


def lifetime_classes(cells, a, b):
    classes = {k: [0, 0] for k in ("AIFI", "AIFO", "AOFI", "AOFO")}
    for site, ab, fb, count, size in cells:
        if fb < a or ab >= b:
            continue
        key = ("AI" if ab >= a else "AO") + ("FI" if fb < b else "FO")
        classes[key][0] += count
        classes[key][1] += size
    return classes


def check_html_data(ctx, trace, page, *extra):
    run([ctx.cli, "report", "--format", "html", "-o", page, trace] + list(extra))
    data, text = html_data(page)
    check(data["schema"] == "heaptrail-html/1" and data["kind"] == "report", "document kind")
    report = data["report"]
    check(report == ctx.report_json(trace, "--top", "25", *extra), "the embedded report is "
          "report --format json's")
    summary = report["summary"]
    sites = data["sites"]
    for key, total in (("alloc_bytes", "allocated_bytes"), ("alloc_count", "allocations"),
                       ("leaked_bytes", "leaked_bytes"), ("peak_bytes", "peak_bytes")):
        check(sum(s[key] for s in sites) == summary[total], "sites' %s" % key)
    for s in sites:
        check(all(0 <= i < len(data["frames"]) for i in s["frames"]), "frame indices")
    timeline, lifetimes = data["timeline"], data["lifetimes"]
    n = timeline["bins"]
    check(1 <= n <= 1000 and len(timeline["live"]) == n and len(timeline["max"]) == n, "bins")
    check(timeline["live"][-1] == report["totals"]["live_bytes"] or extra, "live at the end")
    check(max(timeline["max"]) == report["peak"]["bytes"], "the peak in the timeline")
    for i in range(n):
        by_source = sum(v[i] for v in timeline["sources"].values())
        by_heap = sum(h["live"][i] for h in timeline["heaps"])
        check(abs(by_source - timeline["live"][i]) < 1 and abs(by_heap - timeline["live"][i]) < 1,
              "bin %d: sources and heaps sum to the live bytes" % i)
        check(timeline["max"][i] >= timeline["live"][i], "bin %d: max below live" % i)
    check(any(m["kind"] == "peak" for m in timeline["markers"]), "peak marker")
    start, width = lifetimes["start_ns"], lifetimes["bin_ns"]
    check(lifetimes["bins"] == n and width == timeline["bin_ns"], "one grid")
    pairs = [(0, n), (0, 1), (n - 1, n), (n // 3, 2 * n // 3 + 1), (n // 2, n // 2 + 1)]
    for a, b in pairs:
        mine = lifetime_classes(lifetimes["cells"], a, b)
        window = "%s..%s" % (ns(start + a * width), "" if b == n else ns(start + b * width))
        theirs = ctx.report_json(trace, "--window", window, *extra)["window"]["classes"]
        theirs = {k: [v["count"], v["bytes"]] for k, v in theirs.items()}
        check(mine == theirs, "bins [%d, %d) (%s): cells %s, report %s" % (a, b, window, mine,
                                                                          theirs))
    return data, text


def case_html(ctx):
    hostile = "</script><script>alert(1)</script>"
    trace = record_phases(ctx, hostile)
    data, _ = check_html_data(ctx, trace, ctx.path("phases.html"))
    # The data element ends at its own end (html_data split at the first "</script>").
    check(data["report"]["trace"]["command_line"].endswith(hostile), "the command line kept")
    functions = {f[0] for f in data["frames"]}
    check({"phase_one", "phase_two", "phase_three", "main"} <= functions, "frames: %s" %
          sorted(f for f in functions if f)[:20])
    one, two, three = phase_times(ctx, trace)
    m12, m23 = (one[1] + two[0]) // 2, (two[1] + three[0]) // 2
    ranged, _ = check_html_data(ctx, trace, ctx.path("range.html"), "--from", ns(m12), "--to",
                                ns(m23))
    check(ranged["timeline"]["start_ns"] == m12, "a range's timeline starts at it")
    # Blocks of phase one were allocated before the range: bin -1.
    check(any(c[1] == -1 for c in ranged["lifetimes"]["cells"]), "cells before the range")
    # The leaky program: INVALID events become markers.
    leaky = ctx.record_leaky()
    data, _ = check_html_data(ctx, leaky, ctx.path("leaky.html"))
    check(any(m["kind"] == "invalid" for m in data["timeline"]["markers"]), "INVALID markers")
    # Bad input: one line, and no page left behind.
    out = ctx.path("bad.html")
    result = run([ctx.cli, "report", "--format", "html", "-o", out, "--from", "100s", trace],
                 expect=1)
    check(len(result.stderr.decode().strip().splitlines()) == 1 and not os.path.exists(out),
          "bad range: %r" % result.stderr)
    garbage = ctx.path("garbage.trace")
    with open(garbage, "wb") as f:
        f.write(b"not a trace at all" * 10)
    result = run([ctx.cli, "report", "--format", "html", "-o", out, garbage], expect=3)
    check(len(result.stderr.decode().strip().splitlines()) == 1 and not os.path.exists(out),
          "bad trace: %r" % result.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=["report", "heaptrack", "exports", "scenarios", "errors",
                                         "symbols", "ranges", "html"])
    parser.add_argument("--cli", required=True)
    parser.add_argument("--preload")
    parser.add_argument("--leaky")
    parser.add_argument("--scenarios")
    parser.add_argument("--phases")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    ctx = Context(args)
    try:
        status = globals()["case_" + args.case](ctx)
    except Failure as failure:
        print("FAIL (%s): %s" % (args.case, failure))
        return 1
    if status == SKIP:
        return SKIP
    print("ok: %s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
