// marketflow dashboard: live candles, signals, alerts and market state from the relay.
// No build step and nothing from the internet: plain DOM + canvas. Every value from the
// wire is written with textContent (never innerHTML), so a payload cannot inject markup.
"use strict";

const params = new URLSearchParams(location.search);
const TOKEN = params.get("token") || "";
const MAX_CANDLES = 600;     // kept per symbol in the browser
const CHART_CANDLES = 120;   // drawn
const FEED_ITEMS = 50;

const symbols = new Map();   // symbol -> {symbol, timezone, market, candles: Map(ms -> c), state, row}
let selected = params.get("symbol") ? params.get("symbol").toUpperCase() : null;
let redrawQueued = false;

function withToken(path) {
  if (!TOKEN) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

// --- time in the symbol's market timezone ------------------------------------------------
const formatters = new Map();
function formatter(tz, withDate) {
  const key = tz + (withDate ? "|d" : "");
  if (!formatters.has(key)) {
    const opts = { timeZone: tz, hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) Object.assign(opts, { month: "2-digit", day: "2-digit", second: "2-digit" });
    let f;
    try { f = new Intl.DateTimeFormat("en-GB", opts); }
    catch (e) { f = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: "UTC" }); }
    formatters.set(key, f);
  }
  return formatters.get(key);
}
function tzAbbrev(tz, ms) {
  try {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "short" })
      .formatToParts(new Date(ms));
    const p = parts.find((x) => x.type === "timeZoneName");
    return p ? p.value : tz;
  } catch (e) { return tz; }
}
function parseTime(t) {
  if (typeof t === "number") return t > 1e12 ? t : t * 1000;   // ms or s since the epoch
  if (typeof t === "string") {
    if (/^\d+(\.\d+)?$/.test(t)) return parseTime(Number(t));
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  return Date.now();
}
const fmtTime = (sym, ms) => formatter(sym.timezone, false).format(new Date(ms));
const fmtFull = (sym, ms) => formatter(sym.timezone, true).format(new Date(ms));
function fmtVolume(x) {
  return Number(x).toLocaleString("en-US", { maximumFractionDigits: 4 });  // fractional: crypto
}
function fmtPrice(x) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  const v = Number(x);
  const digits = Math.abs(v) >= 1000 ? 2 : Math.abs(v) >= 1 ? 2 : 4;
  return v.toFixed(digits);
}

// --- model --------------------------------------------------------------------------------
function ensureSymbol(name, info) {
  let sym = symbols.get(name);
  if (!sym) {
    sym = { symbol: name, timezone: "UTC", market: "", candles: new Map(), state: null, row: null };
    symbols.set(name, sym);
  }
  if (info) {
    if (info.timezone) sym.timezone = info.timezone;
    if (info.market) sym.market = info.market;
  }
  if (!sym.row) addRow(sym);
  if (!selected) select(name);
  return sym;
}

function upsertCandle(sym, c) {
  const ms = parseTime(c.time);
  const close = Number(c.close);
  const candle = {
    ms,
    open: c.open !== undefined ? Number(c.open) : close,
    high: c.high !== undefined ? Number(c.high) : close,
    low: c.low !== undefined ? Number(c.low) : close,
    close,
    volume: c.volume !== undefined ? Number(c.volume) : null,
  };
  sym.candles.set(ms, candle);
  if (sym.candles.size > MAX_CANDLES) {
    const oldest = Math.min(...sym.candles.keys());
    sym.candles.delete(oldest);
  }
  return candle;
}

function latestCandle(sym) {
  let best = null;
  for (const c of sym.candles.values()) if (!best || c.ms > best.ms) best = c;
  return best;
}

