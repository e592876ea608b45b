"use strict";
// prefkit report: renders the JSON embedded in this page. No network, no libraries: plain DOM + SVG.
const DATA = JSON.parse(document.getElementById("report-data").textContent);
const PAGE_SIZE = 100;
const CANDIDATE_PAGE_SIZE = 25;
const SVG_NS = "http://www.w3.org/2000/svg";
const state = {
  tab: null, pairSet: 0, candidateSet: 0, candidatePage: 0,
  query: "", minMargin: "", gapMin: "", gapMax: "", truncation: "any",
  sort: "row", page: 0, sample: null, selected: null,
};

// ---- small DOM helpers -------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}
function fmt(value, digits = 3) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value.toLocaleString("en");
    return Math.abs(value) >= 1000 ? value.toFixed(0) : value.toPrecision(digits);
  }
  return String(value);
}
// Element.append(null) would print "null": append only what is there
function put(parent, ...children) {
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) parent.append(child);
}
function promptText(prompt) {
  return Array.isArray(prompt) ? prompt.map((m) => `${m.role}: ${m.content}`).join("\n") : String(prompt ?? "");
}
function turns(prompt) {
  const messages = Array.isArray(prompt) ? prompt : [{ role: "user", content: String(prompt ?? "") }];
  return el("div", { class: "turns" }, messages.map((m) =>
    el("div", { class: `turn turn-${m.role}` }, el("span", { class: "role", text: m.role }), el("div", { class: "text", text: m.content }))));
}
function truncated(finish) { return finish === "length"; }

// ---- tabs ----------------------------------------------------------------------------------------
function availableTabs() {
  const tabs = [];
  if (DATA.pair_sets.length) tabs.push("Pairs");
  if (DATA.candidate_sets.length) tabs.push("Candidates");
  if (DATA.rounds.length) tabs.push("Rounds");
  if (DATA.leaderboard) tabs.push("Checkpoints");
  tabs.push("Provenance");
  return tabs;
}
function showTab(name) {
  state.tab = name;
  const nav = document.getElementById("tabs");
  nav.replaceChildren(...availableTabs().map((tab) => el("button", {
    role: "tab", id: `tab-${tab.toLowerCase()}`, "aria-selected": String(tab === name),
    class: tab === name ? "tab active" : "tab", onclick: () => showTab(tab),
  }, tab)));
  const view = document.getElementById("view");
  view.replaceChildren();
  ({ Pairs: renderPairs, Candidates: renderCandidates, Rounds: renderRounds,
     Checkpoints: renderCheckpoints, Provenance: renderProvenance })[name](view);
}

// ---- pairs ---------------------------------------------------------------------------------------
function matchingPairs(set) {
  const q = state.query.trim().toLowerCase();
  const minMargin = state.minMargin === "" ? null : Number(state.minMargin);
  const gapMin = state.gapMin === "" ? null : Number(state.gapMin);
  const gapMax = state.gapMax === "" ? null : Number(state.gapMax);
  let rows = set.rows.filter((r) => {
    if (minMargin !== null && !(r.margin >= minMargin)) return false;
    if (gapMin !== null && !(r.gap >= gapMin)) return false;
    if (gapMax !== null && !(r.gap <= gapMax)) return false;
    const tc = truncated(r.finish_chosen), tr = truncated(r.finish_rejected);
    if (state.truncation === "none" && (tc || tr)) return false;
    if (state.truncation === "chosen" && !tc) return false;
    if (state.truncation === "rejected" && !tr) return false;
    if (state.truncation === "either" && !(tc || tr)) return false;
    if (q && !(`${r.prompt_id}\n${promptText(r.prompt)}\n${r.chosen}\n${r.rejected}`.toLowerCase().includes(q))) return false;
    return true;
  });
  if (state.sample) rows = rows.filter((r) => state.sample.has(r.row));
  const sorters = {
    row: (a, b) => a.row - b.row,
    "margin-desc": (a, b) => (b.margin ?? -Infinity) - (a.margin ?? -Infinity),
    "margin-asc": (a, b) => (a.margin ?? Infinity) - (b.margin ?? Infinity),
    "gap-desc": (a, b) => (b.gap ?? -Infinity) - (a.gap ?? -Infinity),
    "gap-asc": (a, b) => (a.gap ?? Infinity) - (b.gap ?? Infinity),
    "abs-gap-desc": (a, b) => Math.abs(b.gap ?? 0) - Math.abs(a.gap ?? 0),
    "score-desc": (a, b) => (b.score_chosen ?? -Infinity) - (a.score_chosen ?? -Infinity),
  };
  return rows.slice().sort(sorters[state.sort]);
}

