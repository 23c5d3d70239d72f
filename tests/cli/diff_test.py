#!/usr/bin/env python3
"""diff_test.py — `heaptrail diff` against two builds of one program with known answers
(diff_target.c built with GROWTH=1 as BASE and GROWTH=4 as NEW, both named diff_target, recorded
with --stacks): the grown site matched across the builds although its addresses differ, exact
before/after/delta figures, new_only and base_only sites, the totals, the order by largest
change, folded pairs that add up to the totals, the HTML page's document, a trace against itself
(all deltas 0), a sampled recording compared by estimates, and one clear line and a non-zero exit
for a missing, a damaged or a stackless trace.
Usage: the arguments of cli_test.py (whose helpers this uses), then one test name.
Exit status: 0 pass, 1 fail."""
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_test  # noqa: E402
from cli_test import Failure, base_env, check, heaptrail, run, scratch  # noqa: E402

# diff_target.c's constants: per function, (count, size) in the BASE build (GROWTH=1); NEW
# (GROWTH=4) has four times the count of the first four.
GROW = (10, 1000)
STEADY = (5, 300)
LEAK = (2, 700)
PEAK = (3, 100000)
GONE = (6, 200)
FRESH = (3, 5000)
GROWTH = 4

QUANTITIES = ("allocated_bytes", "allocations", "leaked_bytes", "leaked_blocks", "peak_bytes",
              "peak_blocks")


def record(work, name, program, *options):
    path = os.path.join(work, name)
    run([cli_test.ARGS.heaptrail, "record", "-q", "-o", path] + list(options) +
        ["--", cli_test.ARGS.bin[program]], env=base_env(work), cwd=work, check_code=0)
    return path


def diff_json(base, new, *options):
    p = heaptrail("diff", "--format", "json", *options, base, new, check_code=0)
    check(p.stderr == b"", "diff wrote on stderr: %r" % p.stderr)
    return json.loads(p.stdout.decode())


def site(document, function):
    found = [s for s in document["sites"] if s["function"] == function]
    check(len(found) == 1, "%d sites named %s: %s" % (len(found), function,
                                                       [s["function"] for s in document["sites"]]))
    return found[0]


def expect(document, function, status, **figures):
    """figures: quantity=(base, new); the delta must be their difference."""
    s = site(document, function)
    check(s["status"] == status, "%s: status %s, expected %s" % (function, s["status"], status))
    check(s["frames"] and s["frames"][0]["function"] == function,
          "%s: innermost frame %r" % (function, s["frames"][:1]))
    check(s["frames"][0]["module"] == "diff_target" and
          s["frames"][0]["file"].endswith("diff_target.c") and s["frames"][0]["line"] > 0,
          "%s: frame not symbolized: %r" % (function, s["frames"][0]))
    for quantity in QUANTITIES:
        base, new = figures.get(quantity, (0, 0))
        got = s[quantity]
        check(got == {"base": base, "new": new, "delta": new - base},
              "%s %s: %r, expected base %d new %d" % (function, quantity, got, base, new))


def frame_offset(trace, function):
    """The module offset of function's frame in trace's report (to see that the builds differ)."""
    p = heaptrail("report", "--format", "json", "--top", "100", trace, check_code=0)
    for stack in json.loads(p.stdout.decode())["top_by_bytes"]:
        for frame in stack["frames"]:
            if frame["function"] == function:
                return frame["offset"]
    raise Failure("no frame of %s in %s's report" % (function, trace))


def folded_sums(base, new, metric):
    p = heaptrail("diff", "--format", "folded", "--metric", metric, base, new, check_code=0)
    before = after = 0
    lines = p.stdout.decode().splitlines()
    for line in lines:
        m = re.fullmatch(r"(\S[^ ]*(?: [^ ]+)*) (\d+) (\d+)", line)
        check(m, "folded line %r is not 'stack BEFORE AFTER'" % line)
        check(not m.group(1).startswith(";") and ";;" not in m.group(1), "empty frame: %r" % line)
        before += int(m.group(2))
        after += int(m.group(3))
    return lines, before, after


