/* viewer.js — the page of `heaptrail report --format html` and `heaptrail diff --format html`.
 * Reads the JSON document inlined in #heaptrail-data ("kind": "report" or "diff") and builds
 * the page from it: plain DOM, one canvas for the timeline, flame graphs made of positioned
 * boxes. Nothing is fetched: the page works opened from disk. The numbers shown are the
 * document's; the only ones computed here are the WPA lifetime classes of a chosen range of
 * time bins, from the lifetime cells, by the rule `report --window` applies. */
"use strict";

(function() {

/* ---- Constants: the Source colors (fixed; the legend shows them) and the heap palette. ---- */

var SOURCES = [
  "MEMORY_FROM_LOOKASIDE", "MEMORY_FROM_LOWFRAG", "MEMORY_FROM_MAINPATH", "MEMORY_FROM_SLOWPATH",
  "before tracing"
];
var SOURCE_COLORS = {
  MEMORY_FROM_LOOKASIDE: "#4e79a7", /* blue: the per-size lookaside lists */
  MEMORY_FROM_LOWFRAG: "#59a14f",   /* green: the low-fragmentation heap */
  MEMORY_FROM_MAINPATH: "#f28e2b",  /* orange: the back end's free lists */
  MEMORY_FROM_SLOWPATH: "#e15759",  /* red: new segments, large blocks */
  "before tracing": "#bab0ac"       /* grey: blocks that predate the trace */
};
var HEAP_COLORS = [
  "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"
];
var MARKER_STYLE = {
  peak: {color: "#d62728", glyph: "\u25bc", name: "peak"},
  invalid: {color: "#8e24aa", glyph: "\u2716", name: "INVALID"},
  lost: {color: "#ef6c00", glyph: "!", name: "lost events"},
  heap_create: {color: "#2e7d32", glyph: "\u25b2", name: "heap created"},
  heap_destroy: {color: "#546e7a", glyph: "\u25a0", name: "heap destroyed"}
};
var CLASSES = ["AIFI", "AIFO", "AOFI", "AOFO"];

/* ---- Formatting: binary units for bytes, s/ms/us for times, thousands separators. ---- */

function num(value) {
  if (value === null || value === undefined) return "";
  return Math.round(value).toLocaleString("en-US");
}
function bytes(value) {
  if (value === null || value === undefined) return "";
  var sign = value < 0 ? "-" : "";
  var v = Math.abs(value);
  var units = ["B", "KiB", "MiB", "GiB", "TiB"];
  var i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return sign + Math.round(v) + " B";
  return sign + v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) + " " + units[i];
}
function signedBytes(value) {
  return (value > 0 ? "+" : "") + bytes(value);
}
function signedNum(value) {
  return (value > 0 ? "+" : "") + num(value);
}
function duration(ns) {
  if (ns === null || ns === undefined) return "";
  var a = Math.abs(ns);
  if (a >= 1e9) return (ns / 1e9).toFixed(a >= 1e11 ? 0 : 3) + " s";
  if (a >= 1e6) return (ns / 1e6).toFixed(3) + " ms";
  if (a >= 1e3) return (ns / 1e3).toFixed(3) + " us";
  return Math.round(ns) + " ns";
}
function percent(part, whole) {
  if (!whole) return "0%";
  return (100 * part / whole).toFixed(1) + "%";
}
/* A value as the summary shows it: bytes and times by the key's name. */
function byKey(key, value) {
  if (typeof value !== "number") return value === null || value === undefined ? "" : String(value);
  if (/bytes|committed/.test(key))
    return bytes(value) + (value >= 1024 ? " (" + num(value) + ")" : "");
  if (/_ns$|_time_ns$/.test(key)) return duration(value);
  return num(value);
}

/* A JSON key as a label: words, without the unit suffix the value's format shows. */
function keyLabel(key) {
  return key.replace(/_ns$/, "").replace(/_/g, " ");
}

/* ---- DOM helpers. ---- */

/* el("td", {class: "num", "data-value": 3}, "text", child...): attributes, then children
 * (strings become text nodes; null and undefined are skipped). */
function el(tag, attrs) {
  var node = document.createElement(tag);
  if (attrs) {
    for (var name in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, name) || attrs[name] === undefined ||
          attrs[name] === null)
        continue;
      if (name === "class")
        node.className = attrs[name];
      else if (name === "text")
        node.textContent = attrs[name];
      else if (name.slice(0, 2) === "on")
        node.addEventListener(name.slice(2), attrs[name]);
      else
        node.setAttribute(name, attrs[name]);
    }
  }
  for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
  return node;
}
function append(node, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    child.forEach(function(c) {
      append(node, c);
    });
    return;
  }
  node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
}
function section(title, id) {
  var s = el("section", {id: id});
  s.appendChild(el("h2", {text: title}));
  document.getElementById("app").appendChild(s);
  return s;
}
/* A table from column specs {title, num, cell(row) -> node or text}. */
function table(columns, rows, attrs) {
  var head = el("tr", null, columns.map(function(c) {
    return el("th", {class: c.num ? "num" : null, text: c.title});
  }));
  var body = el("tbody");
  rows.forEach(function(row) {
    body.appendChild(
        el("tr", row && row._class ? {class: row._class} : null, columns.map(function(c) {
          var value = c.cell(row);
          return value instanceof Node && value.tagName === "TD" ?
              value :
              el("td",
                 {class: c.num ? "num" :
                      c.fn     ? "fn" :
                                 null},
                 value);
        })));
  });
  return el("table", attrs || null, el("thead", null, head), body);
}
function kvBlock(pairs, extraClass) {
  return el("div", {class: "kv" + (extraClass ? " " + extraClass : "")}, pairs.map(function(p) {
    return el(
        "div", null, el("span", {class: "key", text: p[0]}),
        el("span", {class: "value", text: p[1]}));
  }));
}

/* ---- Tooltip: one floating box shared by the timeline and the flame graphs. ---- */

var tooltip = null;
function showTooltip(text, event) {
  if (!tooltip) tooltip = document.getElementById("tooltip");
  tooltip.textContent = text;
  tooltip.hidden = false;
  var x = event.clientX + 14, y = event.clientY + 14;
  var w = tooltip.offsetWidth, h = tooltip.offsetHeight;
  if (x + w > window.innerWidth - 4) x = Math.max(4, event.clientX - w - 10);
  if (y + h > window.innerHeight - 4) y = Math.max(4, event.clientY - h - 10);
  tooltip.style.left = x + "px";
  tooltip.style.top = y + "px";
}
function hideTooltip() {
  if (!tooltip) tooltip = document.getElementById("tooltip");
  tooltip.hidden = true;
}

/* ---- Frames and stacks: the report's frame table rows and the JSON report's STACK frames. ---- */

/* A frame as {function, file, line, module, label}, from a frame table row
 * [function, file, line, module, label] or a report/diff frame object. */
function frameFromRow(row) {
  return {function: row[0], file: row[1], line: row[2] || 0, module: row[3], label: row[4]};
}
function frameFromObject(f) {
  var label = f.label;
  if (!label) label = f.module ? f.module + (f.offset ? "+" + f.offset : "") : (f.address || "?");
  return {function: f.function, file: f.file, line: f.line || 0, module: f.module, label: label};
}
function frameName(f) {
  return f.function || f.label || "?";
}
function frameWhere(f) {
  var where = f.file ? f.file + (f.line ? ":" + f.line : "") : "";
  return where;
}
/* Equal frames merge in a flame graph: same function, file, line and module (or, for an
 * unsymbolized frame, the same label). */
function frameKey(f) {
  return f.function ? f.function + "\u0001" + (f.file || "") + "\u0001" + (f.line || 0) + "\u0001" +
          (f.module || "") :
                      "\u0002" + (f.label || "?");
}
/* An expandable stack (innermost first, as the report lists it). */
function stackDetails(title, frames) {
  if (!frames || !frames.length) return el("span", null, title);
  var list = el("div", {class: "stack mono"}, frames.map(function(f) {
    var where = frameWhere(f);
    return el(
        "div", null, frameName(f), where ? el("span", {class: "muted", text: "  " + where}) : null,
        f.module ? el("span", {class: "muted", text: "  [" + f.module + "]"}) : null);
  }));
  /* The first caller (past inlined frames of the same function) tells apart sites that share
   * their allocating function. */
  var caller = null;
  for (var i = 1; i < frames.length && !caller; i++) {
    if (frameName(frames[i]) !== frameName(frames[0]))
      caller = el("span", {class: "muted", text: " \u2190 " + frameName(frames[i])});
  }
  return el("details", null, el("summary", null, title, caller), list);
}