function labelled(label, control) {
  return el("label", { class: "control" }, el("span", { text: label }), control);
}

function renderPairs(view) {
  const set = DATA.pair_sets[state.pairSet];
  const rerender = () => { state.page = 0; showTab("Pairs"); };
  const controls = el("div", { class: "controls", role: "search" },
    DATA.pair_sets.length > 1 ? labelled("Set", el("select", {
      id: "pair-set", onchange: (e) => { state.pairSet = Number(e.target.value); state.selected = null; state.sample = null; rerender(); },
    }, DATA.pair_sets.map((s, i) => el("option", { value: i, selected: i === state.pairSet }, `${s.name} (${s.total} pairs)`)))) : null,
    labelled("Search", el("input", { id: "pair-search", type: "search", value: state.query, placeholder: "text in prompt or answers",
      onchange: (e) => { state.query = e.target.value; rerender(); } })),
    labelled("Margin ≥", el("input", { id: "min-margin", type: "number", step: "any", value: state.minMargin,
      onchange: (e) => { state.minMargin = e.target.value; rerender(); } })),
    labelled(`Length gap (${set.length_unit}) from`, el("input", { id: "gap-min", type: "number", step: "any", value: state.gapMin,
      onchange: (e) => { state.gapMin = e.target.value; rerender(); } })),
    labelled("to", el("input", { id: "gap-max", type: "number", step: "any", value: state.gapMax,
      onchange: (e) => { state.gapMax = e.target.value; rerender(); } })),
    labelled("Truncation", el("select", { id: "truncation", onchange: (e) => { state.truncation = e.target.value; rerender(); } },
      [["any", "any"], ["none", "neither cut"], ["chosen", "chosen cut"], ["rejected", "rejected cut"], ["either", "either cut"]]
        .map(([v, t]) => el("option", { value: v, selected: state.truncation === v }, t)))),
    labelled("Sort", el("select", { id: "sort", onchange: (e) => { state.sort = e.target.value; rerender(); } },
      [["row", "file order"], ["margin-desc", "margin, largest first"], ["margin-asc", "margin, smallest first"],
       ["abs-gap-desc", "|length gap|, largest first"], ["gap-desc", "length gap, largest first"],
       ["gap-asc", "length gap, smallest first"], ["score-desc", "chosen score, highest first"]]
        .map(([v, t]) => el("option", { value: v, selected: state.sort === v }, t)))),
    el("button", { id: "random-sample", type: "button", onclick: () => {
      const pool = matchingPairs(set).map((r) => r.row);
      for (let i = pool.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [pool[i], pool[j]] = [pool[j], pool[i]]; }
      state.sample = new Set(pool.slice(0, PAGE_SIZE)); rerender();
    } }, "Random 100"),
    state.sample ? el("button", { id: "clear-sample", type: "button", onclick: () => { state.sample = null; rerender(); } }, "All matching") : null,
  );
  const rows = matchingPairs(set);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const visible = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  if (!visible.some((r) => r.row === state.selected)) state.selected = visible.length ? visible[0].row : null;
  const dropped = Object.entries(set.dropped);
  const summary = el("p", { class: "summary" },
    `${set.total.toLocaleString("en")} pairs in ${set.name}. `,
    dropped.length ? `Dropped while pairing: ${dropped.map(([k, v]) => `${k} ${v}`).join(", ")}.` : "No prompt was dropped while pairing.");
  const count = el("p", { id: "pair-count", "aria-live": "polite" }, rows.length
    ? `Showing ${state.page * PAGE_SIZE + 1}–${state.page * PAGE_SIZE + visible.length} of ${rows.length.toLocaleString("en")} matching pairs${state.sample ? " (random sample)" : ""}.`
    : "No pair matches these filters.");
  const pager = el("div", { class: "pager" },
    el("button", { id: "prev-page", type: "button", disabled: state.page === 0, onclick: () => { state.page--; showTab("Pairs"); } }, "◀ Previous 100"),
    el("span", { text: ` page ${state.page + 1} of ${pages} ` }),
    el("button", { id: "next-page", type: "button", disabled: state.page >= pages - 1, onclick: () => { state.page++; showTab("Pairs"); } }, "Next 100 ▶"));
  const unit = set.length_unit;
  const table = el("table", { id: "pair-list", class: "list", "aria-label": "pairs; arrow keys move, Enter opens" },
    el("thead", {}, el("tr", {}, ["row", "prompt", "margin", "score ✓", "score ✗", `len ✓ (${unit})`, `len ✗ (${unit})`, "gap", "cut"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, visible.map((r) => el("tr", {
      tabindex: "0", "data-row": r.row, class: r.row === state.selected ? "selected" : null, "aria-selected": String(r.row === state.selected),
      onclick: () => selectPair(r.row), onkeydown: pairKeys,
    },
      el("td", { text: r.row }), el("td", { class: "snippet", text: promptText(r.prompt).slice(0, 90) }),
      el("td", { text: fmt(r.margin) }), el("td", { text: fmt(r.score_chosen) }), el("td", { text: fmt(r.score_rejected) }),
      el("td", { text: fmt(r.len_chosen) }), el("td", { text: fmt(r.len_rejected) }), el("td", { text: fmt(r.gap) }),
      el("td", { text: [truncated(r.finish_chosen) ? "✓ cut" : "", truncated(r.finish_rejected) ? "✗ cut" : ""].filter(Boolean).join(" ") || "–" })))));
  const detail = el("section", { id: "pair-detail", "aria-label": "selected pair" });
  put(view, controls, set.note ? el("p", { class: "note", id: "sample-note", text: set.note }) : null, summary, count, pager,
    el("div", { class: "pairs-layout" }, el("div", { class: "list-wrap" }, table), detail));
  renderPairDetail(set, rows.find((r) => r.row === state.selected), detail, unit);
}

function pairKeys(event) {
  const row = event.currentTarget;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
    if (next) { event.preventDefault(); selectPair(Number(next.dataset.row), true); }
  } else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault(); selectPair(Number(row.dataset.row), true);
  }
}