def test_builds():
    work = scratch()
    try:
        base = record(work, "base.trace", "diff_base", "--stacks")
        new = record(work, "new.trace", "diff_new", "--stacks")
        check(frame_offset(base, "grow_buffers") != frame_offset(new, "grow_buffers"),
              "the two builds put grow_buffers at the same offset: the test proves nothing")

        d = diff_json(base, new)
        check(d["schema"] == "heaptrail-diff/1", "schema %r" % d.get("schema"))
        check(d["estimates"] is False, "estimates for unsampled traces")
        for key, path, program in (("base", base, "diff_growth_1"), ("new", new, "diff_growth_4")):
            t = d[key]
            check(t["path"] == path and t["program"].endswith(program + "/diff_target") and
                  t["events"] > 0 and t["sample_interval"] == 0 and t["duration_ns"] > 0,
                  "%s: %r" % (key, t))

        def n(pair, scale=1):
            return pair[0] * scale

        def b(pair, scale=1):
            return pair[0] * pair[1] * scale

        expect(d, "grow_buffers", "both", allocated_bytes=(b(GROW), b(GROW, GROWTH)),
               allocations=(n(GROW), n(GROW, GROWTH)))
        expect(d, "steady", "both", allocated_bytes=(b(STEADY), b(STEADY)),
               allocations=(n(STEADY), n(STEADY)))
        expect(d, "leak_more", "both", allocated_bytes=(b(LEAK), b(LEAK, GROWTH)),
               allocations=(n(LEAK), n(LEAK, GROWTH)), leaked_bytes=(b(LEAK), b(LEAK, GROWTH)),
               leaked_blocks=(n(LEAK), n(LEAK, GROWTH)), peak_bytes=(b(LEAK), b(LEAK, GROWTH)),
               peak_blocks=(n(LEAK), n(LEAK, GROWTH)))
        expect(d, "hold_peak", "both", allocated_bytes=(b(PEAK), b(PEAK, GROWTH)),
               allocations=(n(PEAK), n(PEAK, GROWTH)), peak_bytes=(b(PEAK), b(PEAK, GROWTH)),
               peak_blocks=(n(PEAK), n(PEAK, GROWTH)))
        expect(d, "only_in_new", "new_only", allocated_bytes=(0, b(FRESH)),
               allocations=(0, n(FRESH)))
        expect(d, "only_in_base", "base_only", allocated_bytes=(b(GONE), 0),
               allocations=(n(GONE), 0))

        # Totals: the program's own numbers (it allocates nothing else), and the sites' sums.
        totals = d["totals"]
        known = {
            "allocated_bytes": (b(GROW) + b(STEADY) + b(LEAK) + b(PEAK) + b(GONE),
                                b(GROW, GROWTH) + b(STEADY) + b(LEAK, GROWTH) + b(PEAK, GROWTH) +
                                b(FRESH)),
            "allocations": (n(GROW) + n(STEADY) + n(LEAK) + n(PEAK) + n(GONE),
                            n(GROW, GROWTH) + n(STEADY) + n(LEAK, GROWTH) + n(PEAK, GROWTH) +
                            n(FRESH)),
            "leaked_bytes": (b(LEAK), b(LEAK, GROWTH)),
            "leaked_blocks": (n(LEAK), n(LEAK, GROWTH)),
            "peak_bytes": (b(LEAK) + b(PEAK), b(LEAK, GROWTH) + b(PEAK, GROWTH)),
            "peak_blocks": (n(LEAK) + n(PEAK), n(LEAK, GROWTH) + n(PEAK, GROWTH)),
        }
        for quantity in QUANTITIES:
            base_total, new_total = known[quantity]
            check(totals[quantity] == {"base": base_total, "new": new_total,
                                       "delta": new_total - base_total},
                  "totals %s: %r, expected %d -> %d" % (quantity, totals[quantity], base_total,
                                                        new_total))
            for side in ("base", "new"):
                summed = sum(s[quantity][side] for s in d["sites"])
                check(summed == totals[quantity][side], "%s %s: sites add up to %d, total %d" % (
                    side, quantity, summed, totals[quantity][side]))

        # Sorted by the largest change of allocated, leaked or peak bytes.
        def change(s):
            return max(abs(s[q]["delta"]) for q in ("allocated_bytes", "leaked_bytes",
                                                     "peak_bytes"))
        changes = [change(s) for s in d["sites"]]
        check(changes == sorted(changes, reverse=True), "sites not by largest change: %s" % [
            (s["function"], change(s)) for s in d["sites"]])
        order = [s["function"] for s in d["sites"]]
        check(order == ["hold_peak", "grow_buffers", "only_in_new", "leak_more", "only_in_base",
                        "steady"], "order: %s" % order)

        # Folded pairs add up to the totals, for each metric.
        for metric, quantity in (("allocated", "allocated_bytes"), ("count", "allocations"),
                                 ("leaked", "leaked_bytes"), ("peak", "peak_bytes")):
            lines, before, after = folded_sums(base, new, metric)
            check((before, after) == (totals[quantity]["base"], totals[quantity]["new"]),
                  "folded --metric %s adds up to %d -> %d, totals %r" % (metric, before, after,
                                                                        totals[quantity]))
        lines, _, _ = folded_sums(base, new, "allocated")
        grown = [line for line in lines if line.split(" ")[0].endswith(";main;grow_buffers")]
        check(grown == ["%s %d %d" % (grown[0].split(" ")[0], b(GROW), b(GROW, GROWTH))] if grown
              else False, "folded: grow_buffers line %r in %r" % (grown, lines))
        check(lines == sorted(lines), "folded lines not sorted")

        # Text: the header, the totals, the grown function with its figures, new and gone.
        text = heaptrail("diff", base, new, check_code=0).stdout.decode()
        for pattern in (r"^heaptrail diff\n", r"\n  BASE  %s: " % re.escape(base),
                        r"\n  NEW   %s: " % re.escape(new), r"\nTOTALS\n",
                        r"\n  allocations +26 -> 68 +\+42 \(\+161\.5%\)\n",
                        r"\n  #2  grow_buffers at \S*diff_target\.c:\d+\n",
                        r"allocated  9\.77 KiB -> 39\.06 KiB \(\+29\.30 KiB, \+300\.0%\), "
                        r"10 -> 40 allocations \(\+30\)",
                        r"only_in_new at \S+:\d+  \[new\]", r"only_in_base at \S+:\d+  \[gone\]",
                        r"\nSITES: 4 in both, 1 new, 1 gone; by largest change\n"):
            check(re.search(pattern, text), "text output lacks %r:\n%s" % (pattern, text))
        check("estimates" not in text, "unsampled traces called estimates")
        text = heaptrail("diff", "--top", "2", base, new, check_code=0).stdout.decode()
        check("#2 " in text and "#3 " not in text and "the first 2" in text,
              "--top 2:\n%s" % text)

        # A range that covers both traces changes no figure, and the text names it.
        ranged = diff_json(base, new, "--from", "0", "--to", "1h")
        check(ranged["totals"] == d["totals"] and ranged["sites"] == d["sites"],
              "--from 0 --to 1h changed the comparison")
        text = heaptrail("diff", "--from", "0", "--to", "1h", base, new,
                         check_code=0).stdout.decode()
        check("\n  range 0 ns .. 3600.000 s, in both traces: every figure covers it;" in text,
              "no range line:\n%s" % text)

        # HTML: the viewer page with the same comparison as its document.
        page = os.path.join(work, "diff.html")
        heaptrail("diff", "--format", "html", "-o", page, base, new, check_code=0)
        html = open(page, encoding="utf-8").read()
        m = re.search(r'<script id="heaptrail-data" type="application/json">(.*?)</script>', html,
                      re.S)
        check(html.startswith("<!DOCTYPE html>") and m, "no data in the page: %r" % html[:300])
        document = json.loads(m.group(1).replace("<\\/", "</"))
        check(document.get("schema") == "heaptrail-html/1" and document.get("kind") == "diff",
              "page document: %r" % {k: document.get(k) for k in ("schema", "kind")})
        check(document.get("diff") == d, "the page's diff differs from --format json's")

        # -o writes the file; the same trace twice changes nothing.
        out = os.path.join(work, "out.json")
        p = heaptrail("diff", "-f", "json", "-o", out, base, base, check_code=0)
        check(p.stdout == b"" and p.stderr == b"", "diff -o wrote elsewhere: %r" % p.stdout)
        same = json.load(open(out))
        check(len(same["sites"]) == 5, "self-diff sites: %d" % len(same["sites"]))
        for s in same["sites"] + [same["totals"]]:
            for quantity in QUANTITIES:
                check(s[quantity]["delta"] == 0 and s[quantity]["base"] == s[quantity]["new"],
                      "self-diff %s %s: %r" % (s.get("function", "totals"), quantity,
                                               s[quantity]))
        check(all(s["status"] == "both" for s in same["sites"]), "self-diff statuses")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_sampled():
    work = scratch()
    try:
        base = record(work, "sampled.trace", "diff_base", "--stacks", "--sample", "4096")
        new = record(work, "new.trace", "diff_new", "--stacks")
        text = heaptrail("diff", base, new, check_code=0).stdout.decode()
        check(re.search(r"\n  estimates: BASE sampled every 4\.00 KiB on average; NEW not "
                        r"sampled; the figures are estimates\n", text),
              "no estimates line:\n%s" % text)
        check("\nTOTALS (estimates)\n" in text, "totals not marked as estimates")
        d = diff_json(base, new)
        check(d["estimates"] is True and d["base"]["sample_interval"] == 4096 and
              d["new"]["sample_interval"] == 0, "json: %r" % {k: d[k] for k in ("base", "new",
                                                                                 "estimates")})
        # The 100 kB blocks are always sampled, with weight about 1: the peak site matches.
        s = site(d, "hold_peak")
        check(s["status"] == "both" and abs(s["allocations"]["base"] - PEAK[0]) <= 1,
              "sampled hold_peak: %r" % s)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def one_line_error(args, code, pattern):
    p = heaptrail("diff", *args)
    err = p.stderr.decode()
    check(p.returncode == code, "diff %s: exit %d, expected %d; stderr %r" % (
        " ".join(args), p.returncode, code, err))
    check(err.count("\n") == 1 and re.fullmatch(pattern + r"\n", err),
          "diff %s: stderr %r is not one line matching %r" % (" ".join(args), err, pattern))
    check(p.stdout == b"", "diff %s wrote output: %r" % (" ".join(args), p.stdout[:200]))