/* ---- Flame graph (icicle): roots on top, callees below, width = value. ----
 * Input: items {frames: [frame, innermost first], value, base, new}; a special site has no
 * frames and a label, drawn as one box. The tree merges equal frames under the same parent.
 * Clicking a box zooms to it (its ancestors stay above it, full width); clicking the root or
 * an ancestor zooms out. Boxes narrower than a pixel are not drawn, so thousands of sites
 * stay fast. The search marks boxes (class "match") whose function, file or module contains
 * the text, and reports the share of the total they hold (nested matches counted once). */

function buildTree(items, rootName) {
  var root = newNode(rootName, null, null);
  for (var i = 0; i < items.length; i++) {
    var item = items[i];
    if (!item.value && !item.base && !item.new) continue;
    var frames = item.frames && item.frames.length ?
        item.frames :
        [{function: null, file: null, line: 0, module: null, label: item.label || "[no stack]"}];
    var node = root;
    addValues(node, item);
    /* Outermost (the last frame) first. */
    for (var j = frames.length - 1; j >= 0; j--) {
      var f = frames[j];
      /* Frame objects of the report's frame table are shared: their key is computed once. */
      var key = f.key || (f.key = frameKey(f));
      var child = node.byKey.get(key);
      if (!child) {
        child = newNode(frameName(f), f, node);
        node.byKey.set(key, child);
        node.children.push(child);
      }
      addValues(child, item);
      node = child;
    }
  }
  sortTree(root);
  return root;
}
function newNode(name, frame, parent) {
  return {
    name: name,
    frame: frame,
    value: 0,
    base: 0,
    new: 0,
    children: [],
    byKey: new Map(),
    parent: parent,
    depth: parent ? parent.depth + 1 : 0
  };
}
function addValues(node, item) {
  node.value += item.value || 0;
  node.base += item.base || 0;
  node.new += item.new || 0;
}
function sortTree(node) {
  node.children.sort(function(a, b) {
    return b.value - a.value || (a.name < b.name ? -1 : 1);
  });
  node.children.forEach(sortTree);
}

/* options: {unit: "bytes"|"count", what: "allocated bytes", color(node) -> css color,
 *           describe(node) -> extra tooltip lines}. Returns {setData(items), search(text)}. */
function FlameGraph(container, options) {
  var self = this;
  this.container = container;
  this.options = options;
  this.status = el("div", {class: "flame-status"});
  this.graph = el("div", {class: "flame"});
  container.appendChild(el("div", {class: "flame-scroll"}, this.graph));
  container.appendChild(this.status);
  this.root = null;
  this.focus = null;
  this.query = "";
  this.graph.addEventListener("mouseleave", hideTooltip);
  var resizeTimer = null;
  window.addEventListener("resize", function() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function() {
      self.render();
    }, 100);
  });
}
FlameGraph.prototype.setData = function(items, rootName) {
  this.root = buildTree(items, rootName || "all");
  this.focus = this.root;
  this.render();
};
FlameGraph.prototype.search = function(text) {
  this.query = (text || "").toLowerCase();
  this.render();
};
FlameGraph.prototype.format = function(value) {
  return this.options.unit === "count" ? num(value) : bytes(value);
};
FlameGraph.prototype.matches = function(node) {
  if (!this.query || !node.frame) return false;
  var f = node.frame, q = this.query;
  return [f.function, f.file, f.module, f.label].some(function(s) {
    return s && String(s).toLowerCase().indexOf(q) >= 0;
  });
};
FlameGraph.prototype.render = function() {
  var self = this, graph = this.graph;
  graph.textContent = "";
  if (!this.root) return;
  graph.setAttribute("data-total", String(this.root.value));
  if (!this.root.value) {
    graph.style.height = "";
    graph.appendChild(el("div", {class: "flame-empty", text: "Nothing to show."}));
    this.status.textContent = "";
    return;
  }
  var width = graph.clientWidth || 1000;
  var rowHeight = 18;
  var focus = this.focus;
  /* Ancestors of the focus (the root first) take the full width. */
  var chain = [];
  for (var n = focus; n; n = n.parent) chain.unshift(n);
  var maxDepth = 0;
  var fragment = document.createDocumentFragment();
  chain.forEach(function(node, i) {
    fragment.appendChild(self.box(node, 0, 100, i * rowHeight, node === focus ? "" : " ancestor"));
    maxDepth = i;
  });
  var top = (chain.length - 1) * rowHeight;
  var scale = focus.value ? 100 / focus.value : 0;
  var minPercent = 100 / width; /* a box under a pixel is not drawn */
  function walk(node, left, row) {
    var x = left;
    node.children.forEach(function(child) {
      var w = child.value * scale;
      if (w >= minPercent) {
        fragment.appendChild(self.box(child, x, w, top + row * rowHeight, ""));
        if (row > maxDepth - chain.length + 1) maxDepth = row + chain.length - 1;
        walk(child, x, row + 1);
      }
      x += w;
    });
  }
  walk(focus, 0, 1);
  graph.appendChild(fragment);
  graph.style.height = ((maxDepth + 1) * rowHeight + 2) + "px";
  this.updateStatus();
};
FlameGraph.prototype.box = function(node, left, width, top, extra) {
  var self = this;
  var matched = this.matches(node);
  var classes = "box" + (node.parent ? "" : " root") + extra + (matched ? " match" : "");
  var box =
      el("div",
         {class: classes, title: null, "data-value": String(node.value), "data-name": node.name});
  box.style.left = left + "%";
  box.style.width = width + "%";
  box.style.top = top + "px";
  if (node.parent) box.style.background = this.options.color(node, this.root);
  box.textContent = node.name;
  box.addEventListener("click", function() {
    self.focus = node === self.focus && node.parent ? node.parent : node;
    hideTooltip();
    self.render();
  });
  box.addEventListener("mousemove", function(event) {
    showTooltip(self.describe(node), event);
  });
  return box;
};
FlameGraph.prototype.describe = function(node) {
  var lines = [node.name];
  if (node.frame) {
    var where = frameWhere(node.frame);
    if (where) lines.push(where);
    if (node.frame.module) lines.push("module: " + node.frame.module);
    if (node.frame.label && node.frame.label !== node.name) lines.push(node.frame.label);
  }
  if (this.options.describe)
    lines = lines.concat(this.options.describe(node, this.root));
  else
    lines.push(
        this.options.what + ": " + this.format(node.value) + " (" +
        percent(node.value, this.root.value) + " of all" +
        (this.focus !== this.root ?
             ", " + percent(node.value, this.focus.value) + " of the zoomed box" :
             "") +
        ")");
  return lines.join("\n");
};
/* The share of matching boxes: a match below a match is counted once, with its ancestor. */
FlameGraph.prototype.updateStatus = function() {
  if (!this.query) {
    this.status.textContent = this.focus !== this.root ? "Zoomed into " + this.focus.name + ": " +
            this.format(this.focus.value) + " (click the top box to zoom out)" :
                                                         "Total " + this.options.what + ": " +
            this.format(this.root.value) + ". Click a box to zoom.";
    return;
  }
  var self = this, matched = 0;
  (function walk(node) {
    if (node.parent && self.matches(node)) {
      matched += node.value;
      return;
    }
    node.children.forEach(walk);
  })(this.root);
  this.status.textContent = percent(matched, this.root.value) + " of " + this.options.what +
      " match" +
      " \u201c" + this.query + "\u201d (" + this.format(matched) + ")";
  this.status.setAttribute("data-matched", String(matched));
};

/* Warm colors by the hash of the function name, like classic flame graphs, so a function
 * keeps its color across views. */