function selectPair(rowNumber, focus) {
  state.selected = rowNumber;
  showTab("Pairs");
  if (focus) document.querySelector(`#pair-list tr[data-row="${rowNumber}"]`)?.focus();
}

function renderPairDetail(set, pair, detail, unit) {
  if (!pair) { detail.append(el("p", { text: "Select a pair." })); return; }
  const side = (name, mark, text, score, len, chars, finish, eos) => el("div", { class: `side side-${name}` },
    el("h3", {}, `${mark} ${name === "chosen" ? "Chosen" : "Rejected"}`),
    el("p", { class: "meta" }, `score ${fmt(score)} · ${unit === "chars" ? "" : `${fmt(len)} ${unit} · `}${fmt(chars)} characters · ${finish ? `finish: ${finish}${truncated(finish) ? " (cut at the token limit)" : ""}` : "finish reason not recorded"}${eos === false ? " · trained without a closing EOS" : ""}`),
    el("div", { class: "answer", text: text }));
  const extra = pair.extra ? el("dl", { class: "extra" }, Object.entries(pair.extra).flatMap(([k, v]) =>
    [el("dt", { text: k }), el("dd", { text: typeof v === "object" ? JSON.stringify(v) : String(v) })])) : null;
  put(detail,
    el("h2", {}, `Pair at row ${pair.row}`, pair.prompt_id !== null ? ` (prompt ${pair.prompt_id})` : ""),
    el("p", { class: "meta" }, `margin ${fmt(pair.margin)} · length gap ${fmt(pair.gap)} ${unit} (chosen − rejected)`),
    el("h3", { text: "Prompt" }), turns(pair.prompt),
    el("div", { class: "sides" },
      side("chosen", "✓", pair.chosen, pair.score_chosen, pair.len_chosen, pair.chars_chosen, pair.finish_chosen, pair.eos_chosen),
      side("rejected", "✗", pair.rejected, pair.score_rejected, pair.len_rejected, pair.chars_rejected, pair.finish_rejected, pair.eos_rejected)),
    extra);
}