def test_errors():
    work = scratch()
    try:
        base = record(work, "base.trace", "diff_base", "--stacks")
        new = record(work, "new.trace", "diff_new", "--stacks")
        bare = record(work, "bare.trace", "diff_new")
        missing = os.path.join(work, "missing.trace")
        one_line_error([base, missing], 2, r"heaptrail: diff: NEW: cannot open '%s': No such file "
                       r"or directory" % re.escape(missing))
        one_line_error([missing, new], 2, r"heaptrail: diff: BASE: cannot open .*")
        garbage = os.path.join(work, "garbage.trace")
        with open(base, "rb") as f:
            data = f.read()
        with open(garbage, "wb") as f:
            f.write(b"\x5a" * len(data))
        one_line_error([garbage, new], 3, r"heaptrail: diff: BASE: '%s' is not a readable "
                       r"heaptrail trace: .*" % re.escape(garbage))
        # Damage past the header: found while the events stream.
        damaged = os.path.join(work, "damaged.trace")
        with open(new, "rb") as f:
            data = bytearray(f.read())
        middle = len(data) // 2
        data[middle:middle + 64] = b"\xff" * 64
        with open(damaged, "wb") as f:
            f.write(data)
        one_line_error([base, damaged], 3, r"heaptrail: diff: NEW: '%s'.*" % re.escape(damaged))
        one_line_error([base, bare], 1, r"heaptrail: diff: cannot match sites: BASE has stacks, "
                       r"NEW has none; record both with --stacks")
        one_line_error([bare, new], 1, r"heaptrail: diff: cannot match sites: NEW has stacks, "
                       r"BASE has none; record both with --stacks")
        # Usage errors add the --help hint, as every command's do.
        for args, pattern in (([base], r"expected two trace files, BASE and NEW"),
                              ([base, new, base], r"expected two trace files \('.*' is extra\)"),
                              (["--format", "xml", base, new], r"bad value 'xml' for --format"),
                              (["--metric", "bytes_freed", base, new],
                               r"bad value 'bytes_freed' for --metric"),
                              (["--top", "0", base, new], r"bad value '0' for --top"),
                              (["--from", "2s", "--to", "1s", base, new],
                               r"bad range: --from must be before --to"),
                              (["--to", "soon", base, new], r"bad value 'soon' for --to")):
            p = heaptrail("diff", *args)
            check(p.returncode == 1 and re.search(pattern, p.stderr.decode()) and
                  "Try 'heaptrail diff --help'" in p.stderr.decode(),
                  "diff %s: exit %d, %r" % (args, p.returncode, p.stderr))
        check(not os.path.exists(os.path.join(work, "unwritten.txt")), "stray output")
        p = heaptrail("diff", "-o", os.path.join(work, "no", "dir", "x.txt"), base, new)
        check(p.returncode == 2 and "cannot write to" in p.stderr.decode(),
              "unwritable output: %d %r" % (p.returncode, p.stderr))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_help():
    out = heaptrail("diff", "--help", check_code=0).stdout.decode()
    check(out.startswith("Usage: heaptrail diff [OPTIONS] BASE NEW\n"), "usage: %r" % out[:80])
    check(heaptrail("help", "diff", check_code=0).stdout.decode() == out, "help diff differs")
    overview = heaptrail("--help", check_code=0).stdout.decode()
    check(re.search(r"\n  diff +\S", overview), "heaptrail --help does not list diff")
    readme = open(os.path.join(cli_test.ARGS.source, "README.md")).read()
    section = readme.split("### Comparing two traces: heaptrail diff", 1)
    check(len(section) == 2, "README.md has no section on heaptrail diff")
    section = section[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    # The options are those in the first column of the option lines (the descriptions may
    # name other commands' options).
    options = set()
    for line in out.splitlines():
        if line.startswith("  -"):
            options.update(re.findall(r"(--[a-z][a-z-]+)", line.strip().split("  ")[0]))
    check({"--format", "--top", "--metric", "--from", "--to", "--output"} <= options,
          "diff --help lists %s" % sorted(options))
    for option in sorted(options):
        check(option in section, "README does not document diff %s" % option)
    for value in ("text", "json", "folded", "html", "allocated", "count", "leaked", "peak"):
        check(value in out and value in section, "%s: not in --help or README" % value)


TESTS = {name[5:]: function for name, function in globals().items()
         if name.startswith("test_") and callable(function)}


if __name__ == "__main__":
    sys.exit(cli_test.main(TESTS))