function warmColor(node) {
  var name = node.name || "";
  var hash = 0;
  for (var i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) | 0;
  var h = 15 + Math.abs(hash) % 35;
  var l = 58 + Math.abs(hash >> 8) % 14;
  return "hsl(" + h + ", 85%, " + l + "%)";
}
/* A search box wired to flame graphs. */
function searchBox(graphs, id) {
  var input = el("input", {type: "search", id: id, placeholder: "search function, file, module"});
  input.addEventListener("input", function() {
    graphs.forEach(function(g) {
      g.search(input.value);
    });
  });
  return el("label", null, "Search ", input);
}

/* ---- Report page: header and summary. ---- */

function renderHeader(report) {
  var trace = report.trace || {};
  var name = trace.program ? trace.program.split("/").pop() : "trace";
  document.title = "heaptrail: " + name + (trace.pid ? " (pid " + trace.pid + ")" : "");
  var app = document.getElementById("app");
  app.appendChild(el("h1", null, "heaptrail report: " + name));
  var sampled = trace.sample_interval ?
      "yes, every " + bytes(trace.sample_interval) + " on average (figures are estimates)" :
      "no";
  var pairs = [
    ["program", trace.program || ""], ["command line", trace.command_line || ""],
    ["pid", trace.pid === undefined ? "" : String(trace.pid)], ["trace", trace.path || ""],
    ["duration", duration(trace.duration_ns)], ["mode", trace.mode || ""], ["sampled", sampled],
    ["events", num(trace.events)],
    [
      "threads / heaps / sites",
      num(trace.threads) + " / " + num(trace.heaps) + " / " + num(trace.sites)
    ]
  ];
  if (trace.complete === false || trace.truncated)
    pairs.push(["state", trace.truncated ? "truncated" : "incomplete"]);
  var range = report.range || trace.range;
  if (range)
    pairs.push([
      "range (--from/--to)",
      duration(range.from_ns || 0) + " .. " +
          (range.to_ns === null || range.to_ns === undefined ? "end" : duration(range.to_ns))
    ]);
  app.appendChild(kvBlock(pairs, "header-kv"));
  (trace.warnings || []).forEach(function(w) {
    app.appendChild(el("div", {class: "warning", text: "\u26a0 " + w}));
  });
  var s = section("Summary", "summary");
  var summary = report.summary || {};
  s.appendChild(kvBlock(Object.keys(summary).map(function(k) {
    return [keyLabel(k), byKey(k, summary[k])];
  })));
  var totals = report.totals || {};
  s.appendChild(
      el("details", null, el("summary", {text: "bottom line (as heaptrail stats gives it)"}),
         kvBlock(Object.keys(totals).map(function(k) {
           return [keyLabel(k), byKey(k, totals[k])];
         }))));
}

/* ---- Report page: the timeline (canvas), its markers and the brush. ----
 * Bins of bin_ns each; a value is the live bytes at the end of its bin, drawn as a step. The
 * brush selects whole bins: [first, last + 1). onRange(a, b) is called with the new range. */

