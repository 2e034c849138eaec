/* torchtally report page: lays out the data in #tt-data (written by render/page.py) as a
   header of totals, an interactive module tree and charts drawn with Apache ECharts.
   Everything is local: nothing is fetched. */
(function () {
  "use strict";
  var T0 = performance.now();
  var DATA = JSON.parse(document.getElementById("tt-data").textContent);
  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"];
  var CATEGORY_COLORS = {
    parameters: "#0072B2", buffers: "#56B4E9", inputs: "#999999", activations: "#E69F00",
    gradients: "#009E73", optimizer_state: "#CC79A7"
  };
  var CATEGORY_NAMES = {
    parameters: "Parameters", buffers: "Buffers", inputs: "Inputs", activations: "Activations",
    gradients: "Gradients", optimizer_state: "Optimizer state"
  };
  var BOUND_COLORS = { compute: "#0072B2", memory: "#D55E00", overhead: "#999999", network: "#CC79A7" };
  var charts = []; // {el, option: function () {...}, instance}
  var sections = {}; // milliseconds each part took to draw (read by the benchmark)
  function timed(name, fn) {
    var start = performance.now(), result = fn();
    sections[name] = (sections[name] || 0) + performance.now() - start;
    return result;
  }

  // ---- formatting -------------------------------------------------------------------------
  // An integer above 2^53 - 1 comes as its exact decimal string too (page.py's `_exact`):
  // `commas` groups such a string's digits as they are.
  function commas(n) {
    if (n === null || n === undefined) return "";
    if (typeof n === "string" && /^-?\d+$/.test(n)) return n.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return Number(n).toLocaleString("en-US");
  }
  // The exact figure of d[group][key] (of column `key`'s row i for "layers"): its decimal
  // string when a JavaScript number cannot hold it, else the number itself.
  function exact(d, group, key, i) {
    var found = d.exact && d.exact[group] && d.exact[group][key];
    if (group === "layers") return found && found[i] !== undefined ? found[i] : d.layers[key][i];
    return found !== undefined && found !== null ? found : d[group][key];
  }
  function si(n) {
    if (n === null || n === undefined) return "";
    var units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
    for (var i = 0; i < units.length; i++) if (Math.abs(n) >= units[i][0]) return (n / units[i][0]).toFixed(2) + " " + units[i][1];
    return String(n);
  }
  function bytes(n) {
    if (n === null || n === undefined) return "";
    var units = [[Math.pow(2, 40), "TiB"], [Math.pow(2, 30), "GiB"], [Math.pow(2, 20), "MiB"], [1024, "KiB"]];
    for (var i = 0; i < units.length; i++) if (Math.abs(n) >= units[i][0]) return (n / units[i][0]).toFixed(2) + " " + units[i][1];
    return n + " B";
  }
  function secs(s) {
    if (s === null || s === undefined) return "";
    if (Math.abs(s) >= 1) return s.toFixed(2) + " s";
    if (Math.abs(s) >= 1e-3) return (s * 1e3).toFixed(2) + " ms";
    return (s * 1e6).toFixed(1) + " µs";
  }
  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function h(tag, attrs, html) {
    var node = document.createElement(tag);
    if (attrs) for (var key in attrs) if (attrs[key] !== null && attrs[key] !== undefined) node.setAttribute(key, attrs[key]);
    if (html !== undefined) node.innerHTML = html;
    return node;
  }
  function shapeText(spec) { return "[" + spec.shape.join(", ") + "] " + spec.dtype; }

  // ---- theme ------------------------------------------------------------------------------
  function isDark() { return document.documentElement.getAttribute("data-theme") === "dark"; }
  function setTheme(dark) {
    document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
    charts.forEach(redraw);
  }
  function initialTheme() {
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
  }
  function textColor() { return isDark() ? "#e6e7ea" : "#1b1b1f"; }
  function lineColor() { return isDark() ? "#343841" : "#d9dbe0"; }

  // A chart is drawn when it first comes near the screen: the page is ready to use while the
  // charts below are still waiting (printing draws them all first).
  var observer = window.IntersectionObserver ? new IntersectionObserver(function (seen) {
    seen.forEach(function (item) {
      if (!item.isIntersecting) return;
      observer.unobserve(item.target);
      charts.forEach(function (entry) { if (entry.el === item.target && !entry.instance) timed("charts", function () { drawChart(entry); }); });
    });
  }, { rootMargin: "200px" }) : null;
  function chart(el, option) {
    var entry = { el: el, option: option, instance: null };
    charts.push(entry);
    if (observer) observer.observe(el); else drawChart(entry);
    return entry;
  }
  function drawAll() { charts.forEach(function (entry) { if (!entry.instance) timed("chart " + entry.el.id, function () { drawChart(entry); }); }); }
  function redraw(entry) { if (entry.instance) drawChart(entry); }
  function drawChart(entry) {
    if (entry.instance) entry.instance.dispose();
    entry.instance = echarts.init(entry.el, isDark() ? "dark" : null, { renderer: "canvas" });
    var option = entry.option();
    option.animation = false;
    option.backgroundColor = "transparent";
    option.color = option.color || PALETTE;
    option.textStyle = { fontFamily: "system-ui, sans-serif" };
    entry.instance.setOption(option);
  }
  // Painted at once (not on the next animation frame, which printing does not wait for).
  function resizeAll() { charts.forEach(function (c) { if (c.instance) { c.instance.resize(); c.instance.getZr().flush(); } }); }
  window.addEventListener("resize", resizeAll);
  // Paper is white: print with the light theme, every chart drawn and fitted to the page's
  // width, then go back. The print styles may apply only after "beforeprint" (the page is
  // narrower on paper): the print media query's change resizes the charts again then.
  var printedDark = false;
  window.addEventListener("beforeprint", function () { printedDark = isDark(); if (printedDark) setTheme(false); drawAll(); resizeAll(); });
  window.addEventListener("afterprint", function () { if (printedDark) setTheme(true); resizeAll(); });
  if (window.matchMedia) {
    var printMedia = window.matchMedia("print");
    var onPrintMedia = function () { if (printMedia.matches) drawAll(); resizeAll(); };
    if (printMedia.addEventListener) printMedia.addEventListener("change", onPrintMedia);
    else if (printMedia.addListener) printMedia.addListener(onPrintMedia);
  }

  // ---- the module tree --------------------------------------------------------------------
  function layerLabel(d, i) {
    var name = d.layers.name[i];
    if (i === 0 || name === "") return d.model_type;
    var dot = name.lastIndexOf(".");
    return dot < 0 ? name : name.slice(dot + 1);
  }
  function layerPath(d, i) { return i === 0 || d.layers.name[i] === "" ? d.model_type : d.layers.name[i]; }

  function treeColumns(d) {
    var L = d.layers;
    var cols = [
      { key: "type", label: "Type", text: true },
      { key: "output", label: "Output shape", text: true },
      { key: "params", label: "Param #", fmt: commas },
      { key: "subtree_params", label: "Params (subtree)", fmt: commas },
      { key: "macs", label: "MACs", fmt: si },
      { key: "flops", label: "FLOPs", fmt: si }
    ];
    if (d.run.training) cols.push({ key: "backward_flops", label: "Bwd FLOPs", fmt: si });
    cols.push({ key: "output_bytes", label: "Output bytes", fmt: bytes });
    cols.push({ key: "calls", label: "Calls", fmt: commas });
    if (L.time) cols.push({ key: "time", label: "Time", fmt: secs });
    if (L.estimated_time) cols.push({ key: "estimated_time", label: "Est. time", fmt: secs });
    if (L.bound) cols.push({ key: "bound", label: "Bound", text: true });
    if (L.communication_bytes) cols.push({ key: "communication_bytes", label: "Collectives", fmt: bytes });
    return cols;
  }

  function Tree(root, d, prefix) {
    var L = d.layers, n = L.name.length;
    var kids = [];
    for (var i = 0; i < n; i++) kids.push([]);
    for (i = 1; i < n; i++) if (L.parent[i] >= 0) kids[L.parent[i]].push(i);
    var maxDepth = 0;
    for (i = 0; i < n; i++) if (L.depth[i] > maxDepth) maxDepth = L.depth[i];
    var expanded = new Uint8Array(n);
    // Open at the report's depth, shallower while that would draw more than 400 rows.
    var startDepth = typeof d.depth === "number" ? d.depth : 2, atDepth = new Uint32Array(maxDepth + 2);
    for (i = 0; i < n; i++) atDepth[L.depth[i]]++;
    for (var shown = 0, level = 0; level <= maxDepth; level++) {
      shown += atDepth[level];
      if (level >= startDepth) break;
      if (shown + atDepth[level + 1] > 400) { startDepth = Math.max(level, 1); break; }
    }
    for (i = 0; i < n; i++) expanded[i] = L.depth[i] < startDepth ? 1 : 0;
    var columns = treeColumns(d);
    var sortKey = null, sortDir = -1, query = "";
    var LIMIT = 500, STEP = 500; // rows drawn; "show more" draws more

    var bar = h("div", { "class": "bar" });
    var search = h("input", { type: "search", placeholder: "Search name or type…", id: prefix + "tree-search", "aria-label": "Search modules" });
    var depthSel = h("select", { id: prefix + "tree-depth", "aria-label": "Expand to depth" });
    for (i = 0; i <= maxDepth; i++) depthSel.appendChild(h("option", { value: i }, "depth " + i));
    depthSel.value = String(Math.min(startDepth, maxDepth));
    var expandAll = h("button", { type: "button", id: prefix + "tree-expand-all" }, "Expand all");
    var collapseAll = h("button", { type: "button", id: prefix + "tree-collapse-all" }, "Collapse all");
    var count = h("span", { "class": "notes", id: prefix + "tree-count" });
    bar.appendChild(search); bar.appendChild(h("label", null, "Show to ")); bar.appendChild(depthSel);
    bar.appendChild(expandAll); bar.appendChild(collapseAll); bar.appendChild(count);
    root.appendChild(bar);
    var wrap = h("div", { "class": "tablewrap" });
    var table = h("table", { "class": "tree", id: prefix + "tree" });
    var thead = h("thead"), tbody = h("tbody");
    table.appendChild(thead); table.appendChild(tbody); wrap.appendChild(table); root.appendChild(wrap);

    function header() {
      var cells = ['<th data-key="name">Module' + (sortKey === "name" ? dirMark() : "") + "</th>"];
      columns.forEach(function (c) {
        cells.push('<th data-key="' + c.key + '"' + (c.text ? "" : ' class="num"') + ">" + esc(c.label) +
          (sortKey === c.key ? dirMark() : "") + "</th>");
      });
      thead.innerHTML = "<tr>" + cells.join("") + "</tr>";
    }
    function dirMark() { return ' <span class="dir">' + (sortDir < 0 ? "▼" : "▲") + "</span>"; }
    function ordered(list) {
      if (!sortKey) return list;
      var values = sortKey === "name" ? L.name : L[sortKey];
      var copy = list.slice();
      copy.sort(function (a, b) {
        var x = values[a], y = values[b];
        if (x === y) return a - b;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === "string" ? x.localeCompare(y) : x - y) * sortDir;
      });
      return copy;
    }
    function visible() {
      var out = [], stack = [0], marked = null, matched = null;
      if (query) {
        marked = new Uint8Array(n); matched = new Uint8Array(n);
        var q = query.toLowerCase();
        for (var j = 0; j < n; j++) {
          if (L.name[j].toLowerCase().indexOf(q) >= 0 || L.type[j].toLowerCase().indexOf(q) >= 0 ||
              (j === 0 && d.model_type.toLowerCase().indexOf(q) >= 0)) {
            matched[j] = 1;
            for (var k = j; k >= 0 && !marked[k]; k = L.parent[k]) marked[k] = 1;
          }
        }
      }
      while (stack.length) {
        var i = stack.pop();
        if (marked && !marked[i]) continue;
        out.push(i);
        if (marked || expanded[i]) {
          var children = ordered(kids[i]);
          for (var c = children.length - 1; c >= 0; c--) stack.push(children[c]);
        }
      }
      return { rows: out, matched: matched };
    }
    function row(i, matched) {
      var cls = [];
      if (matched) cls.push(matched[i] ? "match" : "context");
      if (L.unused[i]) cls.push("unused");
      var toggle = kids[i].length
        ? '<button type="button" class="tg" data-i="' + i + '" aria-label="expand">' + (expanded[i] || matched ? "▾" : "▸") + "</button>"
        : '<span class="tg leaf"></span>';
      var badges = "";
      if (L.shared_from[i].length) badges += '<span class="badge shared" title="these parameters belong to an earlier module">shared: ' +
        esc(L.shared_from[i].map(function (s) { return s === "" ? d.model_type : s; }).join(", ")) + "</span>";
      if (L.unused[i] && (i === 0 || !L.unused[L.parent[i]])) badges += '<span class="badge unused" title="never called; its weights were never read">unused</span>';
      else if (!L.unused[i] && L.used_params[i] < L.params[i]) badges += '<span class="badge unused">' + commas(L.params[i] - L.used_params[i]) + " unused params</span>";
      var cells = ['<td class="name" style="padding-left:' + (6 + 16 * L.depth[i]) + 'px" title="' + esc(layerPath(d, i)) + '">' +
        toggle + esc(layerLabel(d, i)) + badges + "</td>"];
      columns.forEach(function (c) {
        var v = c.text ? L[c.key][i] : exact(d, "layers", c.key, i);
        if (c.text) cells.push('<td data-key="' + c.key + '">' + esc(v === null || v === undefined ? "" : v) + "</td>");
        else cells.push('<td class="num" data-key="' + c.key + '" data-v="' + (v === null || v === undefined ? "" : v) + '">' +
          (v === null || v === undefined ? "" : c.fmt(v)) + "</td>");
      });
      return '<tr data-i="' + i + '" data-name="' + esc(L.name[i]) + '"' + (cls.length ? ' class="' + cls.join(" ") + '"' : "") + ">" +
        cells.join("") + "</tr>";
    }
    function render() {
      var v = visible(), rows = v.rows, html = [];
      var shown = Math.min(rows.length, LIMIT);
      for (var r = 0; r < shown; r++) html.push(row(rows[r], v.matched));
      if (rows.length > shown) html.push('<tr><td class="more" colspan="' + (columns.length + 1) + '">' +
        commas(rows.length - shown) + ' more rows <button type="button" class="showmore">show ' + commas(Math.min(STEP, rows.length - shown)) +
        " more</button> (or search, or collapse)</td></tr>");
      tbody.innerHTML = html.join("");
      count.textContent = query ? commas(v.matched.reduce(function (a, b) { return a + b; }, 0)) + " of " + commas(n) + " modules match"
        : commas(rows.length) + " of " + commas(n) + " modules shown";
    }
    tbody.addEventListener("click", function (event) {
      if (event.target.closest("button.showmore")) { LIMIT += STEP; render(); return; }
      var button = event.target.closest("button.tg");
      if (!button) return;
      var i = Number(button.getAttribute("data-i"));
      expanded[i] = expanded[i] ? 0 : 1;
      if (query) { query = ""; search.value = ""; for (var k = i; k >= 0; k = L.parent[k]) expanded[k] = 1; expanded[i] = 1; }
      render();
    });
    thead.addEventListener("click", function (event) {
      var th = event.target.closest("th");
      if (!th) return;
      var key = th.getAttribute("data-key");
      if (sortKey === key) { if (sortDir < 0) sortDir = 1; else { sortKey = null; sortDir = -1; } }
      else { sortKey = key; sortDir = key === "name" || key === "type" || key === "output" || key === "bound" ? 1 : -1; }
      header(); render();
    });
    var timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      if (n <= 2000) { query = search.value.trim(); render(); return; }
      timer = setTimeout(function () { query = search.value.trim(); render(); }, 120); // large models: after typing pauses
    });
    depthSel.addEventListener("change", function () {
      var limit = Number(depthSel.value);
      for (var j = 0; j < n; j++) expanded[j] = L.depth[j] < limit ? 1 : 0;
      render();
    });
    expandAll.addEventListener("click", function () { expanded.fill(1); depthSel.value = String(maxDepth); render(); });
    collapseAll.addEventListener("click", function () { expanded.fill(0); depthSel.value = "0"; render(); });
    header(); render();
  }

  // ---- hierarchy picture ------------------------------------------------------------------
  function hierarchy(d, inclusiveKey, ownKey) {
    var L = d.layers, n = L.name.length, kids = [];
    for (var i = 0; i < n; i++) kids.push([]);
    for (i = 1; i < n; i++) if (L.parent[i] >= 0) kids[L.parent[i]].push(i);
    var MOST = 100; // more children than this are drawn in groups of consecutive modules (zoom in to see them)
    function group(list, parentPath) {
      if (list.length <= MOST) return list;
      var size = Math.ceil(list.length / MOST), groups = [];
      for (var g = 0; g < list.length; g += size) {
        var part = list.slice(g, g + size), sum = 0;
        part.forEach(function (entry) { sum += entry.value; });
        groups.push({ name: part[0].name + " … " + part[part.length - 1].name, value: sum, children: part,
          path: parentPath + ": " + commas(part.length) + " modules, " + part[0].name + " to " + part[part.length - 1].name, type: "group" });
      }
      return group(groups, parentPath);
    }
    function node(i) {
      var children = [];
      kids[i].forEach(function (k) { if (L[inclusiveKey][k] > 0) children.push(node(k)); });
      children = group(children, layerPath(d, i));
      var label = layerLabel(d, i);
      if (/^[0-9]+$/.test(label) && L.parent[i] > 0) label = layerLabel(d, L.parent[i]) + "." + label;
      var entry = { name: label, value: L[inclusiveKey][i], path: layerPath(d, i), type: L.type[i] };
      if (children.length) {
        if (L[ownKey][i] > 0) children.push({ name: "(own)", value: L[ownKey][i], path: layerPath(d, i) + " (own)", type: L.type[i] });
        entry.children = children;
      }
      return entry;
    }
    return node(0);
  }
  function hierarchyChart(el, d, metric) {
    var keys = { params: ["subtree_params", "params", commas, "parameters"], macs: ["macs", "self_macs", si, "MACs"] }[metric];
    var tree = hierarchy(d, keys[0], keys[1]);
    var total = tree.value || 1;
    return chart(el, function () {
      return {
        tooltip: {
          formatter: function (info) {
            var data = info.data || {};
            return "<b>" + esc(data.path || info.name) + "</b> (" + esc(data.type || "") + ")<br>" + keys[2](info.value) + " " +
              keys[3] + " · " + (100 * info.value / total).toFixed(1) + "% of the model";
          }
        },
        series: [{
          type: "treemap", name: d.model_type, data: tree.children && tree.children.length ? tree.children : [tree],
          leafDepth: d.layers.name.length <= 500 ? 3 : 2, roam: false, nodeClick: "zoomToNode", visibleMin: 200, width: "100%", height: "88%", top: 0,
          breadcrumb: { show: true, bottom: 4, itemStyle: { textStyle: { color: textColor() } } },
          label: { show: true, formatter: "{b}" }, upperLabel: { show: true, height: 18 },
          levels: [
            { itemStyle: { borderColor: lineColor(), borderWidth: 2, gapWidth: 2 }, upperLabel: { show: false } },
            { itemStyle: { borderColor: lineColor(), borderWidth: 1, gapWidth: 1 }, colorSaturation: [0.35, 0.6] },
            { colorSaturation: [0.3, 0.55], itemStyle: { gapWidth: 1, borderColorSaturation: 0.6 } }
          ]
        }]
      };
    });
  }

  // ---- memory timeline --------------------------------------------------------------------
  function timelineFigures(d) {
    var tl = d.timeline, totals = [], peak = -1, at = 0;
    for (var i = 0; i < tl.values.length; i++) {
      var sum = 0;
      for (var c = 0; c < tl.values[i].length; c++) sum += tl.values[i][c];
      totals.push(sum);
      if (sum > peak) { peak = sum; at = i; }
    }
    var phase = tl.phases[0].name;
    tl.phases.forEach(function (p) { if (p.start <= at) phase = p.name; });
    var module = tl.modules[at];
    return { totals: totals, peak: peak, at: at, phase: phase,
      module: module === null ? (phase === "optimizer step" ? "optimizer" : "") : layerPath(d, module) };
  }
  function timelineChart(el, d, fig) {
    return chart(el, function () { return timelineOption(d, fig); });
  }
  function timelineOption(d, fig) {
    var tl = d.timeline, ops = tl.operators;
    var series = [];
    tl.categories.forEach(function (cat, c) {
      var any = false, data = [];
      for (var i = 0; i < ops.length; i++) { data.push([ops[i], tl.values[i][c]]); if (tl.values[i][c]) any = true; }
      if (!any) return;
      series.push({ name: CATEGORY_NAMES[cat] || cat, type: "line", stack: "live", step: "end", symbol: "none",
        areaStyle: { opacity: 0.85 }, lineStyle: { width: 0 }, itemStyle: { color: CATEGORY_COLORS[cat] }, data: data });
    });
    var last = ops.length ? ops[ops.length - 1] : 0;
    var bands = tl.phases.map(function (p, k) {
      var end = k + 1 < tl.phases.length ? ops[tl.phases[k + 1].start] : last;
      return [{ name: p.name, xAxis: ops[p.start], itemStyle: { color: k % 2 ? "rgba(128,128,128,0.10)" : "rgba(128,128,128,0.03)" } }, { xAxis: end }];
    });
    series.push({ name: "Total", type: "line", step: "end", symbol: "none", lineStyle: { width: 1, color: textColor(), type: "dashed" },
      itemStyle: { color: textColor() }, data: fig.totals.map(function (t, i) { return [ops[i], t]; }),
      markArea: { silent: true, label: { color: textColor(), position: "insideTop" }, data: bands },
      markPoint: { symbol: "pin", symbolSize: 46, itemStyle: { color: "#D55E00" },
        label: { formatter: "peak", fontSize: 10, color: "#fff" },
        data: [{ name: "peak", coord: [ops[fig.at], fig.peak] }] },
      markLine: { symbol: "none", lineStyle: { color: "#D55E00" }, label: { position: "insideEndTop", formatter: "peak " + bytes(fig.peak) + (fig.module ? " · " + fig.module : ""), color: textColor() },
        data: [{ yAxis: fig.peak }] } });
    return {
        legend: { top: 0, textStyle: { color: textColor() } },
        grid: { left: 80, right: 40, top: 40, bottom: 70 },
        tooltip: {
          trigger: "axis",
          formatter: function (items) {
            if (!items.length) return "";
            var i = items[0].dataIndex, lines = [], phase = tl.phases[0].name;
            tl.phases.forEach(function (p) { if (p.start <= i) phase = p.name; });
            var m = tl.modules[i];
            lines.push("<b>" + esc(phase) + "</b>" + (m === null ? "" : " · " + esc(layerPath(d, m))) + " · operator " + commas(ops[i]));
            tl.categories.forEach(function (cat, c) { if (tl.values[i][c]) lines.push(esc(CATEGORY_NAMES[cat] || cat) + ": " + bytes(tl.values[i][c])); });
            lines.push("<b>Total: " + bytes(fig.totals[i]) + "</b>");
            return lines.join("<br>");
          }
        },
        xAxis: { type: "value", name: "operators run", nameLocation: "middle", nameGap: 28, min: 0, max: last },
        yAxis: { type: "value", axisLabel: { formatter: bytes } },
        dataZoom: [{ type: "inside" }, { type: "slider", bottom: 8, height: 18, showDataShadow: false }],
        series: series
    };
  }

  // ---- operators and module types ---------------------------------------------------------
  function operatorChart(el, d) {
    var totals = {}, names = [];
    d.by_operator.forEach(function (r) {
      if (!totals[r.operator]) { totals[r.operator] = { forward: 0, backward: 0, calls: 0, macs: 0, all: 0 }; names.push(r.operator); }
      var t = totals[r.operator];
      t[r.pass] += r.flops; t.calls += r.calls; t.macs += r.macs; t.all += r.flops;
    });
    var byFlops = names.some(function (k) { return totals[k].all > 0; });
    names.sort(function (a, b) { return byFlops ? totals[b].all - totals[a].all : totals[b].calls - totals[a].calls; });
    var top = names.slice(0, 15).reverse();
    var passes = d.run.training ? ["forward", "backward"] : ["forward"];
    return chart(el, function () {
      return {
        title: { text: "Operators by " + (byFlops ? "FLOPs" : "calls") + " (top 15)", left: 0, textStyle: { fontSize: 13, color: textColor() } },
        legend: { top: 0, right: 0, textStyle: { color: textColor() } },
        grid: { left: 170, right: 24, top: 36, bottom: 24 },
        tooltip: {
          trigger: "axis", axisPointer: { type: "shadow" },
          formatter: function (items) {
            var t = totals[items[0].name];
            return "<b>" + esc(items[0].name) + "</b><br>calls: " + commas(t.calls) + "<br>MACs: " + si(t.macs) + "<br>FLOPs: " +
              passes.map(function (p) { return p + " " + si(t[p]); }).join(", ");
          }
        },
        xAxis: { type: "value", axisLabel: { formatter: si } },
        yAxis: { type: "category", data: top, axisLabel: { fontSize: 11 } },
        series: passes.map(function (p, k) {
          return { name: p, type: "bar", stack: "ops", itemStyle: { color: PALETTE[k] },
            data: top.map(function (name) { return byFlops ? totals[name][p] : (p === "forward" ? totals[name].calls : 0); }) };
        })
      };
    });
  }
  function typeChart(el, d) {
    var rows = d.by_type.slice(), params = d.totals.params || 1, flops = d.totals.flops || 1;
    rows.sort(function (a, b) { return (b.flops / flops + b.params / params) - (a.flops / flops + a.params / params); });
    var top = rows.slice(0, 15).reverse();
    return chart(el, function () {
      return {
        title: { text: "Module types: share of parameters and FLOPs", left: 0, textStyle: { fontSize: 13, color: textColor() } },
        legend: { top: 0, right: 0, textStyle: { color: textColor() } },
        grid: { left: 150, right: 24, top: 36, bottom: 24 },
        tooltip: {
          trigger: "axis", axisPointer: { type: "shadow" },
          formatter: function (items) {
            var r = top[items[0].dataIndex];
            return "<b>" + esc(r.type) + "</b> × " + commas(r.modules) + "<br>params: " + commas(r.params) + "<br>MACs: " + si(r.macs) +
              "<br>FLOPs: " + si(r.flops) + "<br>calls: " + commas(r.calls);
          }
        },
        xAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
        yAxis: { type: "category", data: top.map(function (r) { return r.type; }), axisLabel: { fontSize: 11 } },
        series: [
          { name: "% of parameters", type: "bar", itemStyle: { color: PALETTE[0] }, data: top.map(function (r) { return +(100 * r.params / params).toFixed(2); }) },
          { name: "% of FLOPs", type: "bar", itemStyle: { color: PALETTE[1] }, data: top.map(function (r) { return +(100 * r.flops / flops).toFixed(2); }) }
        ]
      };
    });
  }

  // ---- estimates: roofline ----------------------------------------------------------------
  function rooflineChart(el, d) {
    var L = d.layers, hw = d.estimate.hardware || {}, groups = {}, xs = [];
    for (var i = 0; i < L.name.length; i++) {
      var isLeaf = true;
      for (var j = i + 1; j < L.name.length && L.depth[j] > L.depth[i]; j++) { isLeaf = false; break; }
      var moved = (L.memory_read ? L.memory_read[i] : 0) + (L.memory_write ? L.memory_write[i] : 0);
      var t = L.estimated_time[i], f = L.flops[i];
      if (!isLeaf || !t || !f || !moved) continue;
      var bound = (L.bound && L.bound[i]) || "other";
      (groups[bound] = groups[bound] || []).push([f / moved, f / t, layerPath(d, i), f, t]);
      xs.push(f / moved);
    }
    if (!xs.length) return null;
    var lo = Math.pow(10, Math.floor(Math.log10(Math.min.apply(null, xs)))), hi = Math.pow(10, Math.ceil(Math.log10(Math.max.apply(null, xs)))), series = [];
    Object.keys(groups).forEach(function (b) {
      series.push({ name: b + "-bound", type: "scatter", symbolSize: 7, itemStyle: { color: BOUND_COLORS[b] || "#999999" }, data: groups[b] });
    });
    var bw = hw.memory_bandwidth;
    // The roofs of the common training and inference dtypes (all of them crowd the chart).
    var roofs = Object.keys(hw.peak_flops || {}).filter(function (k) { return ["fp32", "bf16", "fp16"].indexOf(k) >= 0; });
    if (!roofs.length) roofs = Object.keys(hw.peak_flops || {}).slice(0, 2);
    roofs.forEach(function (dtype, k) {
      var peak = hw.peak_flops[dtype];
      if (!bw || !peak) return;
      var knee = peak / bw, pts = [[lo, bw * lo]];
      if (knee > lo && knee < hi) pts.push([knee, peak]);
      pts.push([hi, Math.min(peak, bw * hi)]);
      var color = PALETTE[(k + 2) % 8]; // on the line and on its legend swatch
      series.push({ name: "roof " + dtype, type: "line", symbol: "none", itemStyle: { color: color },
        lineStyle: { width: 1.5, type: k ? "dashed" : "solid", color: color }, data: pts });
    });
    return chart(el, function () {
      return {
        title: { text: "Roofline of the layers (estimated" + (hw.name ? ", " + hw.name : "") + ")", left: 0, textStyle: { fontSize: 13, color: textColor() } },
        legend: { top: 22, textStyle: { color: textColor() } },
        grid: { left: 80, right: 30, top: 60, bottom: 50 },
        tooltip: { formatter: function (p) { var v = p.data; return v.length > 2 ? "<b>" + esc(v[2]) + "</b><br>" + si(v[3]) + "FLOPs · est. " + secs(v[4]) +
          "<br>" + v[0].toFixed(1) + " FLOPs/byte · " + si(v[1]) + "FLOP/s" : esc(p.seriesName); } },
        xAxis: { type: "log", name: "FLOPs per byte", nameLocation: "middle", nameGap: 28, min: lo, max: hi,
          axisLabel: { formatter: function (v) { return v >= 1 ? si(v) : String(+v.toPrecision(2)); } } },
        yAxis: { type: "log", name: "FLOP/s", axisLabel: { formatter: si } },
        series: series
      };
    });
  }

  // ---- parallel layout (this rank) --------------------------------------------------------
  function parallelSection(root, d, prefix) {
    var p = d.parallel;
    var section = h("section", { id: prefix + "parallel" });
    section.appendChild(h("h2", null, "Parallel layout: rank " + esc(p.rank) + " of " + esc(p.world_size)));
    var dims = (p.mesh_dims || []).map(function (name, i) { return name + " " + p.mesh_shape[i]; }).join(" × ");
    section.appendChild(h("p", { "class": "notes" }, "Mesh " + esc(dims) + (p.mixed_precision ? " · mixed precision " + esc(p.mixed_precision) : "") +
      (p.reshard_after_forward === null ? "" : " · FSDP reshards after forward: " + (p.reshard_after_forward ? "yes" : "no")) +
      ". MACs, FLOPs and memory on this page are this rank's; the parameter count is the whole model's."));
    var cards = h("div", { "class": "cards" });
    card(cards, prefix + "local-params", "Parameters on this rank", si(p.local_params), commas(p.local_params) + " of " + commas(d.totals.params), p.local_params);
    var sent = 0, wire = 0;
    (p.communication || []).forEach(function (c) { sent += c.bytes; wire += c.wire_bytes; });
    card(cards, prefix + "communication", "Collectives (data size)", bytes(sent), commas(sent) + " B · " + bytes(wire) + " on the wire", sent);
    section.appendChild(cards);
    root.appendChild(section);
    var comms = p.communication || [];
    if (!comms.length) return;
    var el = h("div", { "class": "chart small", id: prefix + "communication-chart" });
    section.appendChild(el);
    chart(el, function () {
      return {
        title: { text: "Collectives of this rank (forward and backward)", textStyle: { fontSize: 13, color: textColor() } },
        legend: { top: 0, right: 0, textStyle: { color: textColor() } }, grid: { left: 120, right: 24, top: 36, bottom: 30 },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, formatter: function (items) {
          var c = comms[items[0].dataIndex];
          return "<b>" + esc(c.kind) + "</b> × " + commas(c.calls) + "<br>data size " + bytes(c.bytes) + "<br>sent on the wire " + bytes(c.wire_bytes);
        } },
        xAxis: { type: "value", axisLabel: { formatter: bytes } },
        yAxis: { type: "category", data: comms.map(function (c) { return c.kind; }) },
        series: [
          { name: "data size", type: "bar", itemStyle: { color: PALETTE[0] }, data: comms.map(function (c) { return c.bytes; }) },
          { name: "sent on the wire", type: "bar", itemStyle: { color: PALETTE[1] }, data: comms.map(function (c) { return c.wire_bytes; }) }
        ]
      };
    });
  }

  // ---- one report -------------------------------------------------------------------------
  function card(root, id, label, value, exact, raw) {
    var node = h("div", { "class": "card", id: id, "data-value": raw === undefined ? null : raw });
    node.innerHTML = '<div class="label">' + esc(label) + '</div><div class="value">' + esc(value) + "</div>" +
      (exact ? '<div class="exact">' + esc(exact) + "</div>" : "");
    root.appendChild(node);
  }
  function runLine(d) {
    var r = d.run, parts = [r.execution + " run", r.mode, r.device];
    if (r.inputs.length) parts.push("inputs " + r.inputs.map(shapeText).join(", "));
    parts.push(r.training ? "training" + (r.optimizer ? " with " + r.optimizer : " (no optimizer)") : "inference");
    if (r.fallback_reason) parts.push("real run: " + r.fallback_reason);
    return parts.join(" · ");
  }

  function renderReport(root, d, prefix, withTitle) {
    var t = d.totals, m = d.memory;
    if (withTitle) {
      root.appendChild(h("h1", null, esc(d.model_type)));
      root.appendChild(h("p", { "class": "run", id: prefix + "run" }, esc(runLine(d))));
    }
    var cards = h("section", { "class": "cards", id: prefix + "totals" });
    function tx(key) { return exact(d, "totals", key); }
    function mx(key) { return exact(d, "memory", key); }
    card(cards, prefix + "total-params", "Parameters", si(t.params), commas(tx("params")), tx("params"));
    card(cards, prefix + "total-trainable", "Trainable", si(t.trainable_params), commas(tx("trainable_params")), tx("trainable_params"));
    card(cards, prefix + "total-used", "Used", si(t.used_params), commas(tx("used_params")) + (t.unused_params ? " · " + commas(tx("unused_params")) + " unused" : ""), tx("used_params"));
    card(cards, prefix + "total-shared", "Shared", si(t.shared_params), commas(tx("shared_params")) + " counted once", tx("shared_params"));
    card(cards, prefix + "total-macs", "MACs (forward)", si(t.macs), commas(tx("macs")), tx("macs"));
    card(cards, prefix + "total-flops", "FLOPs (forward)", si(t.flops), commas(tx("flops")), tx("flops"));
    if (d.run.training) {
      card(cards, prefix + "total-backward-flops", "FLOPs (backward)", si(t.backward_flops), commas(tx("backward_flops")), tx("backward_flops"));
      if (d.run.optimizer) card(cards, prefix + "total-optimizer-flops", "FLOPs (optimizer step)", si(t.optimizer_flops), commas(tx("optimizer_flops")), tx("optimizer_flops"));
    }
    card(cards, prefix + "memory-peak", "Memory peak", bytes(m.peak), commas(mx("peak")) + " B · " + m.peak_phase, mx("peak"));
    card(cards, prefix + "memory-params", "Parameter memory", bytes(m.parameters), commas(mx("parameters")) + " B", mx("parameters"));
    if (d.timing) card(cards, prefix + "latency", "Measured latency", secs(d.timing.latency_median !== undefined ? d.timing.latency_median : d.timing.median), "median, " + d.timing.device);
    if (d.estimate) card(cards, prefix + "estimate", "Est. latency", secs(d.estimate.latency), "estimated" + (d.estimate.hardware && d.estimate.hardware.name ? " on " + d.estimate.hardware.name : ""), d.estimate.latency);
    root.appendChild(cards);
    var notes = [];
    if (d.unused_modules.length) notes.push("Unused modules (never called, weights never read): " + d.unused_modules.map(esc).join(", "));
    var uncounted = Object.keys(d.uncounted_ops);
    if (uncounted.length) notes.push("Operators without a formula (totals are a lower bound): " +
      uncounted.map(function (k) { return esc(k) + " ×" + d.uncounted_ops[k]; }).join(", "));
    if (notes.length) root.appendChild(h("ul", { "class": "notes" }, notes.map(function (x) { return "<li>" + x + "</li>"; }).join("")));

    var treeSection = h("section", { "class": "modules", id: prefix + "modules" }); // may break across printed pages
    treeSection.appendChild(h("h2", null, "Modules"));
    root.appendChild(treeSection);
    timed("tree", function () { Tree(treeSection, d, prefix); });

    var hier = h("section", { id: prefix + "hierarchy" });
    hier.appendChild(h("h2", null, "Where the parameters and MACs are"));
    var switcher = h("div", { "class": "bar noprint" });
    var bParams = h("button", { type: "button", "class": "on" }, "Parameters"), bMacs = h("button", { type: "button" }, "MACs");
    switcher.appendChild(bParams); switcher.appendChild(bMacs);
    switcher.appendChild(h("span", { "class": "notes" }, "click a block to zoom into it; the path below goes back"));
    hier.appendChild(switcher);
    var hierEl = h("div", { "class": "chart", id: prefix + "hierarchy-chart" });
    hier.appendChild(hierEl);
    root.appendChild(hier);
    var current = null;
    function showHierarchy(metric) {
      if (current) {
        if (current.instance) current.instance.dispose();
        if (observer) observer.unobserve(current.el);
        charts.splice(charts.indexOf(current), 1);
      }
      current = hierarchyChart(hierEl, d, metric);
      bParams.className = metric === "params" ? "on" : ""; bMacs.className = metric === "macs" ? "on" : "";
    }
    bParams.addEventListener("click", function () { showHierarchy("params"); });
    bMacs.addEventListener("click", function () { showHierarchy("macs"); });
    timed("hierarchy", function () { showHierarchy(t.params > 0 || t.macs === 0 ? "params" : "macs"); });

    if (d.timeline && d.timeline.values.length) {
      var fig = timelineFigures(d);
      var mem = h("section", { id: prefix + "memory" });
      mem.appendChild(h("h2", null, "Memory through the run"));
      mem.appendChild(h("p", { "class": "notes", id: prefix + "timeline-peak", "data-value": fig.peak, "data-module": fig.module, "data-phase": fig.phase },
        "Peak <b>" + esc(bytes(fig.peak)) + "</b> (" + commas(fig.peak) + " B) in the " + esc(fig.phase) +
        (fig.module ? ", while <b>" + esc(fig.module) + "</b> ran" : "") + ". Live bytes by what they hold" +
        (d.run.training ? " through a steady-state training step (forward, backward, optimizer step)" : " through the forward") + "."));
      var memEl = h("div", { "class": "chart", id: prefix + "timeline-chart" });
      mem.appendChild(memEl);
      root.appendChild(mem);
      timed("timeline", function () { timelineChart(memEl, d, fig); });
    }

    var ops = h("section", { id: prefix + "operators" });
    ops.appendChild(h("h2", null, "Operators and module types"));
    var grid = h("div", { "class": "grid2" });
    var opEl = h("div", { "class": "chart small", id: prefix + "operators-chart" }), typeEl = h("div", { "class": "chart small", id: prefix + "types-chart" });
    grid.appendChild(opEl); grid.appendChild(typeEl); ops.appendChild(grid); root.appendChild(ops);
    timed("operators", function () { operatorChart(opEl, d); });
    timed("types", function () { typeChart(typeEl, d); });

    if (d.estimate && d.layers.estimated_time && d.layers.flops) {
      var roof = h("section", { id: prefix + "roofline" });
      roof.appendChild(h("h2", null, "Estimated time: roofline"));
      var roofEl = h("div", { "class": "chart", id: prefix + "roofline-chart" });
      roof.appendChild(roofEl);
      root.appendChild(roof);
      if (!rooflineChart(roofEl, d)) roof.appendChild(h("p", { "class": "notes" }, "No layer has both an estimated time and moved bytes."));
    }
    if (d.parallel) timed("parallel", function () { parallelSection(root, d, prefix); });
  }

  // ---- a comparison -----------------------------------------------------------------------
  function renderCompare(root, data) {
    var models = data.models;
    root.appendChild(h("h1", null, "Comparison of " + models.length + " models"));
    var metrics = [
      ["Parameters", function (d) { return d.totals.params; }, commas],
      ["Trainable", function (d) { return d.totals.trainable_params; }, commas],
      ["MACs (forward)", function (d) { return d.totals.macs; }, si],
      ["FLOPs (forward)", function (d) { return d.totals.flops; }, si],
      ["Memory peak", function (d) { return d.memory.peak; }, bytes],
      ["Parameter memory", function (d) { return d.memory.parameters; }, bytes]
    ];
    var html = "<table class='compare' id='compare-table'><tr><th>Model</th>" + metrics.map(function (m) { return "<th>" + m[0] + "</th>"; }).join("") + "</tr>";
    models.forEach(function (d, i) {
      html += "<tr data-i='" + i + "'><td>" + esc(d.label) + "</td>" + metrics.map(function (m) {
        var v = m[1](d); return "<td data-v='" + v + "' title='" + commas(v) + "'>" + m[2](v) + "</td>";
      }).join("") + "</tr>";
    });
    root.appendChild(h("section", { "class": "tablewrap" }, html + "</table>"));
    var grid = h("div", { "class": "grid2" });
    root.appendChild(grid);
    [["Parameters", 0], ["FLOPs (forward)", 3], ["Memory peak", 4]].forEach(function (spec) {
      var el = h("div", { "class": "chart small" });
      grid.appendChild(el);
      var metric = metrics[spec[1]];
      chart(el, function () {
        return {
          title: { text: spec[0], textStyle: { fontSize: 13, color: textColor() } },
          grid: { left: 70, right: 20, top: 36, bottom: 60 }, tooltip: { trigger: "axis", valueFormatter: metric[2] },
          xAxis: { type: "category", data: models.map(function (d) { return d.label; }), axisLabel: { rotate: 20 } },
          yAxis: { type: "value", axisLabel: { formatter: metric[2] } },
          series: [{ type: "bar", data: models.map(function (d, i) { return { value: metric[1](d), itemStyle: { color: PALETTE[i % 8] } }; }) }]
        };
      });
    });
    var withTimeline = models.filter(function (d) { return d.timeline && d.timeline.values.length; });
    if (withTimeline.length) {
      var el = h("div", { "class": "chart small" });
      grid.appendChild(el);
      chart(el, function () {
        return {
          title: { text: "Live memory through the run", textStyle: { fontSize: 13, color: textColor() } },
          legend: { top: 20, textStyle: { color: textColor() } }, grid: { left: 80, right: 20, top: 56, bottom: 40 },
          tooltip: { trigger: "axis", valueFormatter: bytes },
          xAxis: { type: "value", min: 0, max: 100, name: "% of the run", nameLocation: "middle", nameGap: 24 },
          yAxis: { type: "value", axisLabel: { formatter: bytes } },
          series: withTimeline.map(function (d, i) {
            var fig = timelineFigures(d), ops = d.timeline.operators, last = ops[ops.length - 1] || 1;
            return { name: d.label, type: "line", step: "end", symbol: "none", itemStyle: { color: PALETTE[i % 8] },
              data: fig.totals.map(function (t, k) { return [100 * ops[k] / last, t]; }) };
          })
        };
      });
    }
    models.forEach(function (d, i) {
      var details = h("details", { "class": "model", id: "model-" + i });
      details.appendChild(h("summary", null, esc(d.label) + " <span class='notes'>" + esc(runLine(d)) + "</span>"));
      root.appendChild(details);
      var drawn = false;
      function draw() { if (!drawn && details.open) { drawn = true; renderReport(details, d, "m" + i + "-", false); } }
      details.addEventListener("toggle", draw);
      if (i === 0) { details.open = true; draw(); }
    });
  }

  // ---- start ------------------------------------------------------------------------------
  initialTheme();
  var app = document.getElementById("app");
  var top = h("div", { "class": "bar noprint", style: "justify-content:flex-end" });
  var themeButton = h("button", { type: "button", id: "theme" }, "Light / dark");
  themeButton.addEventListener("click", function () { setTheme(!isDark()); });
  top.appendChild(themeButton);
  app.appendChild(top);
  if (document.body.getAttribute("data-kind") === "compare") renderCompare(app, DATA);
  else renderReport(app, DATA, "", true);
  app.appendChild(h("footer", null, "Made by torchtally. Charts: Apache ECharts (Apache-2.0), inlined; this page fetches nothing."));
  window.__torchtally = {
    drawAll: drawAll, pending: function () { return charts.filter(function (c) { return !c.instance; }).length; }, ready: true, scriptMs: performance.now() - T0, sinceStart: performance.now(), sections: sections };
  document.body.setAttribute("data-ready", "1");
})();