// ---- candidates ----------------------------------------------------------------------------------
function renderCandidates(view) {
  const set = DATA.candidate_sets[state.candidateSet];
  const pages = Math.max(1, Math.ceil(set.rows.length / CANDIDATE_PAGE_SIZE));
  state.candidatePage = Math.min(state.candidatePage, pages - 1);
  const start = state.candidatePage * CANDIDATE_PAGE_SIZE;
  put(view,
    DATA.candidate_sets.length > 1 ? labelled("Set", el("select", { id: "candidate-set",
      onchange: (e) => { state.candidateSet = Number(e.target.value); state.candidatePage = 0; showTab("Candidates"); } },
      DATA.candidate_sets.map((s, i) => el("option", { value: i, selected: i === state.candidateSet }, `${s.name} (${s.total} prompts)`)))) : null,
    set.note ? el("p", { class: "note", text: set.note }) : null,
    el("div", { class: "pager" },
      el("button", { type: "button", disabled: state.candidatePage === 0, onclick: () => { state.candidatePage--; showTab("Candidates"); } }, "◀ Previous"),
      el("span", { text: ` prompts ${start + 1}–${Math.min(start + CANDIDATE_PAGE_SIZE, set.rows.length)} of ${set.rows.length} ` }),
      el("button", { type: "button", disabled: state.candidatePage >= pages - 1, onclick: () => { state.candidatePage++; showTab("Candidates"); } }, "Next ▶")),
    el("div", { id: "candidate-list" }, set.rows.slice(start, start + CANDIDATE_PAGE_SIZE).map((row) => el("article", { class: "candidate" },
      el("h3", { text: `Prompt ${row.prompt_id}` }), turns(row.prompt),
      el("ol", { class: "completions" }, row.completions.map((c) => el("li", { class: c.role ? `picked-${c.role}` : null },
        el("p", { class: "meta" }, [c.role === "chosen" ? "✓ chosen" : c.role === "rejected" ? "✗ rejected" : null,
          c.score !== undefined ? `score ${fmt(c.score)}` : null, c.tokens !== undefined ? `${c.tokens} tokens` : null,
          `${c.chars} characters`, c.finish ? `finish: ${c.finish}` : null].filter(Boolean).join(" · ")),
        el("div", { class: "answer", text: c.text }))))))));
}