function Timeline(container, timeline, onRange) {
  var self = this;
  this.t = timeline;
  this.start = timeline.start_ns || 0;
  this.mode = "sources";
  this.range = null; /* [a, b) bins, or null for the whole trace */
  this.drag = null;
  this.onRange = onRange;
  this.canvas = el("canvas", {id: "timeline"});
  var modeSources = el("button", {class: "active", id: "mode-sources", text: "stacked by Source"});
  var modeHeaps = el("button", {id: "mode-heaps", text: "lines per heap"});
  function setMode(mode) {
    self.mode = mode;
    modeSources.className = mode === "sources" ? "active" : "";
    modeHeaps.className = mode === "heaps" ? "active" : "";
    self.legend();
    self.draw();
  }
  modeSources.addEventListener("click", function() {
    setMode("sources");
  });
  modeHeaps.addEventListener("click", function() {
    setMode("heaps");
  });
  var reset = el("button", {id: "range-reset", text: "Reset range"});
  reset.addEventListener("click", function() {
    self.setRange(null);
  });
  container.appendChild(
      el("div", {class: "controls"}, el("label", {text: "Live bytes:"}), modeSources, modeHeaps,
         reset, el("span", {
           class: "muted",
           text: "Drag across the timeline to choose a range; double-click to reset."
         })));
  this.legendBox = el("div", {class: "legend"});
  container.appendChild(this.legendBox);
  container.appendChild(el("div", {class: "timeline-wrap"}, this.canvas));
  this.legend();
  this.canvas.addEventListener("mousedown", function(e) {
    self.mouseDown(e);
  });
  window.addEventListener("mousemove", function(e) {
    self.mouseMove(e);
  });
  window.addEventListener("mouseup", function(e) {
    self.mouseUp(e);
  });
  this.canvas.addEventListener("mouseleave", function() {
    if (!self.drag) hideTooltip();
  });
  this.canvas.addEventListener("dblclick", function() {
    self.setRange(null);
  });
  var timer = null;
  window.addEventListener("resize", function() {
    clearTimeout(timer);
    timer = setTimeout(function() {
      self.draw();
    }, 50);
  });
  if (window.matchMedia) {
    /* A zoom changes devicePixelRatio without always resizing the canvas' CSS box. */
    var watchRatio = function() {
      var query = window.matchMedia("(resolution: " + window.devicePixelRatio + "dppx)");
      var handler = function() {
        query.removeEventListener("change", handler);
        self.draw();
        watchRatio();
      };
      if (query.addEventListener) query.addEventListener("change", handler);
    };
    watchRatio();
  }
}
Timeline.prototype.series = function() {
  var t = this.t;
  if (this.mode === "sources") {
    var sources = t.sources || {};
    return SOURCES
        .filter(function(s) {
          return sources[s] && sources[s].some(function(v) {
            return v > 0;
          });
        })
        .map(function(s) {
          return {name: s, color: SOURCE_COLORS[s], values: sources[s]};
        });
  }
  return (t.heaps || []).map(function(h, i) {
    return {name: "heap " + h.heap, color: HEAP_COLORS[i % HEAP_COLORS.length], values: h.live};
  });
};
Timeline.prototype.legend = function() {
  var box = this.legendBox;
  box.textContent = "";
  var series = this.series();
  if (this.mode === "sources") {
    /* Every Source is listed, drawn or not, so the colors are always documented. */
    series = SOURCES.map(function(s) {
      return {name: s, color: SOURCE_COLORS[s]};
    });
  }
  series.forEach(function(s) {
    box.appendChild(
        el("span", null, el("span", {class: "swatch", style: "background:" + s.color}),
           s.name.replace("MEMORY_FROM_", "")));
  });
  if (this.mode === "heaps")
    box.appendChild(
        el("span", null, el("span", {class: "swatch", style: "background:#333"}),
           "all heaps (dashed)"));
  Object.keys(MARKER_STYLE).forEach(function(k) {
    var m = MARKER_STYLE[k];
    box.appendChild(
        el("span", null,
           el("span", {style: "color:" + m.color + ";margin-right:4px", text: m.glyph}), m.name));
  });
};
Timeline.prototype.layout = function() {
  var rect = this.canvas.getBoundingClientRect();
  return {
    width: rect.width,
    height: rect.height,
    left: 70,
    right: rect.width - 12,
    top: 20,
    bottom: rect.height - 26
  };
};
/* The largest value drawn, for the y axis. */
Timeline.prototype.yMax = function() {
  var t = this.t, top = 0, i;
  for (i = 0; i < t.bins; i++)
    top = Math.max(top, (t.max && t.max[i]) || 0, (t.live && t.live[i]) || 0);
  if (this.mode === "sources") {
    var series = this.series();
    for (i = 0; i < t.bins; i++) {
      var sum = 0;
      series.forEach(function(s) {
        sum += s.values[i] || 0;
      });
      top = Math.max(top, sum);
    }
  }
  return top || 1;
};
function niceStep(range, ticks, binary) {
  var raw = range / ticks;
  var base = binary ? Math.pow(2, Math.floor(Math.log2(raw) / 10) * 10) :
                      Math.pow(10, Math.floor(Math.log10(raw)));
  if (binary) {
    var r = raw / base, step = 1;
    while (step < r) step *= 2;
    return step * base;
  }
  var candidates = [1, 2, 5, 10];
  for (var i = 0; i < candidates.length; i++)
    if (candidates[i] * base >= raw) return candidates[i] * base;
  return 10 * base;
}
Timeline.prototype.draw = function() {
  var canvas = this.canvas, t = this.t;
  var ratio = window.devicePixelRatio || 1;
  var L = this.layout();
  if (L.width <= 0) return;
  canvas.width = Math.round(L.width * ratio);
  canvas.height = Math.round(L.height * ratio);
  var ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, L.width, L.height);
  var n = t.bins, binWidth = (L.right - L.left) / n;
  var yMax = this.yMax();
  var yStep = niceStep(yMax, 5, true);
  yMax = Math.ceil(yMax / yStep) * yStep;
  var x = function(bin) {
    return L.left + bin * binWidth;
  };
  var y = function(v) {
    return L.bottom - (v / yMax) * (L.bottom - L.top);
  };
  this.scale = {x: x, binWidth: binWidth, L: L};
  /* Axes and grid. */
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#5f6b76";
  ctx.strokeStyle = "#e4e8ec";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (var v = 0; v <= yMax + yStep / 2; v += yStep) {
    var yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(L.left, yy);
    ctx.lineTo(L.right, yy);
    ctx.stroke();
    ctx.fillText(bytes(v), L.left - 6, yy);
  }
  /* Times are from the trace start; the bins start at the report's range (start_ns). */
  var start = this.start, total = n * t.bin_ns;
  var tStep = niceStep(total, Math.max(2, Math.floor((L.right - L.left) / 110)), false);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (var tt = Math.ceil(start / tStep) * tStep; tt <= start + total + 1e-9; tt += tStep) {
    var xx = Math.round(L.left + ((tt - start) / total) * (L.right - L.left)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(xx, L.top);
    ctx.lineTo(xx, L.bottom + 4);
    ctx.stroke();
    ctx.fillText(tickTime(tt, tStep, start + total), xx, L.bottom + 6);
  }
  /* The series. */
  var series = this.series();
  if (this.mode === "sources") {
    var base = new Array(n).fill(0);
    series.forEach(function(s) {
      ctx.beginPath();
      ctx.moveTo(x(0), y(base[0]));
      var i, top = [];
      for (i = 0; i < n; i++) top[i] = base[i] + (s.values[i] || 0);
      for (i = 0; i < n; i++) {
        ctx.lineTo(x(i), y(top[i]));
        ctx.lineTo(x(i + 1), y(top[i]));
      }
      for (i = n - 1; i >= 0; i--) {
        ctx.lineTo(x(i + 1), y(base[i]));
        ctx.lineTo(x(i), y(base[i]));
      }
      ctx.closePath();
      ctx.fillStyle = s.color;
      ctx.globalAlpha = 0.85;
      ctx.fill();
      ctx.globalAlpha = 1;
      base = top;
    });
  } else {
    var step = function(values, color, dash) {
      ctx.beginPath();
      ctx.setLineDash(dash || []);
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.moveTo(x(0), y(values[0] || 0));
      for (var i = 0; i < n; i++) {
        ctx.lineTo(x(i), y(values[i] || 0));
        ctx.lineTo(x(i + 1), y(values[i] || 0));
      }
      ctx.stroke();
      ctx.setLineDash([]);
    };
    series.forEach(function(s) {
      step(s.values, s.color);
    });
    if (t.live) step(t.live, "#333", [4, 3]);
  }
  /* The most live bytes inside each bin, as a thin line over the series. */
  if (t.max) {
    ctx.beginPath();
    ctx.strokeStyle = "rgba(0,0,0,0.35)";
    ctx.lineWidth = 1;
    for (var i = 0; i < n; i++) {
      if (i === 0) ctx.moveTo(x(0), y(t.max[0] || 0));
      ctx.lineTo(x(i), y(t.max[i] || 0));
      ctx.lineTo(x(i + 1), y(t.max[i] || 0));
    }
    ctx.stroke();
  }
  ctx.strokeStyle = "#8a949e";
  ctx.beginPath();
  ctx.moveTo(L.left + 0.5, L.top);
  ctx.lineTo(L.left + 0.5, L.bottom + 0.5);
  ctx.lineTo(L.right, L.bottom + 0.5);
  ctx.stroke();
  /* Markers: glyphs above the plot, positioned by time. */
  this.markerSpots = [];
  var self = this;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.font = "12px system-ui, sans-serif";
  (t.markers || []).forEach(function(m) {
    var style = MARKER_STYLE[m.kind] || {color: "#333", glyph: "\u25cf", name: m.kind};
    if (m.time_ns < start || m.time_ns > start + total) return;
    var mx = L.left + ((m.time_ns - start) / total) * (L.right - L.left);
    ctx.fillStyle = style.color;
    ctx.fillText(style.glyph, mx, L.top - 9);
    ctx.strokeStyle = style.color;
    ctx.globalAlpha = 0.25;
    ctx.beginPath();
    ctx.moveTo(Math.round(mx) + 0.5, L.top - 2);
    ctx.lineTo(Math.round(mx) + 0.5, L.bottom);
    ctx.stroke();
    ctx.globalAlpha = 1;
    self.markerSpots.push({x: mx, marker: m, style: style});
  });
  /* The selected range (or the range being dragged). */
  var r = this.drag ? this.dragRange() : this.range;
  if (r) {
    ctx.fillStyle = "rgba(47, 111, 179, 0.18)";
    ctx.fillRect(x(r[0]), L.top, x(r[1]) - x(r[0]), L.bottom - L.top);
    ctx.strokeStyle = "rgba(47, 111, 179, 0.9)";
    ctx.strokeRect(
        Math.round(x(r[0])) + 0.5, L.top + 0.5, Math.round(x(r[1]) - x(r[0])), L.bottom - L.top);
  }
};
/* A tick's label in the unit of the whole axis (s from a second up), with the step's decimals. */
function tickTime(ns, step, total) {
  var unit = total >= 1e9 ? [1e9, " s"] :
      total >= 1e6        ? [1e6, " ms"] :
      total >= 1e3        ? [1e3, " us"] :
                            [1, " ns"];
  var decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step / unit[0]) + 1e-9)));
  return (ns / unit[0]).toFixed(decimals) + unit[1];
}
Timeline.prototype.binAt = function(clientX) {
  var rect = this.canvas.getBoundingClientRect();
  var L = this.layout();
  var fraction = (clientX - rect.left - L.left) / (L.right - L.left);
  return Math.max(0, Math.min(this.t.bins - 1, Math.floor(fraction * this.t.bins)));
};
Timeline.prototype.dragRange = function() {
  var a = Math.min(this.drag.start, this.drag.end), b = Math.max(this.drag.start, this.drag.end);
  return [a, b + 1];
};
Timeline.prototype.mouseDown = function(e) {
  if (e.button !== 0) return;
  var bin = this.binAt(e.clientX);
  this.drag = {start: bin, end: bin, x: e.clientX, moved: false};
  e.preventDefault();
};
Timeline.prototype.mouseMove = function(e) {
  if (this.drag) {
    this.drag.end = this.binAt(e.clientX);
    if (Math.abs(e.clientX - this.drag.x) > 2) this.drag.moved = true;
    this.draw();
    var r = this.dragRange();
    showTooltip(
        duration(this.start + r[0] * this.t.bin_ns) + " \u2013 " +
            duration(this.start + r[1] * this.t.bin_ns),
        e);
    return;
  }
  if (e.target !== this.canvas) return;
  this.hover(e);
};
Timeline.prototype.mouseUp = function(e) {
  if (!this.drag) return;
  this.drag.end = this.binAt(e.clientX);
  var moved = this.drag.moved, r = this.dragRange();
  this.drag = null;
  hideTooltip();
  /* A click without a drag keeps the current range (a double-click resets it). */
  if (moved)
    this.setRange(r);
  else
    this.draw();
};
Timeline.prototype.setRange = function(r) {
  if (r && r[0] === 0 && r[1] === this.t.bins) r = null;
  this.range = r;
  this.draw();
  this.onRange(r ? r[0] : 0, r ? r[1] : this.t.bins);
};
Timeline.prototype.hover = function(e) {
  var rect = this.canvas.getBoundingClientRect();
  var mx = e.clientX - rect.left, my = e.clientY - rect.top;
  var t = this.t, L = this.layout();
  var lines = [];
  (this.markerSpots || []).forEach(function(s) {
    if (Math.abs(s.x - mx) <= 5 && my < L.top + 6) {
      lines.push(
          s.style.name + " at " + duration(s.marker.time_ns) +
          (s.marker.label ? ": " + s.marker.label : ""));
    }
  });
  if (!lines.length) {
    if (mx < L.left || mx > L.right || my > L.bottom) {
      hideTooltip();
      return;
    }
    var bin = this.binAt(e.clientX);
    lines.push(
        duration(this.start + bin * t.bin_ns) + " \u2013 " +
        duration(this.start + (bin + 1) * t.bin_ns));
    lines.push(
        "live at the end: " + bytes(t.live ? t.live[bin] : 0) +
        ", most in the bin: " + bytes(t.max ? t.max[bin] : 0));
    this.series().forEach(function(s) {
      if (s.values[bin])
        lines.push(s.name.replace("MEMORY_FROM_", "") + ": " + bytes(s.values[bin]));
    });
  }
  showTooltip(
      lines.slice(0, 12).join("\n") +
          (lines.length > 12 ? "\n\u2026 " + (lines.length - 12) + " more" : ""),
      e);
};