// --- DOM ----------------------------------------------------------------------------------
function cell(tr, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function addRow(sym) {
  const tbody = document.querySelector("#symbols tbody");
  const tr = document.createElement("tr");
  tr.dataset.symbol = sym.symbol;
  const cells = { name: cell(tr), last: cell(tr, "num"), time: cell(tr), state: cell(tr),
                  conf: cell(tr, "num") };
  cells.name.textContent = sym.symbol;
  cells.last.textContent = "–";
  tr.addEventListener("click", () => select(sym.symbol));
  const rows = Array.from(tbody.children);
  const after = rows.find((r) => r.dataset.symbol > sym.symbol);
  tbody.insertBefore(tr, after || null);
  sym.row = { tr, ...cells };
}

function renderRow(sym) {
  const c = latestCandle(sym);
  if (c) {
    sym.row.last.textContent = fmtPrice(c.close);
    sym.row.time.textContent = fmtTime(sym, c.ms);
  }
  if (sym.state) {
    sym.row.state.textContent = sym.state.state || "";
    sym.row.state.className = sym.state.state || "";
    sym.row.conf.textContent =
      sym.state.confidence !== undefined && sym.state.confidence !== null
        ? Math.round(Number(sym.state.confidence)) + "%" : "";
  }
}

function renderLastCandle() {
  const el = document.getElementById("last-candle");
  const sym = symbols.get(selected);
  const c = sym && latestCandle(sym);
  if (!c) { el.textContent = selected ? selected + ": no candles yet" : "waiting for candles…"; return; }
  el.textContent =
    `${sym.symbol} ${fmtFull(sym, c.ms)} ${tzAbbrev(sym.timezone, c.ms)}  ` +
    `O ${fmtPrice(c.open)}  H ${fmtPrice(c.high)}  L ${fmtPrice(c.low)}  C ${fmtPrice(c.close)}` +
    (c.volume !== null ? `  V ${fmtVolume(c.volume)}` : "");
  el.dataset.symbol = sym.symbol;
  el.dataset.close = String(c.close);
}

function pushFeed(id, text, cls) {
  const list = document.getElementById(id);
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  list.insertBefore(li, list.firstChild);
  while (list.children.length > FEED_ITEMS) list.removeChild(list.lastChild);
}

async function select(name) {
  selected = name;
  for (const s of symbols.values()) if (s.row) s.row.tr.classList.toggle("selected", s.symbol === name);
  const sym = symbols.get(name);
  document.getElementById("chart-title").textContent =
    sym ? `${name} · 1-minute candles · ${sym.timezone}` : name;
  renderLastCandle();
  queueRedraw();
  await loadHistory(name);
}

// --- chart --------------------------------------------------------------------------------
function queueRedraw() {
  if (redrawQueued) return;
  redrawQueued = true;
  (window.requestAnimationFrame || ((f) => setTimeout(f, 16)))(() => { redrawQueued = false; draw(); });
}

function draw() {
  const canvas = document.getElementById("chart");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 800, h = canvas.clientHeight || 420;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const sym = symbols.get(selected);
  if (!sym || sym.candles.size === 0) return;
  const candles = Array.from(sym.candles.values()).sort((a, b) => a.ms - b.ms).slice(-CHART_CANDLES);
  const padR = 64, padB = 22, padT = 8;
  let lo = Infinity, hi = -Infinity;
  for (const c of candles) { lo = Math.min(lo, c.low); hi = Math.max(hi, c.high); }
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const span = hi - lo; hi += span * 0.05; lo -= span * 0.05;
  const y = (p) => padT + (hi - p) / (hi - lo) * (h - padT - padB);
  const step = (w - padR) / Math.max(candles.length, 30);
  const body = Math.max(1, step * 0.6);
  const labelEvery = Math.max(1, Math.ceil(56 / step));  // time labels never overlap (≈ 5 chars)
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#7d8894"; ctx.strokeStyle = "#222b35"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {        // price grid
    const p = lo + (hi - lo) * i / 4, yy = Math.round(y(p)) + 0.5;
    ctx.beginPath(); ctx.moveTo(0, yy); ctx.lineTo(w - padR, yy); ctx.stroke();
    ctx.fillText(fmtPrice(p), w - padR + 4, yy + 4);
  }
  candles.forEach((c, i) => {
    const x = i * step + step / 2;
    const up = c.close >= c.open;
    ctx.strokeStyle = ctx.fillStyle = up ? "#2fbf71" : "#e5534b";
    ctx.beginPath(); ctx.moveTo(Math.round(x) + 0.5, y(c.high)); ctx.lineTo(Math.round(x) + 0.5, y(c.low)); ctx.stroke();
    const top = y(Math.max(c.open, c.close)), bot = y(Math.min(c.open, c.close));
    ctx.fillRect(x - body / 2, top, body, Math.max(1, bot - top));
    if (i % labelEvery === 0) {   // time axis, market tz
      ctx.fillStyle = "#7d8894";
      ctx.fillText(fmtTime(sym, c.ms), Math.max(2, x - 14), h - 6);
    }
  });
}