// ---- charts --------------------------------------------------------------------------------------
const MARKERS = ["circle", "square", "diamond"];
const DASHES = ["", "6 3", "2 3"];
function scale(domain, range) {
  let [d0, d1] = domain; if (d0 === d1) { d0 -= 1; d1 += 1; }
  return (v) => range[0] + ((v - d0) / (d1 - d0)) * (range[1] - range[0]);
}
function ticks(lo, hi, count = 5) {
  if (lo === hi) return [lo];
  const step = (hi - lo) / (count - 1);
  return Array.from({ length: count }, (_, i) => lo + i * step);
}
function marker(kind, x, y, attrs) {
  if (kind === "square") return svg("rect", { x: x - 4, y: y - 4, width: 8, height: 8, ...attrs });
  if (kind === "diamond") return svg("path", { d: `M${x} ${y - 5}L${x + 5} ${y}L${x} ${y + 5}L${x - 5} ${y}Z`, ...attrs });
  return svg("circle", { cx: x, cy: y, r: 4, ...attrs });
}
// series: [{name, points: [{x, y, lo, hi, label}]}]; band: {lo, hi, label}; onPoint(point)
function chart({ id, title, xLabel, yLabel, series, band, onPoint, integerX, xTickLabels, connect = true }) {
  const W = 460, H = 280, L = 58, R = 14, T = 30, B = 44;
  const points = series.flatMap((s) => s.points).filter((p) => p.y !== null && p.y !== undefined && !Number.isNaN(p.y));
  const root = svg("svg", { id, class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  root.append(svg("title", { text: title }), svg("text", { x: L, y: 18, class: "chart-title", text: title }));
  if (!points.length) { root.append(svg("text", { x: L, y: H / 2, text: "no data" })); return root; }
  const xs = points.map((p) => p.x), ys = points.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]);
  if (band) ys.push(band.lo, band.hi);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = (y1 - y0) * 0.08 || Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad;
  if (x0 === x1) { x0 -= 0.5; x1 += 0.5; }
  const sx = scale([x0, x1], [L, W - R]), sy = scale([y0, y1], [H - B, T]);
  const axis = svg("g", { class: "axis" },
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }), svg("line", { x1: L, y1: T, x2: L, y2: H - B }),
    ticks(y0, y1).map((v) => svg("g", {}, svg("line", { x1: L - 4, y1: sy(v), x2: L, y2: sy(v) }),
      svg("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", text: fmt(v, 3) }))),
    (integerX ? [...new Set(xs)].sort((a, b) => a - b) : ticks(x0, x1)).map((v) => svg("g", {},
      svg("line", { x1: sx(v), y1: H - B, x2: sx(v), y2: H - B + 4 }),
      svg("text", { x: sx(v), y: H - B + 16, "text-anchor": "middle", text: xTickLabels ? xTickLabels[v] ?? "" : fmt(v, 2) }))),
    svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", text: xLabel }),
    svg("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle", text: yLabel }));
  root.append(axis);
  if (band) root.append(svg("rect", { class: "band", x: L, width: W - R - L, y: sy(band.hi), height: Math.max(0, sy(band.lo) - sy(band.hi)) },
    svg("title", { text: band.label })));
  series.forEach((s, index) => {
    const drawn = s.points.filter((p) => p.y !== null && p.y !== undefined && !Number.isNaN(p.y));
    const g = svg("g", { class: `series series-${index}` });
    if (connect && drawn.length > 1) g.append(svg("polyline", { points: drawn.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "), "stroke-dasharray": DASHES[index % 3] }));
    for (const p of drawn) {
      if (p.lo !== undefined && p.lo !== null && p.hi !== undefined && p.hi !== null)
        g.append(svg("line", { class: "errorbar", x1: sx(p.x), x2: sx(p.x), y1: sy(p.lo), y2: sy(p.hi) }));
      const m = marker(MARKERS[index % 3], sx(p.x), sy(p.y), { class: onPoint ? "point clickable" : "point", tabindex: onPoint ? "0" : null });
      m.append(svg("title", { text: `${s.name}${p.label ? ` · ${p.label}` : ""}: ${fmt(p.y)}${p.lo !== undefined && p.lo !== null ? ` [${fmt(p.lo)}, ${fmt(p.hi)}]` : ""}` }));
      if (onPoint) { m.addEventListener("click", () => onPoint(p)); m.addEventListener("keydown", (e) => { if (e.key === "Enter") onPoint(p); }); }
      g.append(m);
      if (p.label && !connect) g.append(svg("text", { x: sx(p.x) + 6, y: sy(p.y) - 6, class: "point-label", text: p.label }));
    }
    root.append(g);
  });
  if (series.length > 1 || band) {
    const legend = svg("g", { class: "legend" });
    series.forEach((s, i) => legend.append(marker(MARKERS[i % 3], W - R - 150, T + 6 + i * 16, { class: `point series-${i}` }),
      svg("text", { x: W - R - 140, y: T + 10 + i * 16, text: s.name })));
    if (band) legend.append(svg("text", { x: W - R - 150, y: T + 10 + series.length * 16, text: `shaded: ${band.label}` }));
    root.append(legend);
  }
  return root;
}
function bars({ id, title, yLabel, items }) {
  // items: [{label, y, lo, hi}] drawn as points with error bars over categorical x
  const s = [{ name: yLabel, points: items.map((it, i) => ({ x: i, y: it.y, lo: it.lo, hi: it.hi, label: it.label })) }];
  return chart({ id, title, xLabel: "", yLabel, series: s, connect: false, integerX: true, xTickLabels: items.map((it) => it.label) });
}

// ---- rounds --------------------------------------------------------------------------------------
function openRound(roundNumber) {
  const name = `round-${String(roundNumber).padStart(2, "0")}`;
  const index = DATA.pair_sets.findIndex((s) => s.name === name);
  if (index < 0) return;
  Object.assign(state, { pairSet: index, page: 0, selected: null, sample: null });
  showTab("Pairs");
}
function roundSeries(name, key, seKey, lowKey, highKey) {
  return { name, points: DATA.rounds.filter((r) => r[key] !== undefined && r[key] !== null).map((r) => ({
    x: r.round, y: r[key], label: `round ${r.round}`,
    lo: seKey && r[seKey] !== null && r[seKey] !== undefined ? r[key] - r[seKey] : lowKey ? r[lowKey] : undefined,
    hi: seKey && r[seKey] !== null && r[seKey] !== undefined ? r[key] + r[seKey] : highKey ? r[highKey] : undefined })) };
}
function renderRounds(view) {
  const onPoint = (p) => openRound(p.x);
  const first = DATA.rounds.find((r) => r.round === 0);
  const lengthBand = first && first.length_chars ? { lo: first.length_chars * 0.9, hi: first.length_chars * 1.1, label: "round 0 length ±10 %" } : null;
  const charts = [
    chart({ id: "chart-reward", title: "Reward per round (± s.e.)", xLabel: "round", yLabel: "reward", integerX: true, onPoint, series: [roundSeries("reward", "reward_mean", "reward_se")] }),
    chart({ id: "chart-kl", title: "KL(π‖π_ref) per round (± s.e.)", xLabel: "round", yLabel: "KL (nats)", integerX: true, onPoint, series: [roundSeries("KL", "kl_mean", "kl_se")] }),
    chart({ id: "chart-length", title: "Held-out length (characters)", xLabel: "round", yLabel: "characters", integerX: true, onPoint, band: lengthBand, series: [roundSeries("length", "length_chars")] }),
  ];
  if (DATA.rounds.some((r) => r.win_vs_previous !== undefined || r.win_vs_initial !== undefined))
    charts.push(chart({ id: "chart-winrate", title: "Judge win rate (bootstrap interval)", xLabel: "round", yLabel: "win rate", integerX: true, onPoint,
      series: [roundSeries("vs previous round", "win_vs_previous", null, "win_vs_previous_low", "win_vs_previous_high"),
               roundSeries("vs initial policy", "win_vs_initial", null, "win_vs_initial_low", "win_vs_initial_high")] }));
  if (DATA.rounds.some((r) => r.length_penalty !== undefined && r.length_penalty !== null))
    charts.push(chart({ id: "chart-lambda", title: "Length penalty λ per round", xLabel: "round", yLabel: "λ", integerX: true, onPoint, series: [roundSeries("λ", "length_penalty")] }));
  const lengthKeys = Object.keys(DATA.rounds.find((r) => r.round > 0) || {}).filter((k) => k.startsWith("len_chosen_") || k.startsWith("len_rejected_"));
  if (lengthKeys.length) charts.push(chart({ id: "chart-pairs", title: "Pair lengths (chosen vs rejected)", xLabel: "round", yLabel: lengthKeys[0].split("_").pop(), integerX: true, onPoint,
    series: lengthKeys.map((k) => roundSeries(k.startsWith("len_chosen") ? "chosen" : "rejected", k)) }));
  const columns = [...new Set(DATA.rounds.flatMap((r) => Object.keys(r)))];
  put(view, el("p", { text: "Click a point or a round's button to open that round's pairs." }),
    el("div", { class: "charts" }, charts),
    el("table", { id: "round-table", class: "list" },
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c })), el("th", { text: "pairs" }))),
      el("tbody", {}, DATA.rounds.map((r) => el("tr", {}, columns.map((c) => el("td", { text: fmt(r[c]) })),
        el("td", {}, r.round > 0 && DATA.pair_sets.some((s) => s.name === `round-${String(r.round).padStart(2, "0")}`)
          ? el("button", { type: "button", class: "open-round", "data-round": r.round, onclick: () => openRound(r.round) }, `Open round ${r.round} pairs`) : "–"))))));
}