/* ---- Lifetime classes of a range of bins [a, b) (WPA's AIFI/AIFO/AOFI/AOFO). ----
 * A cell [site, alloc_bin, free_bin, count, bytes] (free_bin == bins: still live at the end)
 * is outside the range when freed before it or allocated after it; otherwise its class says
 * whether it was allocated inside (alloc_bin >= a) and freed inside (free_bin < b). Impacting
 * size = AIFO bytes - AOFI bytes, in total and per site; `report --window a*W..b*W` gives
 * the same numbers. */

function lifetimeClasses(cells, a, b) {
  /* Plain loops and Maps: a document may hold a few hundred thousand cells. */
  var totals = {}, sites = new Map(), allocated = new Map(), liveAtEnd = new Map();
  CLASSES.forEach(function(c) {
    totals[c] = {count: 0, bytes: 0};
  });
  for (var i = 0; i < cells.length; i++) {
    var cell = cells[i];
    var site = cell[0], ab = cell[1], fb = cell[2], count = cell[3], size = cell[4];
    if (ab >= b) continue;
    if (ab >= a) allocated.set(site, (allocated.get(site) || 0) + size);
    if (fb >= b) liveAtEnd.set(site, (liveAtEnd.get(site) || 0) + size);
    if (fb < a) continue;
    var cls = (ab >= a ? "AI" : "AO") + (fb < b ? "FI" : "FO");
    totals[cls].count += count;
    totals[cls].bytes += size;
    var s = sites.get(site);
    if (!s) {
      s = {
        site: site,
        AIFI: {count: 0, bytes: 0},
        AIFO: {count: 0, bytes: 0},
        AOFI: {count: 0, bytes: 0},
        AOFO: {count: 0, bytes: 0}
      };
      sites.set(site, s);
    }
    s[cls].count += count;
    s[cls].bytes += size;
  }
  var list = [];
  sites.forEach(function(s) {
    s.impacting = s.AIFO.bytes - s.AOFI.bytes;
    list.push(s);
  });
  return {
    classes: totals,
    impacting: totals.AIFO.bytes - totals.AOFI.bytes,
    sites: list,
    allocated: allocated,
    liveAtEnd: liveAtEnd
  };
}

/* ---- Report page: the range panel (range text, classes, top sites, range flame graph). ---- */

function RangePanel(container, doc, siteInfo) {
  var self = this;
  this.doc = doc;
  this.siteInfo = siteInfo;
  this.rangeText = el("div", {id: "range"});
  container.appendChild(this.rangeText);
  this.classesBox = el("div");
  this.sitesBox = el("div", {class: "scroll"});
  container.appendChild(
      el("div", {class: "columns"},
         el("div", null, el("h3", {text: "Lifetime classes (WPA)"}), this.classesBox),
         el("div", null, el("h3", {text: "Top sites by impacting size"}), this.sitesBox)));
  this.flameMode = "allocated";
  var allocated =
      el("button", {class: "active", id: "range-allocated", text: "allocated in the range"});
  var live = el("button", {id: "range-live", text: "live at its end"});
  function setMode(mode) {
    self.flameMode = mode;
    allocated.className = mode === "allocated" ? "active" : "";
    live.className = mode === "live" ? "active" : "";
    self.drawFlame();
  }
  allocated.addEventListener("click", function() {
    setMode("allocated");
  });
  live.addEventListener("click", function() {
    setMode("live");
  });
  var flameBox = el("div", {id: "range-flame"});
  this.flame = new FlameGraph(flameBox, {unit: "bytes", what: "bytes", color: warmColor});
  container.appendChild(el("h3", {text: "Flame graph of the range"}));
  container.appendChild(
      el("div", {class: "controls"}, el("label", {text: "Blocks:"}), allocated, live,
         searchBox([this.flame], "range-search")));
  container.appendChild(flameBox);
}
RangePanel.prototype.update = function(a, b) {
  var lt = this.doc.lifetimes || {bins: 1, bin_ns: 0, cells: []};
  var W = lt.bin_ns, N = lt.bins;
  /* Bins start at the report's range (start_ns), times count from the trace start. */
  var begin = (lt.start_ns || 0) + a * W, end = (lt.start_ns || 0) + b * W;
  var range = (this.doc.report || {}).range || ((this.doc.report || {}).trace || {}).range;
  var openEnd = b === N && !(range && range.to_ns !== null && range.to_ns !== undefined);
  this.rangeText.setAttribute("data-begin-ns", String(begin));
  this.rangeText.setAttribute("data-end-ns", String(end));
  this.rangeText.setAttribute("data-begin-bin", String(a));
  this.rangeText.setAttribute("data-end-bin", String(b));
  this.rangeText.textContent = "";
  var whole = a === 0 && b === N;
  append(this.rangeText, [
    el("strong", {
      text: whole ? (range ? "Range: the whole report " : "Range: the whole trace ") : "Range: "
    }),
    duration(begin) + " \u2013 " + duration(end) + " ", el("span", {
      class: "muted mono",
      text: "[" + begin + " ns, " + end + " ns), bins " + a + "\u2013" + (b - 1) + " of " + N +
          "; heaptrail report --window " + begin + "ns.." + (openEnd ? "" : end + "ns")
    })
  ]);
  var result = lifetimeClasses(lt.cells || [], a, b);
  this.result = result;
  this.renderClasses(result);
  this.renderSites(result);
  this.drawFlame();
};
RangePanel.prototype.renderClasses = function(result) {
  var rows = [
    ["AIFI", "allocated inside, freed inside"],
    ["AIFO", "allocated inside, freed outside or never"],
    ["AOFI", "allocated before, freed inside"], ["AOFO", "allocated before, freed outside or never"]
  ];
  var t = table(
      [
        {
          title: "class",
          cell: function(r) {
            return el(
                "td", null, el("strong", {text: r[0]}), " ",
                el("span", {class: "muted", text: r[1]}));
          }
        },
        {
          title: "blocks",
          num: true,
          cell: function(r) {
            var v = Math.round(result.classes[r[0]].count);
            return el("td", {
              class: "num",
              "data-class": r[0],
              "data-field": "count",
              "data-value": String(v),
              text: num(v)
            });
          }
        },
        {
          title: "bytes",
          num: true,
          cell: function(r) {
            var v = Math.round(result.classes[r[0]].bytes);
            return el("td", {
              class: "num",
              "data-class": r[0],
              "data-field": "bytes",
              "data-value": String(v),
              text: bytes(v)
            });
          }
        }
      ],
      rows, {id: "lifetime"});
  this.classesBox.textContent = "";
  this.classesBox.appendChild(t);
  var impacting = Math.round(result.impacting);
  this.classesBox.appendChild(
      el("div", null, "Impacting size (AIFO \u2212 AOFI bytes): ",
         el("strong",
            {id: "impacting", "data-value": String(impacting), text: signedBytes(impacting)}),
         el("span", {class: "muted", text: " (" + num(impacting) + " bytes)"})));
};
RangePanel.prototype.renderSites = function(result) {
  var self = this;
  var sites = result.sites.filter(function(s) {
    return s.AIFO.bytes || s.AOFI.bytes;
  });
  sites.sort(function(x, y) {
    /* The largest change first, growth or shrink, as report --window lists them. */
    return Math.abs(y.impacting) - Math.abs(x.impacting) || y.impacting - x.impacting ||
        x.site - y.site;
  });
  var shown = sites.slice(0, 30);
  this.sitesBox.textContent = "";
  if (!shown.length) {
    this.sitesBox.appendChild(
        el("div", {class: "muted", text: "No block allocated or freed in the range."}));
    return;
  }
  this.sitesBox.appendChild(table(
      [
        {
          title: "site",
          fn: true,
          cell: function(s) {
            var info = self.siteInfo(s.site);
            return stackDetails(info.name, info.frames);
          }
        },
        {
          title: "AIFO",
          num: true,
          cell: function(s) {
            return bytes(s.AIFO.bytes);
          }
        },
        {
          title: "AOFI",
          num: true,
          cell: function(s) {
            return bytes(s.AOFI.bytes);
          }
        },
        {
          title: "impacting",
          num: true,
          cell: function(s) {
            return el("td", {
              class: "num " +
                  (s.impacting > 0     ? "pos" :
                       s.impacting < 0 ? "neg" :
                                         ""),
              "data-site": String(s.site),
              "data-value": String(Math.round(s.impacting)),
              text: signedBytes(s.impacting)
            });
          }
        }
      ],
      shown, {id: "impacting-sites"}));
  if (sites.length > shown.length)
    this.sitesBox.appendChild(
        el("div", {class: "muted", text: (sites.length - shown.length) + " more sites"}));
};
RangePanel.prototype.drawFlame = function() {
  var self = this,
      values = this.flameMode === "live" ? this.result.liveAtEnd : this.result.allocated;
  var items = [];
  values.forEach(function(value, site) {
    var info = self.siteInfo(site);
    items.push({frames: info.frames, label: info.name, value: value});
  });
  this.flame.options.what =
      this.flameMode === "live" ? "bytes live at the range's end" : "bytes allocated in the range";
  this.flame.setData(items);
};

