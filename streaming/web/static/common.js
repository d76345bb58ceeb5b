// Shared by every page: the token, the API, the live feed, formatting, and the page loader.
// Each page is a module static/pages/<slug>.js exporting start(ctx) (docs/dashboard.md).

const TOKEN_KEY = "marketflow-token";

// The token arrives once as ?token=...: keep it for this tab and take it out of the address
// bar (and so out of history, bookmarks and screen shares) before anything else runs.
(function takeToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given !== null) {
    sessionStorage.setItem(TOKEN_KEY, given);
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
})();

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    ...options,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || res.statusText);
  return data;
}

// One WebSocket per page; reconnects with backoff. onItems receives arrays of {channel, data}.
export function live({ channels, symbols }, onItems) {
  let backoff = 500;
  let ws = null;
  const state = { channels, symbols };
  function url() {
    const q = new URLSearchParams();
    if (state.channels) q.set("channels", state.channels.join(","));
    if (state.symbols) q.set("symbols", state.symbols.join(","));
    if (token()) q.set("token", token());
    const proto = location.protocol === "https:" ? "wss" : "ws";
    return `${proto}://${location.host}/ws?${q}`;
  }
  function connect() {
    ws = new WebSocket(url());
    ws.onopen = () => {
      backoff = 500;
      document.body.dataset.ws = "open";
    };
    ws.onmessage = (ev) => {
      let items;
      try {
        items = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      onItems(items);
    };
    ws.onclose = (ev) => {
      document.body.dataset.ws = "closed";
      if (ev.code === 1013) toast(`Live feed refused: ${ev.reason || "server busy"}; retrying`);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }
  connect();
  return {
    refilter(next) {
      Object.assign(state, next);
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(next));
    },
  };
}

export const CH = {
  candles: "ticks:candles",
  trades: "ticks:trades",
  signals: "signals",
  state: "market_state",
  alerts: "alerts",
  binaryPrices: "binary:prices",
  binaryArb: "binary:arbitrage",
};

// --- formatting -----------------------------------------------------------------------
export function num(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  return Number(x).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

// digits a price near x is shown with: cents from a dollar, more below (a crypto pair
// at 0.0014 trades in 0.0000001, docs/trading-safety.md)
export function priceDigits(x) {
  const a = Math.abs(Number(x));
  if (!(a > 0)) return 2;
  return a >= 1 ? 2 : a >= 0.01 ? 4 : Math.min(10, 4 - Math.floor(Math.log10(a)));
}

export function price(x) {
  if (x === null || x === undefined) return "–";
  return num(x, priceDigits(x));
}

// a quantity: whole shares without decimals, crypto fractions as they are (to 9 digits)
export function qty(x) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  return Number(x).toLocaleString("en-US", { maximumFractionDigits: 9 });
}

export function compact(x) {
  if (x === null || x === undefined) return "–";
  const a = Math.abs(x);
  if (a >= 1e9) return `${num(x / 1e9, 2)}B`;
  if (a >= 1e6) return `${num(x / 1e6, 2)}M`;
  if (a >= 1e3) return `${num(x / 1e3, 1)}K`;
  return num(x, 0);
}

export function signed(x, digits = 2, suffix = "") {
  if (x === null || x === undefined) return "–";
  return `${x > 0 ? "+" : ""}${num(x, digits)}${suffix}`;
}

export function cls(x) {
  return x > 0 ? "up" : x < 0 ? "down" : "";
}

// "09:31" in the market's zone (plus the zone's short name when asked)
export function clock(iso, timeZone, withZone = false) {
  if (!iso) return "–";
  const opts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: timeZone || "UTC" };
  if (withZone) opts.timeZoneName = "short";
  return new Date(iso).toLocaleTimeString("en-GB", opts);
}

export function stamp(iso, timeZone) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString("en-GB", {
    month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZone: timeZone || "UTC",
  });
}

// seconds to add to a UTC epoch to get the wall clock of timeZone at that instant
export function zoneOffset(timeZone, epochSeconds) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: timeZone || "UTC", hourCycle: "h23", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(epochSeconds * 1000));
  const v = Object.fromEntries(parts.map((p) => [p.type, p.value]));
  const wall = Date.UTC(+v.year, +v.month - 1, +v.day, +v.hour, +v.minute, +v.second) / 1000;
  return wall - Math.floor(epochSeconds);
}

// "EST", "GMT", "UTC": the zone's short name at that instant
export function zoneName(timeZone, iso) {
  const when = iso ? new Date(iso) : new Date();
  const part = new Intl.DateTimeFormat("en-US", { timeZone: timeZone || "UTC", timeZoneName: "short" })
    .formatToParts(when)
    .find((p) => p.type === "timeZoneName");
  return part ? part.value : timeZone;
}

export function localEpoch(iso, timeZone) {
  const utc = Math.floor(new Date(iso).getTime() / 1000);
  return utc + zoneOffset(timeZone, utc);
}

export function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function badge(text, extra = "") {
  if (!text) return '<span class="muted">–</span>';
  return `<span class="badge ${esc(text)}">${esc(text)}${extra ? ` ${esc(extra)}` : ""}</span>`;
}

export function pressureBar(buy, sell) {
  const b = Number(buy) || 0;
  const s = Number(sell) || 0;
  if (b + s <= 0) return '<span class="muted">–</span>';
  const pb = (100 * b) / (b + s);
  return `<div class="pressure" title="buy ${num(pb, 0)}% / sell ${num(100 - pb, 0)}%"><div class="b" style="width:${pb}%"></div><div class="s" style="width:${100 - pb}%"></div></div>`;
}

export function flash(node, dir) {
  if (!node || !dir) return;
  node.classList.remove("flash-up", "flash-down");
  void node.offsetWidth;
  node.classList.add(dir > 0 ? "flash-up" : "flash-down");
}

let toastTimer = null;
export function toast(text) {
  const node = document.getElementById("toast");
  if (!node) return;
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (node.hidden = true), 6000);
}

export function failure(container, err) {
  container.innerHTML = `<div class="banner">Could not load: ${esc(err.message || err)}</div>`;
}

// --- boot -----------------------------------------------------------------------------
function tick() {
  const node = document.getElementById("clock");
  if (node) node.textContent = new Date().toLocaleTimeString("en-GB", { hourCycle: "h23", timeZone: "UTC" }) + " UTC";
}

// the symbol box in the top bar: type or pick a symbol, Enter opens its page
function symbolBox() {
  const input = document.getElementById("goto");
  if (!input) return;
  let loaded = false;
  input.addEventListener("focus", async () => {
    if (loaded) return;
    loaded = true;
    try {
      const { symbols } = await api("/api/symbols");
      document.getElementById("goto-symbols").innerHTML = symbols
        .map((s) => `<option value="${esc(s.symbol)}">${esc(s.name || "")}</option>`)
        .join("");
    } catch (_) {
      loaded = false;
    }
  });
  input.addEventListener("keydown", (ev) => {
    const symbol = input.value.trim().toUpperCase();
    if (ev.key === "Enter" && symbol) location.href = `/symbol/${encodeURIComponent(symbol)}`;
  });
}

async function boot() {
  tick();
  symbolBox();
  setInterval(tick, 1000);
  const slug = document.body.dataset.page;
  const params = JSON.parse(document.body.dataset.params || "{}");
  const root = document.getElementById("app");
  try {
    const page = await import(`./pages/${slug}.js`);
    await page.start({ root, params });
    document.body.dataset.ready = "1";
  } catch (err) {
    failure(root, err);
    document.body.dataset.ready = "error";
  }
}

boot();
