#!/usr/bin/env python3
"""Browser tests of the HTML viewer (src/analyze/html), headless Chromium through cdp.py.

    html_test.py [--heaptrail BIN] [--screenshot PNG] [--keep DIR] TEST...

Tests: `crafted` (a crafted report document: no errors, timeline and flame graphs drawn, a
mouse drag across the timeline giving the lifetime classes a reference implementation computes
from the cells, search), `edges` (no sites, no stacks, one bin, a sampled trace), `diff` (a
crafted diff document), `real` (a real program recorded with heaptrail: after a drag the page's
classes equal `heaptrail report --window`'s, its flame graph total the report's allocated bytes;
and, when heaptrail has `diff`, the page of `diff --format html` of two runs; needs --heaptrail
and `report --format html`, skipped without). Exit 77 (skipped) without chromium.

The picture in the README:
    python3 tests/html/html_test.py --heaptrail build/heaptrail --screenshot docs/report.png real
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402
import render_page  # noqa: E402

SOURCES = ["MEMORY_FROM_LOOKASIDE", "MEMORY_FROM_LOWFRAG", "MEMORY_FROM_MAINPATH",
           "MEMORY_FROM_SLOWPATH"]
CLASSES = ["AIFI", "AIFO", "AOFI", "AOFO"]


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


# ---- Reference: WPA's lifetime classes of bins [a, b), from the cells. ----

def reference_classes(cells, a, b):
    """{class: [count, bytes]}, impacting bytes, {site: impacting} by the rule of the viewer's
    documentation (the rule `report --window` applies), written independently of viewer.js."""
    classes = {c: [0, 0] for c in CLASSES}
    by_site = {}
    for site, alloc_bin, free_bin, count, size in cells:
        if free_bin < a or alloc_bin >= b:
            continue
        inside = alloc_bin >= a
        freed = free_bin < b
        name = ("AI" if inside else "AO") + ("FI" if freed else "FO")
        classes[name][0] += count
        classes[name][1] += size
        if name == "AIFO":
            by_site[site] = by_site.get(site, 0) + size
        elif name == "AOFI":
            by_site[site] = by_site.get(site, 0) - size
    return classes, classes["AIFO"][1] - classes["AOFI"][1], by_site


# ---- Crafted documents. ----

FRAMES = [
    ["main", "app.c", 10, "app", "app+0x1000"],               # 0
    ["run_phase_one", "app.c", 40, "app", "app+0x1100"],      # 1
    ["run_phase_two", "app.c", 80, "app", "app+0x1200"],      # 2
    ["make_buffer", "buffer.c", 12, "app", "app+0x2000"],     # 3
    ["parse_record", "parse.c", 7, "libparse.so", "libparse.so+0x300"],  # 4
    ["xmalloc", "util.c", 3, "app", "app+0x3000"],            # 5
    [None, None, 0, "libunknown.so", "libunknown.so+0x4f0"],  # 6
    ["_start", None, 0, "app", "app+0x500"],                  # 7
    ["cache_insert", "cache.c", 55, "app", "app+0x2400"],     # 8
]
# Innermost first, as the document has them.
SITE_FRAMES = {
    1: [5, 3, 1, 0, 7],
    2: [5, 4, 1, 0, 7],
    3: [5, 3, 2, 0, 7],
    4: [8, 2, 0, 7],
    5: [6, 4, 2, 0, 7],
    6: [],   # [no stack]
    7: [],   # allocated before tracing started
}
SITE_LABELS = {6: "[no stack]", 7: "[allocated before tracing started]"}


def stack_json(site):
    frames = []
    for index in SITE_FRAMES[site]:
        f = FRAMES[index]
        frames.append({"address": "0x%x" % (0x400000 + index * 16), "function": f[0],
                       "file": f[1], "line": f[2], "module": f[3],
                       "offset": "0x%x" % (index * 16), "inlined": False})
    innermost = FRAMES[SITE_FRAMES[site][0]] if SITE_FRAMES[site] else None
    name = SITE_LABELS.get(site) or innermost[0] or innermost[4]
    return {"site": site, "function": name, "frames": frames}


def crafted_report(bins=60, bin_ns=1000000, seed=14, sites=None, sampled=False, blocks=400):
    """A report document whose timeline, sites and cells agree with each other."""
    rng = random.Random(seed)
    site_ids = sites if sites is not None else sorted(SITE_FRAMES)
    source_of = {s: SOURCES[i % 4] for i, s in enumerate(site_ids)}
    heap_of = {s: "0x7f0000%04x" % (0x1000 * (i % 2 + 1)) for i, s in enumerate(site_ids)}
    cells = {}
    for _ in range(blocks if site_ids else 0):
        site = rng.choice(site_ids)
        alloc_bin = 0 if site == 7 else rng.randrange(bins)
        free_bin = rng.choice([bins, rng.randrange(alloc_bin, bins + 1)])
        size = rng.choice([16, 48, 100, 512, 4096, 65536]) * (3 if site == 3 else 1)
        count = 1.37 if sampled else 1
        weight = count if sampled else 1
        key = (site, alloc_bin, free_bin)
        cell = cells.setdefault(key, [site, alloc_bin, free_bin, 0, 0])
        cell[3] += count
        cell[4] += size * weight
    cell_list = sorted(cells.values())
    if sampled:
        for cell in cell_list:
            cell[3] = round(cell[3], 3)
            cell[4] = round(cell[4])
    live = [0] * bins
    heaps = {}
    by_source = {s: [0] * bins for s in SOURCES + ["before tracing"]}
    for site, ab, fb, count, size in cell_list:
        for i in range(ab, min(fb, bins)):
            live[i] += size
            source = "before tracing" if site == 7 else source_of[site]
            by_source[source][i] += size
            heaps.setdefault(heap_of[site], [0] * bins)[i] += size
    peak_bin = max(range(bins), key=lambda i: live[i])
    peak_ns = peak_bin * bin_ns
    maxes = [v + (v // 10 if i == peak_bin else v // 50) for i, v in enumerate(live)]
    site_rows = []
    for site in site_ids:
        mine = [c for c in cell_list if c[0] == site]
        row = {"site": site, "frames": SITE_FRAMES[site],
               "alloc_bytes": sum(c[4] for c in mine), "alloc_count": sum(c[3] for c in mine),
               "leaked_bytes": sum(c[4] for c in mine if c[2] == bins),
               "leaked_count": sum(c[3] for c in mine if c[2] == bins),
               "peak_bytes": sum(c[4] for c in mine if c[1] <= peak_bin < c[2]),
               "peak_count": sum(c[3] for c in mine if c[1] <= peak_bin < c[2])}
        if site in SITE_LABELS:
            row["label"] = SITE_LABELS[site]
        site_rows.append(row)
    allocated = sum(r["alloc_bytes"] for r in site_rows)
    leaked_bytes = sum(r["leaked_bytes"] for r in site_rows)
    leaked = [dict(stack_json(r["site"]), bytes=r["leaked_bytes"], count=r["leaked_count"])
              for r in site_rows if r["leaked_bytes"]]
    top = [dict(stack_json(r["site"]), bytes=r["alloc_bytes"], count=r["alloc_count"])
           for r in site_rows]
    heap_rows = [{"heap": h, "created_ns": 0, "destroyed_ns": None, "rundown": False,
                  "peak_bytes": max(v), "bytes_at_peak": v[peak_bin], "live_bytes": v[-1],
                  "live_blocks": 1, "max_committed": 1 << 20,
                  "allocations": {s: {"count": 10 * (i + 1), "bytes": 1000 * (i + 1)}
                                  for i, s in enumerate(SOURCES)},
                  "frees": {s: {"count": 5, "bytes": 500} for s in SOURCES},
                  "invalid": {"ALLOC": 0, "FREE": 1, "REALLOC": 0}}
                 for h, v in sorted(heaps.items())]
    trace = {"path": "/tmp/crafted.trace", "program": "/usr/bin/crafted",
             "command_line": "crafted --phases 2", "pid": 4242,
             "duration_ns": bins * bin_ns - bin_ns // 3, "mode": "block", "stack_depth": 32,
             "sample_interval": 4096 if sampled else 0, "complete": True, "truncated": False,
             "events": 1000, "threads": 2, "heaps": len(heaps), "stacks": len(site_ids),
             "sites": len(site_ids),
             "warnings": ["a crafted warning </script> with markup <b>x</b>"]}
    invalid_event = {"time_ns": 3 * bin_ns // 2, "thread": 7, "event": "FREE",
                     "kind": "double free", "heap": "0x7f0000001000", "address": "0x5555000010",
                     "size": None, "site": site_ids[0] if site_ids else 0}
    invalid_groups = [dict(stack_json(site_ids[0]), kind="double free", count=1,
                           requested_bytes=0)] if site_ids else []
    lost_record = {"thread": 7, "count": 3, "first_ns": bin_ns * 2, "last_ns": bin_ns * 2 + 50,
                   "reason": "BUFFER_FULL"}
    report = {
        "schema": "heaptrail-report/1",
        "trace": trace,
        "totals": {"events": 1000, "lost": 3, "live_bytes": live[-1], "peak_bytes": max(live),
                   "peak_ns": peak_ns},
        "summary": {"allocations": sum(r["alloc_count"] for r in site_rows),
                    "allocated_bytes": allocated, "peak_bytes": max(live), "peak_time_ns": peak_ns,
                    "leaked_bytes": leaked_bytes, "invalid_events": 1, "lost_events": 3},
        "leaks": {"bytes": leaked_bytes, "blocks": sum(r["leaked_count"] for r in site_rows),
                  "stack_count": len(leaked), "stacks": leaked},
        "peak": {"bytes": max(live), "blocks": 3, "time_ns": peak_ns, "stacks": []},
        "top_by_bytes": sorted(top, key=lambda s: -s["bytes"]),
        "top_by_count": sorted(top, key=lambda s: -s["count"]),
        "temporary": {"definition": "freed by the next heap operation of the same thread",
                      "threshold_ns": 0, "count": 2, "bytes": 64, "stacks": top[:1]},
        "histogram": [{"min": 16, "max": 31, "count": 40, "bytes": 800},
                      {"min": 4096, "max": 8191, "count": 3, "bytes": 12288}],
        "sources": {"heaps": heap_rows,
                    "stacks": [dict(t, allocations={s: {"count": 1, "bytes": t["bytes"] // 4}
                                                    for s in SOURCES}) for t in top]},
        "invalid": {"count": 1, "groups": invalid_groups, "events": [invalid_event],
                    "events_omitted": 0},
        "lost": {"count": 3, "by_reason": {"BUFFER_FULL": 3}, "records": [lost_record],
                 "records_omitted": 0},
        "window": None,
    }
    markers = [{"kind": "peak", "time_ns": peak_ns + bin_ns // 2, "label": "peak"},
               {"kind": "invalid", "time_ns": 3 * bin_ns // 2, "label": "double free"},
               {"kind": "lost", "time_ns": 2 * bin_ns, "label": "3 lost (BUFFER_FULL)"},
               {"kind": "heap_create", "time_ns": 0, "label": "heap 0x7f0000001000"}]
    return {
        "schema": "heaptrail-html/1", "kind": "report", "report": report, "frames": FRAMES,
        "sites": site_rows,
        "timeline": {"bin_ns": bin_ns, "bins": bins, "live": live, "max": maxes,
                     "heaps": [{"heap": h, "live": v} for h, v in sorted(heaps.items())],
                     "sources": by_source, "markers": markers},
        "lifetimes": {"bin_ns": bin_ns, "bins": bins, "cells": cell_list},
    }


DIFF_METRICS = ["allocated_bytes", "allocations", "leaked_bytes", "leaked_blocks", "peak_bytes",
                "peak_blocks"]


def crafted_diff():
    def site(function, status, callers, *pairs):
        names = [function] + callers
        row = {"function": function, "status": status,
               "frames": [{"function": n, "file": n + ".c", "line": 1 + len(n), "module": "app"}
                          for n in names]}
        for metric, (base, new) in zip(DIFF_METRICS, pairs):
            row[metric] = {"base": base, "new": new, "delta": new - base}
        return row
    sites = [
        site("grow_cache", "both", ["serve", "main"],
             (1000, 50000), (10, 500), (0, 4096), (0, 1), (1000, 20000), (1, 20)),
        site("old_parser", "base_only", ["load", "main"],
             (30000, 0), (300, 0), (0, 0), (0, 0), (3000, 0), (3, 0)),
        site("new_parser", "new_only", ["load", "main"],
             (0, 12000), (0, 120), (0, 0), (0, 0), (0, 1200), (0, 2)),
        site("steady", "both", ["serve", "main"],
             (7000, 7000), (70, 70), (0, 0), (0, 0), (700, 700), (1, 1)),
    ]
    totals = {}
    for k in DIFF_METRICS:
        base, new = sum(s[k]["base"] for s in sites), sum(s[k]["new"] for s in sites)
        totals[k] = {"base": base, "new": new, "delta": new - base}
    trace = {"path": "/tmp/base.trace", "program": "/usr/bin/app", "events": 1000,
             "sample_interval": 0, "duration_ns": 5 * 10**8}
    return {"schema": "heaptrail-html/1", "kind": "diff",
            "diff": {"schema": "heaptrail-diff/1", "base": trace,
                     "new": dict(trace, path="/tmp/new.trace"), "estimates": False,
                     "totals": totals, "sites": sites}}


# ---- Page helpers. ----

def open_page(browser, path):
    browser.open("file://" + os.path.abspath(path))
    ready = browser.evaluate("document.body.getAttribute('data-ready')")
    browser.pump(0.3)
    check(ready == "1", "the page did not finish building: %s" % browser.errors)
    check(not browser.errors, "errors on the page: %s" % browser.errors)
    url = "file://" + os.path.abspath(path)
    fetched = [r for r in browser.requests if r != url]
    check(not fetched, "the page fetched %s" % fetched)


def page_classes(browser):
    return browser.evaluate("""(() => {
        const out = {range: [document.getElementById('range').dataset.beginNs,
                             document.getElementById('range').dataset.endNs],
                     impacting: Number(document.getElementById('impacting').dataset.value),
                     classes: {}};
        for (const cell of document.querySelectorAll('#lifetime [data-class]')) {
            out.classes[cell.dataset.class] = out.classes[cell.dataset.class] || [0, 0];
            const field = cell.dataset.field === 'count' ? 0 : 1;
            out.classes[cell.dataset.class][field] = Number(cell.dataset.value);
        }
        return out;
    })()""")


def timeline_box(browser):
    """The timeline canvas's plot area in page coordinates (the viewer's layout: 70 px left,
    12 right)."""
    browser.evaluate("document.getElementById('timeline').scrollIntoView({block: 'center'})")
    rect = browser.evaluate("(() => { const r = document.getElementById('timeline')"
                            ".getBoundingClientRect();"
                            " return [r.left, r.top, r.width, r.height]; })()")
    return rect[0] + 70, rect[1], rect[2] - 82, rect[3]


def drag_bins(browser, bins, first, last):
    """Drags across the timeline from the middle of bin first to the middle of bin last (whole
    pixels: the browser rounds the events' coordinates; a bin is at least a pixel wide)."""
    left, top, width, height = timeline_box(browser)
    x0 = round(left + (first + 0.5) * width / bins)
    x1 = round(left + (last + 0.5) * width / bins)
    browser.drag(x0, round(top + height / 2), x1, round(top + height / 2))


def canvas_drawn(browser):
    """The number of non-transparent pixels of the timeline canvas."""
    return browser.evaluate("""(() => {
        const c = document.getElementById('timeline');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
        return n;
    })()""")


def count_of(browser, selector):
    return browser.evaluate("document.querySelectorAll(%s).length" % json.dumps(selector))


def flame_boxes(browser, container):
    return browser.evaluate("document.querySelectorAll('#%s .flame .box').length" % container)


def set_value(browser, selector, value, event):
    browser.evaluate("(() => { const e = document.querySelector(%s); e.value = %s;"
                     " e.dispatchEvent(new Event(%s)); })()"
                     % (json.dumps(selector), json.dumps(value), json.dumps(event)))


def check_classes(browser, cells, bin_ns, a, b, where, start=0):
    got = page_classes(browser)
    check(got["range"] == [str(start + a * bin_ns), str(start + b * bin_ns)],
          "%s: #range is %s, expected bins [%d, %d)" % (where, got["range"], a, b))
    classes, impacting, _ = reference_classes(cells, a, b)
    for name in CLASSES:
        expected = [round(classes[name][0]), round(classes[name][1])]
        check(got["classes"].get(name) == expected, "%s: %s is %s on the page, %s by the reference"
              % (where, name, got["classes"].get(name), expected))
    check(got["impacting"] == round(impacting),
          "%s: impacting %s, expected %s" % (where, got["impacting"], impacting))
    return got


# ---- Tests. ----

def test_crafted(args, browser, work):
    doc = crafted_report()
    page = os.path.join(work, "crafted.html")
    render_page.render_document(doc, page)
    open_page(browser, page)
    check(canvas_drawn(browser) > 1000, "the timeline is blank")
    lt = doc["lifetimes"]
    bins, bin_ns, cells = lt["bins"], lt["bin_ns"], lt["cells"]
    check_classes(browser, cells, bin_ns, 0, bins, "whole trace")
    # The four flame graph views.
    for view in ["alloc_bytes", "alloc_count", "leaked_bytes", "peak_bytes"]:
        set_value(browser, "#flame-view", view, "change")
        count = flame_boxes(browser, "flame")
        check(count >= 3, "view %s: %d boxes" % (view, count))
        total = browser.evaluate("Number(document.querySelector('#flame .flame').dataset.total)")
        expected = sum(s[view] for s in doc["sites"])
        check(abs(total - expected) < 1e-6,
              "view %s: total %s, expected %s" % (view, total, expected))
    set_value(browser, "#flame-view", "alloc_bytes", "change")
    # The other mode of the timeline still draws.
    browser.evaluate("document.getElementById('mode-heaps').click()")
    check(canvas_drawn(browser) > 500, "the per-heap timeline is blank")
    browser.evaluate("document.getElementById('mode-sources').click()")
    # Drags with real mouse events, both directions, and the classes after each.
    for first, last in [(10, 29), (45, 20), (0, 0), (bins - 5, bins - 1)]:
        drag_bins(browser, bins, first, last)
        a, b = min(first, last), max(first, last) + 1
        if (a, b) == (0, 1):
            # A click without movement keeps the range: drag to a neighbour instead.
            drag_bins(browser, bins, 0, 1)
            b = 2
        check_classes(browser, cells, bin_ns, a, b, "drag %d..%d" % (first, last))
        check(flame_boxes(browser, "range-flame") >= 1 or not any(a <= c[1] < b for c in cells),
              "no range flame graph after drag %d..%d" % (first, last))
    browser.evaluate("document.getElementById('range-live').click()")
    check(not browser.errors, "errors: %s" % browser.errors)
    # A marker's tooltip: the peak's glyph above the plot.
    peak = [m for m in doc["timeline"]["markers"] if m["kind"] == "peak"][0]
    left, top, width, height = timeline_box(browser)
    peak_x = round(left + width * peak["time_ns"] / (bins * bin_ns))
    browser.mouse("mouseMoved", peak_x, round(top + 11))
    tip = browser.evaluate("document.getElementById('tooltip').textContent")
    check(tip.startswith("peak at "), "the peak marker's tooltip: %r" % tip)
    # Double-click resets the range.
    left, top, width, height = timeline_box(browser)
    browser.click(left + width / 2, top + height / 2, count=2)
    check_classes(browser, cells, bin_ns, 0, bins, "after a double-click")
    # Search: boxes of the function matched, none other.
    set_value(browser, "#search", "parse_rec", "input")
    result = browser.evaluate("""(() => {
        const boxes = [...document.querySelectorAll('#flame .flame .box')];
        return {match: boxes.filter(b => b.classList.contains('match')).map(b => b.dataset.name),
                status: document.querySelector('#flame .flame-status').textContent};
    })()""")
    check(result["match"] and all(n == "parse_record" for n in result["match"]),
          "search matched %s" % result["match"])
    matched = sum(s["alloc_bytes"] for s in doc["sites"] if 4 in s["frames"])
    share = matched / doc["report"]["summary"]["allocated_bytes"]
    check(("%.1f%% of allocated bytes match" % (100 * share)) in result["status"],
          "search status: %s" % result["status"])
    # Zoom into a box and out again.
    browser.evaluate("document.querySelector('#flame .flame .box.match').click()")
    zoomed = browser.evaluate("document.querySelector('#flame .flame-status').textContent")
    browser.evaluate("document.querySelector('#flame .flame .box.root').click()")
    check(count_of(browser, "#flame .flame .box.ancestor") == 0, "zoom out failed")
    set_value(browser, "#search", "", "input")
    check(count_of(browser, "#flame .match") == 0, "an empty search still matches")
    # Hover over a box and the timeline: tooltips and no errors.
    rect = browser.evaluate("(() => {"
                            " const b = document.querySelector('#flame .flame .box:not(.root)');"
                            " b.scrollIntoView({block: 'center'});"
                            " const r = b.getBoundingClientRect(); return [r.left + 3, r.top + 5];"
                            " })()")
    browser.mouse("mouseMoved", rect[0], rect[1])
    check(not browser.evaluate("document.getElementById('tooltip').hidden"),
          "no tooltip over a flame box")
    browser.pump(0.2)
    check(not browser.errors, "errors: %s (zoomed: %s)" % (browser.errors, zoomed))
    check(all(r.startswith("file://") and r.endswith("crafted.html") for r in browser.requests),
          "the page fetched %s" % browser.requests)
    # The escaped data: the warning text with "</script>" shows as text.
    check("</script>" in browser.evaluate("document.body.textContent"),
          "the data's </ did not survive")


def from_to(doc, start_bins=7):
    """The document of a report made with --from/--to: bins start at start_ns, blocks allocated
    before the range have the allocation bin -1."""
    lt, timeline = doc["lifetimes"], doc["timeline"]
    start = start_bins * lt["bin_ns"]
    lt["start_ns"] = timeline["start_ns"] = start
    for cell in lt["cells"]:
        if cell[1] < 3:
            cell[1] = -1
    doc["report"]["trace"]["range"] = {"from_ns": start, "to_ns": start + lt["bins"] * lt["bin_ns"]}
    for marker in timeline["markers"]:
        marker["time_ns"] += start
    return doc


def test_edges(args, browser, work):
    cases = {
        "no-sites": crafted_report(sites=[], bins=10),
        "no-stacks": crafted_report(sites=[6, 7], bins=30),
        "one-bin": crafted_report(bins=1, blocks=20),
        "sampled": crafted_report(sampled=True, bins=1000, bin_ns=1234, blocks=3000),
        "from-to": from_to(crafted_report(bins=40)),
    }
    for name, doc in sorted(cases.items()):
        page = os.path.join(work, name + ".html")
        render_page.render_document(doc, page)
        open_page(browser, page)
        check(canvas_drawn(browser) > 100, "%s: the timeline is blank" % name)
        lt = doc["lifetimes"]
        start = lt.get("start_ns", 0)
        check_classes(browser, lt["cells"], lt["bin_ns"], 0, lt["bins"], name, start)
        if lt["bins"] > 3:
            drag_bins(browser, lt["bins"], 1, lt["bins"] // 2)
            check_classes(browser, lt["cells"], lt["bin_ns"], 1, lt["bins"] // 2 + 1,
                          name + " after a drag", start)
        if doc["sites"]:
            check(flame_boxes(browser, "flame") >= 2, "%s: no flame graph" % name)
        browser.pump(0.2)
        check(not browser.errors, "%s: errors %s" % (name, browser.errors))
    # No timeline at all still gives a page.
    doc = crafted_report(bins=5)
    del doc["timeline"], doc["lifetimes"]
    page = os.path.join(work, "no-timeline.html")
    render_page.render_document(doc, page)
    open_page(browser, page)


def test_diff(args, browser, work):
    doc = crafted_diff()
    page = os.path.join(work, "diff.html")
    render_page.render_document(doc, page)
    open_page(browser, page)
    rows = browser.evaluate("[...document.querySelectorAll('#diff-table tbody tr')]"
                            ".map(r => r.textContent)")
    check(len(rows) == 4, "diff table rows: %s" % rows)
    check(rows[0].startswith("grow_cache"), "not sorted by |delta|: %s" % rows)
    check(any("gone" in r for r in rows) and any("new" in r for r in rows),
          "statuses missing: %s" % rows)
    check(flame_boxes(browser, "diff-flame") >= 5, "no differential flame graph")
    colors = browser.evaluate("Object.fromEntries("
                              "[...document.querySelectorAll('#diff-flame .box')]"
                              ".map(b => [b.dataset.name, getComputedStyle(b).backgroundColor]))")
    red = lambda c: int(c[4:].split(",")[0]) > int(c.split(",")[2].strip(" )"))  # noqa: E731
    check(red(colors["grow_cache"]) and not red(colors["old_parser"]), "diff colors: %s" % colors)
    total = browser.evaluate("Number(document.querySelector('#diff-flame .flame').dataset.total)")
    check(total == 50000 + 30000 + 12000 + 7000, "diff flame total %s" % total)
    for metric in ["allocations", "leaked_bytes", "peak_bytes"]:
        set_value(browser, "#diff-metric", metric, "change")
        check(flame_boxes(browser, "diff-flame") >= 2, "no diff flame graph for %s" % metric)
    set_value(browser, "#search", "parser", "input")
    matched = browser.evaluate("[...document.querySelectorAll('#diff-flame .box.match')]"
                               ".map(b => b.dataset.name)")
    check(sorted(matched) == ["new_parser", "old_parser"], "diff search matched %s" % matched)
    browser.pump(0.2)
    check(not browser.errors, "errors: %s" % browser.errors)


DIFF_PROGRAM = r"""
import sys
grow = int(sys.argv[1])
keep = [bytearray(2048) for _ in range(200 * grow)]
scratch = [bytes(300 + i % 7) for i in range(1000)]
"""


def diff_real(args, browser, work):
    """`heaptrail diff --format html` of two runs of one program, one allocating more."""
    traces = []
    for grow in (1, 3):
        trace = os.path.join(work, "diff%d.trace" % grow)
        heaptrail(args, "record", "--stacks", "-o", trace, "--", sys.executable, "-c",
                  DIFF_PROGRAM, str(grow))
        traces.append(trace)
    page = os.path.join(work, "diff-real.html")
    heaptrail(args, "diff", "--format", "html", "-o", page, *traces)
    diff = json.loads(heaptrail(args, "diff", "--format", "json", *traces))
    open_page(browser, page)
    rows = browser.evaluate("document.querySelectorAll('#diff-table tbody tr').length")
    shown = [x for x in diff["sites"]
             if any(x["allocated_bytes"][k] for k in ("base", "new", "delta"))]
    check(rows == min(500, len(shown)), "diff table: %d rows, %d sites" % (rows, len(shown)))
    total = browser.evaluate("Number(document.querySelector('#diff-flame .flame').dataset.total)")
    widths = sum(x["allocated_bytes"]["base" if x["status"] == "base_only" else "new"]
                 for x in diff["sites"])
    check(total == widths, "diff flame graph total %s, expected %s" % (total, widths))
    check(flame_boxes(browser, "diff-flame") >= 5, "no differential flame graph of real traces")
    check(not browser.errors, "errors: %s" % browser.errors)


def has_command(args, command):
    usage = subprocess.run([args.heaptrail, command, "--help"], capture_output=True, text=True,
                           timeout=60)
    return usage.returncode == 0 and "Usage" in usage.stdout + usage.stderr


PROGRAM = r"""
import time
keep = []
for phase in range(3):
    scratch = [bytearray(4096 + phase * 512) for _ in range(600)]
    keep.append([bytes(100 + i % 50) for i in range(300 * (phase + 1))])
    time.sleep(0.15)
    del scratch
    time.sleep(0.1)
"""


def heaptrail(args, *argv):
    result = subprocess.run([args.heaptrail] + list(argv), capture_output=True, text=True,
                            timeout=300)
    check(result.returncode == 0,
          "heaptrail %s: exit %d: %s" % (" ".join(argv), result.returncode, result.stderr))
    return result.stdout


def extract_document(page):
    """The JSON document inside a page written by `report --format html`."""
    with open(page, encoding="utf-8") as f:
        text = f.read()
    start = text.index('<script id="heaptrail-data" type="application/json">') + len(
        '<script id="heaptrail-data" type="application/json">')
    end = text.index("</script>", start)
    return json.loads(text[start:end])


def drags_match_window(args, browser, trace, doc, drags):
    """Drags across the page's timeline; after each, the page's lifetime classes and impacting
    sizes by site equal those of `heaptrail report --window` for the range #range shows."""
    lt = doc["lifetimes"]
    bins, start = lt["bins"], lt.get("start_ns", 0)
    for first, last in drags:
        drag_bins(browser, bins, first, last)
        got = page_classes(browser)
        begin, end = int(got["range"][0]), int(got["range"][1])
        a, b = min(first, last), max(first, last) + 1
        check((begin, end) == (start + a * lt["bin_ns"], start + b * lt["bin_ns"]),
              "drag %d..%d gave %s" % (first, last, got["range"]))
        window = "%dns.." % begin + ("" if b == bins else "%dns" % end)
        expected = json.loads(heaptrail(args, "report", "--format", "json", "--top", "1000000",
                                        "--window", window, trace))["window"]
        for name in CLASSES:
            want = [expected["classes"][name]["count"], expected["classes"][name]["bytes"]]
            check(got["classes"][name] == want,
                  "window %s: %s is %s on the page, %s by report --window"
                  % (window, name, got["classes"][name], want))
        check(got["impacting"] == expected["impacting_bytes"],
              "window %s: impacting %s on the page, %s by report"
              % (window, got["impacting"], expected["impacting_bytes"]))
        page_sites = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#impacting-sites [data-site]')]"
            ".map(c => [c.dataset.site, Number(c.dataset.value)]))")
        report_sites = {str(s["site"]): s["impacting_bytes"] for s in expected["stacks"]}
        moved = [x for x in expected["stacks"] if x["AIFO"]["bytes"] or x["AOFI"]["bytes"]]
        check(page_sites or not moved, "window %s: no site in the table of impacting sizes, "
              "report --window has %d" % (window, len(moved)))
        for site in page_sites:
            check(report_sites.get(site) == page_sites[site],
                  "window %s: site %s impacting %s, report %s"
                  % (window, site, page_sites[site], report_sites.get(site)))


def test_real(args, browser, work):
    check(args.heaptrail, "the real test needs --heaptrail")
    usage = subprocess.run([args.heaptrail, "report", "--help"], capture_output=True, text=True,
                           timeout=60)
    if "html" not in usage.stdout + usage.stderr:
        raise Skip("this heaptrail has no `report --format html`")
    trace = os.path.join(work, "real.trace")
    heaptrail(args, "record", "--stacks", "-o", trace, "--", sys.executable, "-c", PROGRAM)
    page = os.path.join(work, "real.html")
    heaptrail(args, "report", "--format", "html", "-o", page, trace)
    report = json.loads(heaptrail(args, "report", "--format", "json", "--top", "50", trace))
    doc = extract_document(page)
    open_page(browser, page)
    check(canvas_drawn(browser) > 1000, "the timeline is blank")
    total = browser.evaluate("Number(document.querySelector('#flame .flame').dataset.total)")
    check(total == report["summary"]["allocated_bytes"],
          "flame graph total %s, report's allocated bytes %s"
          % (total, report["summary"]["allocated_bytes"]))
    check(flame_boxes(browser, "flame") >= 10, "the flame graph has few boxes")
    bins = doc["lifetimes"]["bins"]
    drags_match_window(args, browser, trace, doc,
                       [(bins // 5, bins // 2), (bins // 3, bins - 1), (bins // 2, bins // 4)])
    # A report of the second half (--from): its bins start there, blocks from before it are AO.
    half = report["trace"]["duration_ns"] // 2
    page_from = os.path.join(work, "real-from.html")
    heaptrail(args, "report", "--format", "html", "--from", "%dns" % half, "-o", page_from, trace)
    doc_from = extract_document(page_from)
    check(doc_from["lifetimes"].get("start_ns") == half,
          "--from: the bins start at %s" % doc_from["lifetimes"].get("start_ns"))
    open_page(browser, page_from)
    bins_from = doc_from["lifetimes"]["bins"]
    drags_match_window(args, browser, trace, doc_from,
                       [(bins_from // 6, bins_from // 3), (0, bins_from // 2)])
    browser.pump(0.2)
    check(not browser.errors, "errors: %s" % browser.errors)
    if has_command(args, "diff"):
        diff_real(args, browser, work)
    if args.screenshot:
        # The picture of the README: a phase chosen on the timeline, from the timeline down.
        open_page(browser, page)
        drag_bins(browser, bins, bins // 4, bins // 2)
        browser.evaluate("document.getElementById('timeline-section').scrollIntoView()")
        browser.screenshot(args.screenshot)
        print("html_test: wrote %s" % args.screenshot)


TESTS = {"crafted": test_crafted, "edges": test_edges, "diff": test_diff, "real": test_real}


def main():
    parser = argparse.ArgumentParser(description="Browser tests of heaptrail's HTML viewer.")
    parser.add_argument("tests", nargs="+", choices=sorted(TESTS))
    parser.add_argument("--heaptrail", help="the heaptrail binary (for the real test)")
    parser.add_argument("--screenshot", help="write a 1280x900 PNG of a real report page here")
    parser.add_argument("--keep", help="keep the pages and traces in this directory")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for any browser step")
    args = parser.parse_args()
    chromium = cdp.find_chromium()
    if not chromium:
        print("html_test: skipped: chromium is not installed (scripts/deps.sh installs it)")
        return 77
    work = args.keep or tempfile.mkdtemp(prefix="heaptrail-html-")
    os.makedirs(work, exist_ok=True)
    failed = skipped = 0
    try:
        for name in args.tests:
            with cdp.Browser(chromium, timeout=args.timeout) as browser:
                try:
                    TESTS[name](args, browser, work)
                    print("html_test: %s: ok" % name)
                except Skip as reason:
                    print("html_test: %s: skipped: %s" % (name, reason))
                    skipped += 1
                except (Failure, cdp.CdpError) as error:
                    print("html_test: %s: FAILED: %s" % (name, error))
                    failed += 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        return 1
    return 77 if skipped == len(args.tests) else 0


if __name__ == "__main__":
    sys.exit(main())