/* ---- Report page: the flame graph views over every site. ---- */

var FLAME_VIEWS = [
  {key: "alloc_bytes", title: "allocated bytes", unit: "bytes"},
  {key: "alloc_count", title: "allocations", unit: "count"},
  {key: "leaked_bytes", title: "leaked bytes", unit: "bytes"},
  {key: "peak_bytes", title: "bytes at the peak", unit: "bytes"}
];
function renderFlameViews(doc, siteInfo) {
  var s = section("Flame graphs", "flames");
  var box = el("div", {id: "flame"});
  var graph = new FlameGraph(box, {unit: "bytes", what: "allocated bytes", color: warmColor});
  var select = el("select", {id: "flame-view"}, FLAME_VIEWS.map(function(v) {
    return el("option", {value: v.key, text: v.title});
  }));
  function show() {
    var view = FLAME_VIEWS.filter(function(v) {
      return v.key === select.value;
    })[0];
    graph.options.unit = view.unit;
    graph.options.what = view.title;
    graph.setData((doc.sites || []).map(function(site) {
      var info = siteInfo(site.site);
      return {frames: info.frames, label: info.name, value: site[view.key] || 0};
    }));
    graph.search(graph.query);
  }
  select.addEventListener("change", show);
  s.appendChild(
      el("div", {class: "controls"}, el("label", null, "View ", select),
         searchBox([graph], "search"), el("span", {
           class: "muted",
           text: "Roots on top, the allocating function at the bottom; " +
               "click to zoom, click the top box to zoom out."
         })));
  s.appendChild(box);
  show();
}

/* ---- Report page: the tables (Sources, INVALID, leaks, top sites, temporaries, sizes, lost). */

function sourceBar(sources, total) {
  return el(
      "div", {
        class: "bar",
        title: SOURCES.slice(0, 4)
                   .map(function(k) {
                     return k.replace("MEMORY_FROM_", "") + ": " +
                         bytes(((sources || {})[k] || {}).bytes || 0);
                   })
                   .join(", ")
      },
      SOURCES.slice(0, 4).map(function(k) {
        var v = ((sources || {})[k] || {}).bytes || 0;
        return v ?
            el("span",
               {style: "width:" + (100 * v / (total || 1)) + "%;background:" + SOURCE_COLORS[k]}) :
            null;
      }));
}
function sourceTotal(sources) {
  var sum = 0;
  SOURCES.slice(0, 4).forEach(function(k) {
    sum += ((sources || {})[k] || {}).bytes || 0;
  });
  return sum;
}
function sourceColumns(field) {
  return SOURCES.slice(0, 4).map(function(k) {
    return {
      title: k.replace("MEMORY_FROM_", ""),
      num: true,
      cell: function(row) {
        var v = ((row[field] || {})[k]) || {count: 0, bytes: 0};
        return v.count ? num(v.count) + " / " + bytes(v.bytes) : "";
      }
    };
  });
}
function stackTitle(s) {
  return s.function || "[no stack]";
}
function stackCell(s) {
  return stackDetails(stackTitle(s), (s.frames || []).map(frameFromObject));
}