// --- messages from the relay --------------------------------------------------------------
const handlers = {
  "ticks:candles"(d) {
    if (!d.symbol) return;
    const sym = ensureSymbol(String(d.symbol));
    upsertCandle(sym, d);
    renderRow(sym);
    if (sym.symbol === selected) { renderLastCandle(); queueRedraw(); }
  },
  "ticks:trades"(d) {
    if (!d.symbol || d.price === undefined) return;
    const sym = ensureSymbol(String(d.symbol));
    sym.row.last.textContent = fmtPrice(d.price);
  },
  signals(d) {
    const sym = d.symbol ? ensureSymbol(String(d.symbol)) : null;
    const ms = parseTime(d.time);
    const when = sym ? fmtTime(sym, ms) : new Date(ms).toISOString().slice(11, 16) + "Z";
    pushFeed("signals", `${when} ${d.symbol || ""} ${d.type || "?"} · ${d.strategy || ""}` +
      (d.price !== undefined ? ` @ ${fmtPrice(d.price)}` : ""), d.type);
  },
  alerts(d) {
    const sym = d.symbol ? ensureSymbol(String(d.symbol)) : null;
    const ms = parseTime(d.time);
    const when = sym ? fmtTime(sym, ms) : "";
    const what = d.message || d.kind || d.type || JSON.stringify(d.details || {});
    pushFeed("alerts", `${when} ${d.symbol || ""} ${what}`);
  },
  market_state(d) {
    if (!d.symbol) return;
    const sym = ensureSymbol(String(d.symbol));
    sym.state = d;
    renderRow(sym);
    pushFeed("states", `${fmtTime(sym, parseTime(d.time || d.ts))} ${sym.symbol} ${d.state}` +
      (d.confidence !== undefined ? ` (${Math.round(Number(d.confidence))}%)` : ""), d.state);
  },
  "binary:arbitrage"(d) {
    pushFeed("alerts", `arbitrage ${d.market_id || d.event_id || ""} edge ${d.edge ?? d.best_edge ?? "?"}`);
  },
  "binary:prices"() {},
};

function onFrame(ev) {
  let items;
  try { items = JSON.parse(ev.data); } catch (e) { return; }
  if (!Array.isArray(items)) items = [items];
  for (const item of items) {
    const h = handlers[item.channel];
    if (h && item.data && typeof item.data === "object") {
      try { h(item.data); } catch (e) { console.error("bad message", item, e); }
    }
  }
}

let backoff = 500;
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(withToken(`${proto}//${location.host}/ws`));
  const conn = document.getElementById("conn");
  ws.onopen = () => { backoff = 500; document.body.dataset.ws = "open"; conn.textContent = "live"; };
  ws.onmessage = onFrame;
  ws.onclose = () => {
    document.body.dataset.ws = "closed";
    conn.textContent = "reconnecting…";
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
}

// --- history from PostgreSQL --------------------------------------------------------------
async function getJSON(path) {
  const res = await fetch(withToken(path));
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function loadHistory(name) {
  try {
    const data = await getJSON(`/api/candles?symbol=${encodeURIComponent(name)}&limit=390`);
    const sym = ensureSymbol(name, { timezone: data.timezone });
    for (const c of data.candles) upsertCandle(sym, c);
    renderRow(sym);
    if (name === selected) { renderLastCandle(); queueRedraw(); }
  } catch (e) { console.warn("history unavailable", e); }
}

async function loadSymbols() {
  const note = document.getElementById("symbols-note");
  try {
    const data = await getJSON("/api/symbols");
    for (const s of data.symbols) {
      const sym = ensureSymbol(s.symbol, s);
      if (s.state) { sym.state = { state: s.state, confidence: s.confidence }; renderRow(sym); }
    }
    note.textContent = "";
  } catch (e) { note.textContent = "symbol list unavailable (database down?); live data still shown"; }
  try {
    const data = await getJSON("/api/signals?limit=20");
    for (const s of data.signals.reverse()) handlers.signals(s.ts ? { ...s, time: s.ts } : s);
  } catch (e) { /* live signals still arrive */ }
  if (params.get("symbol")) { ensureSymbol(selected); select(selected); }
}

setInterval(() => { document.getElementById("clock").textContent = new Date().toISOString().slice(0, 19) + "Z"; }, 1000);
window.addEventListener("resize", queueRedraw);
connect();
loadSymbols();
