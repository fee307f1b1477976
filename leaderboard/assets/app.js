// newtonbench leaderboard page. Everything is drawn from the JSON block above with createElement and
// textContent only (never innerHTML), so a model-provided string can never become markup.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("leaderboard-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const ALL = "all";
  const state = { primitive: ALL, distribution: ALL, allMetrics: false, sortKey: null, sortAsc: true,
                  barMetric: "score" };

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function header(f) {
    return f.label + (f.unit ? " (" + f.unit + ")" : "") + (f.arrow ? " " + f.arrow : "");
  }
  // Smaller is better: the same rule as the Python side (MetricInfo.badness).
  function badness(f, v) {
    if (f.target !== null) return (f.target > 0 && v > 0) ? Math.abs(Math.log(v / f.target)) : Infinity;
    if (f.dir === 1) return -v;
    if (f.dir === -1) return v;
    return v;
  }
  // 1, 2 or 5 times a power of ten: axis ticks a reader can add up.
  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const r = raw / p;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * p;
  }
  function sliceRows() { return D.slices[state.primitive + "|" + state.distribution] || []; }
  function visibleFields() { return D.fields.filter(f => state.allMetrics || f.headline); }

  // --- filters -------------------------------------------------------------------------------------
  function fillSelect(sel, options, value) {
    sel.replaceChildren();
    for (const [v, label] of options) {
      const o = el("option", { value: v }, label);
      if (v === value) o.selected = true;
      sel.appendChild(o);
    }
  }
  fillSelect(document.getElementById("f-primitive"), [[ALL, "all primitives"], ...D.primitives.map(p => [p, p])], ALL);
  fillSelect(document.getElementById("f-distribution"),
    [[ALL, "ID and OOD"], ...D.distributions.map(d => [d, D.distLabels[d] || d])], ALL);
  fillSelect(document.getElementById("f-bar-metric"),
    D.fields.filter(f => f.dir !== 0 || f.target !== null).map(f => [f.key, header(f)]), state.barMetric);
  document.getElementById("f-primitive").addEventListener("change", e => { state.primitive = e.target.value; render(); });
  document.getElementById("f-distribution").addEventListener("change", e => { state.distribution = e.target.value; render(); });
  document.getElementById("f-all-metrics").addEventListener("change", e => { state.allMetrics = e.target.checked; renderTable(); });
  document.getElementById("f-bar-metric").addEventListener("change", e => { state.barMetric = e.target.value; renderBars(); });

  // --- table ---------------------------------------------------------------------------------------
  function sortRows(order) {
    if (!state.sortKey) return order;
    const rows = sliceRows();
    if (state.sortKey === "model") {
      order.sort((a, b) => D.models[a].name.localeCompare(D.models[b].name));
      if (!state.sortAsc) order.reverse();
      return order;
    }
    const f = D.fields.find(x => x.key === state.sortKey);
    const val = i => (rows[i] && rows[i][f.key]) ? badness(f, rows[i][f.key][0]) : null;
    order.sort((a, b) => {
      const va = val(a), vb = val(b);
      if (va === null && vb === null) return a - b;
      if (va === null) return 1;   // missing cells always last
      if (vb === null) return -1;
      return state.sortAsc ? va - vb : vb - va;
    });
    return order;
  }

  function renderTable() {
    const fields = visibleFields();
    const rows = sliceRows();
    const thead = document.querySelector("#board thead");
    const tbody = document.querySelector("#board tbody");
    const tr = el("tr");
    const cols = [["rank", "#"], ["model", "model"], ["runs", "runs"], ...fields.map(f => [f.key, header(f)])];
    for (const [key, label] of cols) {
      const f = D.fields.find(x => x.key === key);
      const th = el("th", { "data-key": key, scope: "col" });
      if (f) {
        // Label on one line, unit and arrow on the next: narrow columns, same text content.
        // <wbr> after underscores lets long metric names (kinematic_residual) break without changing the text.
        const name = el("span", { class: "label" });
        (f.label.length > 12 ? f.label.split("_") : [f.label]).forEach((part, k, parts) => {
          name.appendChild(document.createTextNode(part + (k < parts.length - 1 ? "_" : "")));
          if (k < parts.length - 1) name.appendChild(document.createElement("wbr"));
        });
        th.appendChild(name);
        const rest = (f.unit ? " (" + f.unit + ")" : "") + (f.arrow ? " " + f.arrow : "");
        if (rest) th.appendChild(el("span", { class: "unit" }, rest));
      } else {
        th.textContent = label;
      }
      if (key === "model") th.className = "model";
      if (f && f.description) th.title = f.description;
      if (key === state.sortKey) {
        // "ascending" means best first for metrics (sorted by badness), A to Z for names.
        const bestFirst = state.sortAsc;
        th.setAttribute("aria-sort", key === "model" ? (bestFirst ? "ascending" : "descending")
          : (f && f.dir === 1 ? (bestFirst ? "descending" : "ascending") : (bestFirst ? "ascending" : "descending")));
      }
      if (key !== "rank" && key !== "runs") {
        th.addEventListener("click", () => {
          if (state.sortKey === key) state.sortAsc = !state.sortAsc;
          else { state.sortKey = key; state.sortAsc = true; }
          renderTable();
        });
      }
      tr.appendChild(th);
    }
    thead.replaceChildren(tr);
    tbody.replaceChildren();
    const order = sortRows(D.models.map((_, i) => i));
    for (const i of order) {
      const m = D.models[i];
      const row = el("tr", { "data-model": String(i) });
      row.appendChild(el("td", { class: "rank" }, String(i + 1)));
      const name = el("td", { class: "model" });
      name.appendChild(el("span", { class: "swatch", style: "background:" + m.color }));
      if (m.link) {
        const a = el("a", { href: m.link, rel: "noopener noreferrer nofollow" }, m.name);
        name.appendChild(a);
      } else {
        name.appendChild(el("span", { class: "name" }, m.name));
      }
      if (m.card.length) name.title = m.card.map(([k, v]) => k + ": " + v).join("\n");
      row.appendChild(name);
      row.appendChild(el("td", { class: "runs" }, String(m.runs)));
      for (const f of fields) {
        const c = rows[i] ? rows[i][f.key] : null;
        if (!c) { row.appendChild(el("td", { class: "missing", "data-key": f.key }, "—")); continue; }
        const td = el("td", { "data-key": f.key, "data-value": String(c[0]) }, c[2]);
        if (c[3]) td.className = "best";
        row.appendChild(td);
      }
      tbody.appendChild(row);
    }
    const p = state.primitive === ALL ? "all primitives" : state.primitive;
    const d = state.distribution === ALL ? "ID and OOD" : (D.distLabels[state.distribution] || state.distribution);
    document.getElementById("table-title").textContent = "Leaderboard: " + p + ", " + d;
  }

  // --- per-primitive bar charts --------------------------------------------------------------------
  function legend() {
    const box = document.getElementById("legend");
    box.replaceChildren();
    D.models.forEach(m => {
      const s = el("span");
      s.appendChild(el("span", { class: "swatch", style: "background:" + m.color }));
      s.appendChild(document.createTextNode(m.name));
      box.appendChild(s);
    });
  }

  function renderBars() {
    const box = document.getElementById("bars");
    box.replaceChildren();
    const f = D.fields.find(x => x.key === state.barMetric);
    const prims = state.primitive === ALL ? D.primitives : [state.primitive];
    const W = 230, H = 170, L = 40, B = 24, T = 22;
    let vmax = 0;
    for (const p of D.primitives) {
      for (const c of (D.slices[p + "|" + state.distribution] || [])) {
        if (c && c[f.key]) vmax = Math.max(vmax, c[f.key][0] + (c[f.key][1] || 0));
      }
    }
    if (f.target !== null) vmax = Math.max(vmax, f.target);
    vmax = vmax > 0 ? vmax * 1.08 : 1;
    for (const p of prims) {
      const rows = D.slices[p + "|" + state.distribution] || [];
      const div = el("div", { class: "chart", "data-primitive": p });
      const s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
      s.appendChild(svg("text", { x: W / 2, y: 14, "text-anchor": "middle", "font-weight": "600" }, p));
      const y = v => T + (H - T - B) * (1 - v / vmax);
      const tick = niceStep(vmax / 4);
      for (let k = 0; k * tick <= vmax + 1e-12; k++) {
        const v = k * tick;
        s.appendChild(svg("line", { class: "grid", x1: L, x2: W - 6, y1: y(v), y2: y(v) }));
        s.appendChild(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, String(+v.toPrecision(3))));
      }
      if (f.target !== null) {
        s.appendChild(svg("line", { x1: L, x2: W - 6, y1: y(f.target), y2: y(f.target), stroke: "#c0392b",
          "stroke-dasharray": "4 3" }));
      }
      const n = Math.max(1, D.models.length);
      const slot = (W - 6 - L) / n;
      D.models.forEach((m, i) => {
        const c = rows[i] && rows[i][f.key];
        const x = L + i * slot + slot * 0.15, w = slot * 0.7;
        if (!c) {
          s.appendChild(svg("text", { x: x + w / 2, y: H - B - 4, "text-anchor": "middle" }, "—"));
          return;
        }
        const bar = svg("rect", { x: x, y: y(Math.max(0, c[0])), width: w,
          height: Math.max(0, y(0) - y(Math.max(0, c[0]))), fill: m.color, "data-model": String(i) });
        bar.appendChild(svg("title", {}, m.name + ": " + c[2]));
        s.appendChild(bar);
        // The value over the bar: a zero-height bar (nothing scored) still reads "0.000", not blank.
        s.appendChild(svg("text", { x: x + w / 2, y: y(Math.max(0, c[0])) - 3, "text-anchor": "middle",
          "font-size": "10" }, c[2].split(" ± ")[0]));
        if (c[1]) {
          s.appendChild(svg("line", { x1: x + w / 2, x2: x + w / 2, y1: y(c[0] + c[1]), y2: y(Math.max(0, c[0] - c[1])),
            stroke: "#333" }));
        }
      });
      s.appendChild(svg("line", { class: "axis", x1: L, x2: W - 6, y1: y(0), y2: y(0) }));
      s.appendChild(svg("text", { x: W / 2, y: H - 6, "text-anchor": "middle" }, header(f)));
      div.appendChild(s);
      box.appendChild(div);
    }
  }

  // --- fitted vs true acceleration -----------------------------------------------------------------
  function renderScatter() {
    const box = document.getElementById("scatter");
    box.replaceChildren();
    const pts = D.scatter.filter(q => (state.primitive === ALL || q[3] === state.primitive) &&
      (state.distribution === ALL || q[4] === state.distribution));
    const S = 380, L = 46, B = 40, T = 12, R = 12;
    let vmax = D.gravity * 1.1;
    for (const q of pts) vmax = Math.max(vmax, q[1] * 1.05, q[2] * 1.05);
    const x = v => L + (S - L - R) * v / vmax;
    const y = v => T + (S - T - B) * (1 - v / vmax);
    const div = el("div", { class: "chart" });
    const s = svg("svg", { width: S, height: S, viewBox: "0 0 " + S + " " + S, role: "img", id: "scatter-svg" });
    const step = niceStep(vmax / 5);
    for (let v = 0; v <= vmax; v += step) {
      s.appendChild(svg("line", { class: "grid", x1: x(v), x2: x(v), y1: y(0), y2: y(vmax) }));
      s.appendChild(svg("line", { class: "grid", x1: x(0), x2: x(vmax), y1: y(v), y2: y(v) }));
      s.appendChild(svg("text", { x: x(v), y: y(0) + 14, "text-anchor": "middle" }, String(+v.toPrecision(3))));
      s.appendChild(svg("text", { x: x(0) - 5, y: y(v) + 4, "text-anchor": "end" }, String(+v.toPrecision(3))));
    }
    s.appendChild(svg("line", { x1: x(0), y1: y(0), x2: x(vmax), y2: y(vmax), stroke: "#555", "stroke-dasharray": "5 4" }));
    s.appendChild(svg("line", { x1: x(D.gravity), x2: x(D.gravity), y1: y(0), y2: y(vmax), stroke: "#c0392b",
      "stroke-dasharray": "2 3" }));
    s.appendChild(svg("text", { x: x(D.gravity) - 3, y: T + 10, fill: "#c0392b", "text-anchor": "end" },
      "g = " + D.gravity));
    s.appendChild(svg("line", { class: "axis", x1: x(0), x2: x(vmax), y1: y(0), y2: y(0) }));
    s.appendChild(svg("line", { class: "axis", x1: x(0), x2: x(0), y1: y(0), y2: y(vmax) }));
    s.appendChild(svg("text", { x: (L + S - R) / 2, y: S - 6, "text-anchor": "middle" }, "true |a| (m/s²)"));
    s.appendChild(svg("text", { x: 12, y: (T + S - B) / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (T + S - B) / 2 + ")" }, "fitted |a| (m/s²)"));
    for (const q of pts) {
      const m = D.models[q[0]];
      const c = svg("circle", { cx: x(q[1]), cy: y(q[2]), r: 3.2, fill: m.color, "fill-opacity": 0.75,
        "data-model": String(q[0]) });
      c.appendChild(svg("title", {}, m.name + " · " + q[5] + ": true " + q[1].toFixed(2) + ", fitted " + q[2].toFixed(2)));
      s.appendChild(c);
    }
    if (!pts.length) s.appendChild(svg("text", { x: S / 2, y: S / 2, "text-anchor": "middle" }, "no scored clip"));
    div.appendChild(s);
    box.appendChild(div);
  }

  // --- previews and cards (static) -----------------------------------------------------------------
  function renderPreviews() {
    const box = document.getElementById("previews");
    if (!D.previews.some(ex => ex.truth || ex.models.some(Boolean))) { document.getElementById("previews-section").hidden = true; return; }
    const table = el("table");
    const head = el("tr");
    head.appendChild(el("th", {}, "clip"));
    head.appendChild(el("th", {}, "ground truth"));
    D.models.forEach(m => head.appendChild(el("th", { class: "model" }, m.name)));
    table.appendChild(head);
    for (const ex of D.previews) {
      const tr = el("tr");
      tr.appendChild(el("td", {}, ex.primitive + " (" + (D.distLabels[ex.distribution] || ex.distribution) + ")"));
      [ex.truth, ...ex.models].forEach((src, k) => {
        const td = el("td");
        if (src) td.appendChild(el("img", { src: src, alt: ex.clip_id, loading: "lazy", title: ex.clip_id }));
        else td.appendChild(el("div", {}, "—"));
        const verdict = k === 0 ? "ground truth" : (ex.verdicts || [])[k - 1];
        if (verdict) td.appendChild(el("div", { class: "verdict" }, verdict));
        tr.appendChild(td);
      });
      table.appendChild(tr);
    }
    box.appendChild(table);
  }

  function renderCards() {
    const box = document.getElementById("cards");
    const withCards = D.models.filter(m => m.card.length || m.link);
    if (!withCards.length) { document.getElementById("models-section").hidden = true; return; }
    for (const m of withCards) {
      const div = el("div", { class: "card" });
      const h = el("h3");
      h.appendChild(el("span", { class: "swatch", style: "background:" + m.color }));
      h.appendChild(document.createTextNode(m.name));
      div.appendChild(h);
      const dl = el("dl");
      for (const [k, v] of m.card) {
        dl.appendChild(el("dt", {}, k));
        const dd = el("dd");
        if (k === "link" && m.link) dd.appendChild(el("a", { href: m.link, rel: "noopener noreferrer nofollow" }, v));
        else dd.textContent = v;
        dl.appendChild(dd);
      }
      div.appendChild(dl);
      box.appendChild(div);
    }
  }

  function render() { renderTable(); renderBars(); renderScatter(); }

  document.getElementById("subtitle").textContent = D.subtitle;
  document.getElementById("rule").textContent = D.rule;
  document.getElementById("footer").textContent = D.footer;
  legend();
  render();
  renderPreviews();
  renderCards();
  document.body.setAttribute("data-ready", "1");
})();