function renderTables(report, siteInfo) {
  var sources = report.sources || {};
  var s = section("Sources", "sources");
  s.appendChild(el("h3", {text: "Per heap: allocations (count / bytes) by Source"}));
  s.appendChild(
      el("div", {class: "scroll"},
         table(
             [
               {
                 title: "heap",
                 cell: function(h) {
                   return el("span", {class: "mono", text: h.heap});
                 }
               },
               {
                 title: "created",
                 num: true,
                 cell: function(h) {
                   return h.rundown ? "before tracing" : duration(h.created_ns);
                 }
               },
               {
                 title: "destroyed",
                 num: true,
                 cell: function(h) {
                   return h.destroyed_ns === null || h.destroyed_ns === undefined ?
                       "" :
                       duration(h.destroyed_ns);
                 }
               },
               {
                 title: "peak",
                 num: true,
                 cell: function(h) {
                   return bytes(h.peak_bytes);
                 }
               },
               {
                 title: "live",
                 num: true,
                 cell: function(h) {
                   return bytes(h.live_bytes);
                 }
               }
             ]
                 .concat(
                     sourceColumns("allocations"),
                     [
                       {
                         title: "bytes by Source",
                         cell: function(h) {
                           return sourceBar(h.allocations, sourceTotal(h.allocations));
                         }
                       },
                       {
                         title: "INVALID",
                         num: true,
                         cell: function(h) {
                           var i = h.invalid || {};
                           return num((i.ALLOC || 0) + (i.FREE || 0) + (i.REALLOC || 0));
                         }
                       }
                     ]),
             sources.heaps || [], {id: "sources-heaps"})));
  s.appendChild(el("h3", {text: "Per heap: frees (count / bytes) by Source"}));
  s.appendChild(table(
      [{
        title: "heap",
        cell: function(h) {
          return el("span", {class: "mono", text: h.heap});
        }
      }].concat(sourceColumns("frees"), [{
                  title: "bytes by Source",
                  cell: function(h) {
                    return sourceBar(h.frees, sourceTotal(h.frees));
                  }
                }]),
      sources.heaps || []));
  var stacks = sources.stacks || [];
  var widest = 0;
  stacks.forEach(function(st) {
    widest = Math.max(widest, sourceTotal(st.allocations));
  });
  s.appendChild(el("h3", {text: "Per site: allocations by Source"}));
  s.appendChild(
      el("div", {class: "scroll"},
         table(
             [
               {title: "site", fn: true, cell: stackCell}, {
                 title: "bytes",
                 num: true,
                 cell: function(r) {
                   return bytes(r.bytes);
                 }
               },
               {
                 title: "count",
                 num: true,
                 cell: function(r) {
                   return num(r.count);
                 }
               }
             ].concat(sourceColumns("allocations"), [{
                        title: "",
                        cell: function(r) {
                          return sourceBar(r.allocations, widest);
                        }
                      }]),
             stacks, {id: "sources-stacks"})));

  var invalid = report.invalid || {};
  s = section("INVALID operations (" + num(invalid.count || 0) + ")", "invalid");
  if (!invalid.count) s.appendChild(el("div", {class: "muted", text: "None."}));
  if ((invalid.groups || []).length) {
    s.appendChild(el("h3", {text: "By kind and stack"}));
    s.appendChild(table(
        [
          {
            title: "kind",
            cell: function(g) {
              return g.kind;
            }
          },
          {
            title: "count",
            num: true,
            cell: function(g) {
              return num(g.count);
            }
          },
          {
            title: "requested",
            num: true,
            cell: function(g) {
              return bytes(g.requested_bytes);
            }
          },
          {title: "stack", fn: true, cell: stackCell}
        ],
        invalid.groups));
  }
  if ((invalid.events || []).length) {
    s.appendChild(el("h3", {text: "Events"}));
    s.appendChild(
        el("div", {class: "scroll"},
           table(
               [
                 {
                   title: "time",
                   num: true,
                   cell: function(e) {
                     return duration(e.time_ns);
                   }
                 },
                 {
                   title: "event",
                   cell: function(e) {
                     return e.event || "";
                   }
                 },
                 {
                   title: "kind",
                   cell: function(e) {
                     return e.kind || "";
                   }
                 },
                 {
                   title: "heap",
                   cell: function(e) {
                     return el("span", {class: "mono", text: e.heap || ""});
                   }
                 },
                 {
                   title: "address",
                   cell: function(e) {
                     return el("span", {class: "mono", text: e.address || ""});
                   }
                 },
                 {
                   title: "size",
                   num: true,
                   cell: function(e) {
                     return e.size === null || e.size === undefined ? "" : num(e.size);
                   }
                 },
                 {
                   title: "thread",
                   num: true,
                   cell: function(e) {
                     return e.thread === undefined ? "" : String(e.thread);
                   }
                 },
                 {
                   title: "stack",
                   fn: true,
                   cell: function(e) {
                     if (e.frames)
                       return stackDetails(
                           e.frames.length ? e.frames[0].function || "stack" : "[no stack]",
                           e.frames.map(frameFromObject));
                     var info = siteInfo(e.site);
                     return stackDetails(info.name, info.frames);
                   }
                 }
               ],
               invalid.events, {id: "invalid-events"})));
    if (invalid.events_omitted)
      s.appendChild(el(
          "div", {class: "muted", text: num(invalid.events_omitted) + " more events not listed"}));
  }

  var leaks = report.leaks || {};
  s = section(
      "Leaks: " + bytes(leaks.bytes || 0) + " in " + num(leaks.blocks || 0) + " blocks", "leaks");
  s.appendChild(stackTable(leaks.stacks || [], "leaks-table", leaks.bytes));
  if (leaks.stack_count > (leaks.stacks || []).length)
    s.appendChild(
        el("div",
           {class: "muted", text: num(leaks.stack_count - leaks.stacks.length) + " more sites"}));

  s = section("Top sites", "top");
  s.appendChild(
      el("div", {class: "columns"},
         el("div", null, el("h3", {text: "By bytes allocated"}),
            stackTable(report.top_by_bytes || [], "top-bytes")),
         el("div", null, el("h3", {text: "By number of allocations"}),
            stackTable(report.top_by_count || [], "top-count"))));

  var temporary = report.temporary || {};
  s = section(
      "Temporary allocations: " + num(temporary.count || 0) + " (" + bytes(temporary.bytes || 0) +
          ")",
      "temporary");
  if (temporary.definition) s.appendChild(el("div", {class: "muted", text: temporary.definition}));
  s.appendChild(stackTable(temporary.stacks || [], "temporary-table"));

  s = section("Requested sizes", "histogram");
  var buckets = report.histogram || [];
  var most = 0;
  buckets.forEach(function(b) {
    most = Math.max(most, b.count);
  });
  s.appendChild(table(
      [
        {
          title: "size",
          num: true,
          cell: function(b) {
            return b.min === b.max ? num(b.min) : num(b.min) + " \u2013 " + num(b.max);
          }
        },
        {
          title: "count",
          num: true,
          cell: function(b) {
            return num(b.count);
          }
        },
        {
          title: "",
          cell: function(b) {
            return el(
                "span",
                {class: "hbar", style: "width:" + Math.max(1, 300 * b.count / (most || 1)) + "px"});
          }
        },
        {
          title: "bytes",
          num: true,
          cell: function(b) {
            return bytes(b.bytes);
          }
        }
      ],
      buckets, {id: "histogram-table"}));

  var lost = report.lost || {};
  s = section("Lost events: " + num(lost.count || 0), "lost");
  var reasons = Object.keys(lost.by_reason || {});
  if (reasons.length)
    s.appendChild(kvBlock(reasons.map(function(r) {
      return [r, num(lost.by_reason[r])];
    })));
  if ((lost.records || []).length) {
    s.appendChild(table(
        [
          {
            title: "thread",
            num: true,
            cell: function(r) {
              return String(r.thread);
            }
          },
          {
            title: "count",
            num: true,
            cell: function(r) {
              return num(r.count);
            }
          },
          {
            title: "first",
            num: true,
            cell: function(r) {
              return duration(r.first_ns);
            }
          },
          {
            title: "last",
            num: true,
            cell: function(r) {
              return duration(r.last_ns);
            }
          },
          {
            title: "reason",
            cell: function(r) {
              return r.reason;
            }
          }
        ],
        lost.records));
  }
  if (!lost.count)
    s.appendChild(el("div", {class: "muted", text: "None: the numbers are complete."}));
}
function stackTable(stacks, id, total) {
  if (!stacks.length) return el("div", {class: "muted", text: "None."});
  return el(
      "div", {class: "scroll"},
      table(
          [
            {title: "site", fn: true, cell: stackCell}, {
              title: "bytes",
              num: true,
              cell: function(r) {
                return bytes(r.bytes);
              }
            },
            {
              title: "count",
              num: true,
              cell: function(r) {
                return num(r.count);
              }
            }
          ]
              .concat(
                  total ? [{
                    title: "share",
                    num: true,
                    cell: function(r) {
                      return percent(r.bytes, total);
                    }
                  }] :
                          []),
          stacks, {id: id}));
}

/* ---- Report page: putting it together. ---- */

function renderReport(doc) {
  var report = doc.report || {};
  var frameTable = (doc.frames || []).map(frameFromRow);
  var sitesById = {};
  (doc.sites || []).forEach(function(s) {
    sitesById[s.site] = s;
  });
  /* A site's name (its innermost function, or its label) and frames (innermost first). */
  var infoCache = new Map();
  function siteInfo(id) {
    var info = infoCache.get(id);
    if (info) return info;
    var s = sitesById[id];
    if (!s) {
      info = {name: "site " + id, frames: []};
    } else {
      var frames = (s.frames || []).map(function(i) {
        return frameTable[i] || {label: "?"};
      });
      info = {
        name: s.label || (frames.length ? frameName(frames[0]) : "[no stack]"),
        frames: frames
      };
    }
    infoCache.set(id, info);
    return info;
  }
  renderHeader(report);
  var timeline = doc.timeline;
  var s = section("Timeline", "timeline-section");
  var panel;
  if (timeline && timeline.bins > 0) {
    var view = new Timeline(s, timeline, function(a, b) {
      panel.update(a, b);
    });
    var r = section("The chosen range", "range-section");
    panel = new RangePanel(r, doc, siteInfo);
    view.draw();
    panel.update(0, (doc.lifetimes || timeline).bins);
  } else {
    s.appendChild(el("div", {class: "muted", text: "No timeline in this document."}));
  }
  renderFlameViews(doc, siteInfo);
  renderTables(report, siteInfo);
}