// ---- checkpoints ---------------------------------------------------------------------------------
function metricLabel(column) {
  const [evaluator, metric] = column.includes("/") ? column.split("/", 2) : ["", column];
  return metric ? `${metric.replaceAll("_", " ")}${evaluator ? ` (${evaluator})` : ""}` : column;
}
// the standard-error column of a metric, named as the leaderboard names it (reward_mean -> reward_se)
const STANDARD_ERRORS = { reward_mean: "reward_se", kl_mean: "kl_se", win_rate: "standard_error", lc_win_rate: "lc_standard_error" };
function seColumn(column) {
  const cut = column.lastIndexOf("/");
  const prefix = column.slice(0, cut + 1), metric = column.slice(cut + 1);
  return prefix + (STANDARD_ERRORS[metric] ?? (metric.endsWith("_mean") ? metric.replace(/_mean$/, "_se") : `${metric}_se`));
}
function withError(row, column) {
  const y = row[column], se = row[seColumn(column)];
  return se === undefined || se === null ? { y } : { y, lo: y - se, hi: y + se };
}
function renderCheckpoints(view) {
  const board = DATA.leaderboard;
  const constants = Object.entries(board.constant);
  const rows = board.rows;
  const errorColumns = new Set(board.columns.filter((c) => board.columns.some((m) => m !== c && seColumn(m) === c)));
  const columns = board.columns.filter((c) => !errorColumns.has(c));
  put(view,
    constants.length ? el("p", { id: "constant-columns", class: "summary" }, "Same for every checkpoint: ",
      constants.map(([k, v]) => `${metricLabel(k)} = ${fmt(v)}`).join("; ")) : null,
    el("table", { id: "leaderboard", class: "list" },
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: metricLabel(c) })))),
      el("tbody", {}, rows.map((row) => el("tr", {}, columns.map((c) => {
        const se = row[seColumn(c)];
        const value = c === "content_hash" ? String(row[c]).slice(0, 12) : fmt(row[c]);
        return el("td", { text: se !== undefined && se !== null && errorColumns.has(seColumn(c)) ? `${value} ± ${fmt(se, 2)}` : value });
      }))))));
  const charts = [];
  const reward = board.columns.find((c) => c.endsWith("/reward_mean")), kl = board.columns.find((c) => c.endsWith("/kl_mean"));
  if (reward && kl) charts.push(chart({ id: "chart-reward-kl", title: "Reward vs KL (up and left is better)", xLabel: "KL(π‖π_ref), nats",
    yLabel: "reward", connect: false, series: [{ name: "checkpoints", points: rows.map((r) => ({ x: r[kl], label: String(r.subject), ...withError(r, reward) })) }] }));
  for (const c of board.columns.filter((c) => /win_rate$/.test(c)))
    charts.push(bars({ id: `chart-${c.replace(/\W+/g, "-")}`, title: `${metricLabel(c)} (± s.e.)`, yLabel: "win rate (%)",
      items: rows.map((r) => ({ label: String(r.subject), ...withError(r, c) })) }));
  const length = board.columns.find((c) => c.endsWith("/length_chars"));
  if (length) charts.push(bars({ id: "chart-lengths", title: "Mean length in characters (± s.e. over prompts)", yLabel: "characters",
    items: rows.map((r) => ({ label: String(r.subject), ...withError(r, length) })) }));
  view.append(el("div", { class: "charts" }, charts));
}

// ---- provenance ----------------------------------------------------------------------------------
function renderProvenance(view) {
  put(view, el("p", { text: `Source: ${DATA.source}` }), DATA.provenance.map((p) => el("details", { class: "provenance" },
    el("summary", {}, `${p.name}: ${p.path}`),
    el("h3", { text: "Manifest" }), el("pre", { text: JSON.stringify(p.manifest, null, 2) }),
    p.card ? [el("h3", { text: "Data card" }), el("pre", { text: p.card })] : null)));
}

showTab(availableTabs()[0]);