/* ---- Diff page: header, totals, the table by |delta| and the differential flame graph. ---- */

var DIFF_METRICS = [
  {key: "allocated_bytes", title: "allocated bytes", unit: "bytes"},
  {key: "allocations", title: "allocations", unit: "count"},
  {key: "leaked_bytes", title: "leaked bytes", unit: "bytes"},
  {key: "peak_bytes", title: "peak bytes", unit: "bytes"}
];
function diffColor(node, root) {
  var delta = node.new - node.base;
  if (!delta) return "#c8cdd2";
  var scale = Math.max(1, root.maxDelta || 1);
  var strength = Math.min(1, Math.abs(delta) / scale);
  var light = 88 - 40 * Math.sqrt(strength);
  return delta > 0 ? "hsl(2, 75%, " + light + "%)" : "hsl(214, 70%, " + light + "%)";
}
function renderDiff(doc) {
  var diff = doc.diff || {};
  var base = diff.base || {}, next = diff.new || {};
  var app = document.getElementById("app");
  var name = function(t) {
    return t.program ? t.program.split("/").pop() : t.path || "?";
  };
  document.title = "heaptrail diff: " + name(base) + " \u2192 " + name(next);
  app.appendChild(el("h1", null, "heaptrail diff: " + name(base) + " \u2192 " + name(next)));
  app.appendChild(table(
      [
        {
          title: "",
          cell: function(r) {
            return el("strong", {text: r[0]});
          }
        },
        {
          title: "trace",
          cell: function(r) {
            return el("span", {class: "mono", text: r[1].path || ""});
          }
        },
        {
          title: "program",
          cell: function(r) {
            return r[1].program || "";
          }
        },
        {
          title: "events",
          num: true,
          cell: function(r) {
            return num(r[1].events);
          }
        },
        {
          title: "duration",
          num: true,
          cell: function(r) {
            return duration(r[1].duration_ns);
          }
        },
        {
          title: "sampled",
          cell: function(r) {
            return r[1].sample_interval ? "every " + bytes(r[1].sample_interval) : "no";
          }
        }
      ],
      [["base", base], ["new", next]], {id: "diff-traces"}));
  if (diff.estimates)
    app.appendChild(
        el("div",
           {class: "warning", text: "\u26a0 A trace is sampled: every figure is an estimate."}));

  var s = section("Totals", "diff-totals");
  var totals = diff.totals || {};
  s.appendChild(table(
      [
        {
          title: "",
          cell: function(k) {
            return k.replace(/_/g, " ");
          }
        },
        {
          title: "base",
          num: true,
          cell: function(k) {
            return diffValue(k, totals[k].base);
          }
        },
        {
          title: "new",
          num: true,
          cell: function(k) {
            return diffValue(k, totals[k].new);
          }
        },
        {
          title: "delta",
          num: true,
          cell: function(k) {
            return deltaCell(k, totals[k]);
          }
        }
      ],
      Object.keys(totals)));

  s = section("Sites", "diff-sites");
  var select = el("select", {id: "diff-metric"}, DIFF_METRICS.map(function(m) {
    return el("option", {value: m.key, text: m.title});
  }));
  var flameBox = el("div", {id: "diff-flame"});
  var tableBox = el("div", {class: "scroll", id: "diff-table-box"});
  var graph = new FlameGraph(flameBox, {
    unit: "bytes",
    what: "allocated bytes",
    color: diffColor,
    describe: function(node, root) {
      var fmt = graph.options.unit === "count" ? num : bytes;
      return [
        fmt(node.base) + " \u2192 " + fmt(node.new) + " (" +
            (graph.options.unit === "count" ? signedNum : signedBytes)(node.new - node.base) + ")",
        "width: " + percent(node.value, root.value) + " of the graph"
      ];
    }
  });
  s.appendChild(
      el("div", {class: "controls"}, el("label", null, "Metric ", select),
         searchBox([graph], "search"), el("span", {
           class: "muted",
           text: "Widths: the new value (the base one for sites gone); " +
               "red grew, blue shrank, grey unchanged."
         })));
  s.appendChild(tableBox);
  s.appendChild(el("h3", {text: "Differential flame graph"}));
  s.appendChild(flameBox);
  function show() {
    var metric = DIFF_METRICS.filter(function(m) {
      return m.key === select.value;
    })[0];
    var sites = (diff.sites || []).filter(function(site) {
      var v = site[metric.key] || {};
      return v.base || v.new || v.delta;
    });
    sites.sort(function(x, y) {
      return Math.abs((y[metric.key] || {}).delta || 0) -
          Math.abs((x[metric.key] || {}).delta || 0);
    });
    var fmt = metric.unit === "count" ? num : bytes;
    tableBox.textContent = "";
    tableBox.appendChild(table(
        [
          {
            title: "site",
            fn: true,
            cell: function(site) {
              return stackDetails(
                  site.function || "[no stack]", (site.frames || []).map(frameFromObject));
            }
          },
          {
            title: "status",
            cell: function(site) {
              return site.status === "new_only" ? "new" : site.status === "base_only" ? "gone" : "";
            }
          },
          {
            title: "base",
            num: true,
            cell: function(site) {
              return fmt((site[metric.key] || {}).base || 0);
            }
          },
          {
            title: "new",
            num: true,
            cell: function(site) {
              return fmt((site[metric.key] || {}).new || 0);
            }
          },
          {
            title: "delta",
            num: true,
            cell: function(site) {
              return deltaCell(metric.key, site[metric.key] || {});
            }
          }
        ],
        sites.slice(0, 500).map(function(site) {
          return Object.assign(
              {
                _class: site.status === "new_only" ? "new" :
                    site.status === "base_only"    ? "gone" :
                                                     null
              },
              site);
        }),
        {id: "diff-table"}));
    if (sites.length > 500)
      tableBox.appendChild(el("div", {class: "muted", text: (sites.length - 500) + " more sites"}));
    graph.options.unit = metric.unit;
    graph.options.what = metric.title;
    graph.setData(sites.map(function(site) {
      var v = site[metric.key] || {};
      return {
        frames: (site.frames || []).map(frameFromObject),
        label: site.function,
        value: site.status === "base_only" ? (v.base || 0) : (v.new || 0),
        base: v.base || 0,
        new: v.new || 0
      };
    }));
    /* The color scale: the largest change of any box but the root. */
    var maxDelta = 0;
    (function walk(node) {
      node.children.forEach(function(c) {
        maxDelta = Math.max(maxDelta, Math.abs(c.new - c.base));
        walk(c);
      });
    })(graph.root);
    graph.root.maxDelta = maxDelta;
    graph.search(graph.query);
  }
  select.addEventListener("change", show);
  show();
}
function diffValue(key, value) {
  return /bytes/.test(key) ? bytes(value) : num(value);
}
function deltaCell(key, v) {
  var delta = v.delta === undefined ? (v.new || 0) - (v.base || 0) : v.delta;
  var text = /bytes/.test(key) ? signedBytes(delta) : signedNum(delta);
  return el("td", {
    class: "num " +
        (delta > 0     ? "pos" :
             delta < 0 ? "neg" :
                         ""),
    "data-value": String(delta),
    text: text
  });
}

/* ---- Start: parse the document and build the page for its kind. ---- */

function start() {
  var app = document.getElementById("app");
  app.textContent = "";
  var doc;
  try {
    doc = JSON.parse(document.getElementById("heaptrail-data").textContent);
  } catch (error) {
    app.appendChild(
        el("div", {class: "warning", text: "This page's data cannot be read: " + error.message}));
    return;
  }
  if (doc.kind === "diff")
    renderDiff(doc);
  else
    renderReport(doc);
  document.body.setAttribute("data-ready", "1");
}
if (document.readyState === "loading")
  document.addEventListener("DOMContentLoaded", start);
else
  start();
})();
