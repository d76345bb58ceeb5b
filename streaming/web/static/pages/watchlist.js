// Watchlist: one row per symbol, live prices, states, signals.
import { CH, api, badge, clock, cls, compact, esc, flash, live, pressureBar, price, signed, num } from "../common.js";

// [header, class, the row field a click on the header sorts by]
const COLUMNS = [
  ["Symbol", "", "symbol"], ["Last", "num", "last_price"], ["Chg", "num", "price_change"],
  ["Chg %", "num", "price_change_pct"], ["Time", "num", "last_price_at"],
  ["State", "", "market_state"], ["Pressure", "", "buy_pressure"], ["CVD", "num", "session_cvd"],
  ["POC", "num", "session_poc"], ["VAL – VAH", "num", "session_val"],
  ["Nearest LVN", "num", "nearest_lvn"], ["Last signal", "", "last_signal_at"],
];

function cells(r) {
  const chg = r.price_change;
  return [
    `<td><span class="sym">${esc(r.symbol)}</span> <span class="muted">${esc(r.name || "")}</span></td>`,
    `<td class="num" data-f="last">${price(r.last_price)}</td>`,
    `<td class="num ${cls(chg)}">${signed(chg, 2)}</td>`,
    `<td class="num ${cls(chg)}">${signed(r.price_change_pct, 2, "%")}</td>`,
    `<td class="num muted">${clock(r.last_price_at, r.timezone)}</td>`,
    `<td data-f="state">${badge(r.market_state, r.state_confidence != null ? num(r.state_confidence, 0) + "%" : "")}</td>`,
    `<td>${pressureBar(r.buy_pressure, r.sell_pressure)}</td>`,
    `<td class="num ${cls(r.session_cvd)}">${compact(r.session_cvd)}</td>`,
    `<td class="num" title="session profile${r.profile_at ? ` of ${clock(r.profile_at, r.timezone)}` : ""}">${price(r.session_poc)}</td>`,
    `<td class="num">${r.session_val != null ? `${price(r.session_val)} – ${price(r.session_vah)}` : "–"}</td>`,
    `<td class="num">${price(r.nearest_lvn)}</td>`,
    `<td data-f="signal">${r.last_signal_type ? `${badge(r.last_signal_type)} <span class="muted">${esc(r.last_signal_strategy || "")} ${clock(r.last_signal_at, r.timezone)}</span>` : '<span class="muted">–</span>'}</td>`,
  ].join("");
}

export async function start({ root }) {
  const data = await api("/api/watchlist");
  const rows = new Map(data.rows.map((r) => [r.symbol, r]));
  root.innerHTML = `
    <div class="panel">
      <h2>Watchlist <span class="tag">${data.source === "raw" ? "raw tables" : esc(data.source)}</span></h2>
      <table class="grid" id="watchlist">
        <thead><tr>${COLUMNS.map(([h, c, key]) => `<th class="${c} sortable" data-sort="${key}">${h}</th>`).join("")}</tr></thead>
        <tbody></tbody>
      </table>
      <p class="muted src" id="wl-src">${data.source === "raw"
        ? "POC and value area: each symbol's latest session profile run (profile_metrics), read now."
        : "POC and value area: the watchlist_latest mart, rebuilt every 5 minutes, so up to 5 minutes behind the symbol page."}
        The market state is the engine's latest; its confidence is in points (0–100).</p>
    </div>`;
  const body = root.querySelector("tbody");
  for (const r of rows.values()) {
    const tr = document.createElement("tr");
    tr.className = "link";
    tr.dataset.symbol = r.symbol;
    tr.innerHTML = cells(r);
    tr.addEventListener("click", () => (location.href = `/symbol/${encodeURIComponent(r.symbol)}`));
    body.appendChild(tr);
  }
  // click a header to sort by it (again: the other way); rows without a value go last
  let sortKey = null;
  let sortDir = 1;
  root.querySelector("thead").addEventListener("click", (ev) => {
    const key = ev.target.dataset && ev.target.dataset.sort;
    if (!key) return;
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    for (const th of root.querySelectorAll("th")) th.dataset.dir = th.dataset.sort === key ? (sortDir > 0 ? "asc" : "desc") : "";
    const value = (tr) => rows.get(tr.dataset.symbol)[key];
    const trs = [...body.children].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      if (x == null || y == null) return (x == null) - (y == null);
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
    });
    for (const tr of trs) body.appendChild(tr);
  });

  function redraw(symbol, dir) {
    const tr = body.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
    if (!tr) return;
    tr.innerHTML = cells(rows.get(symbol));
    flash(tr.querySelector('[data-f="last"]'), dir);
  }
  live({ channels: [CH.candles, CH.state, CH.signals] }, (items) => {
    const touched = new Map();
    for (const { channel, data: d } of items) {
      const r = rows.get(d.symbol);
      if (!r) continue;
      if (channel === CH.candles) {
        if (r.last_price_at && d.time < r.last_price_at) continue;
        const dir = r.last_price != null ? Math.sign(d.close - r.last_price) : 0;
        r.last_price = d.close;
        r.last_price_at = d.time;
        if (r.previous_close) {
          r.price_change = d.close - r.previous_close;
          r.price_change_pct = (100 * r.price_change) / r.previous_close;
        }
        touched.set(d.symbol, dir || touched.get(d.symbol) || 0);
      } else if (channel === CH.state) {
        r.market_state = d.state;
        r.state_confidence = d.confidence;
        touched.set(d.symbol, touched.get(d.symbol) || 0);
      } else if (channel === CH.signals) {
        r.last_signal_type = d.type;
        r.last_signal_strategy = d.strategy;
        r.last_signal_at = d.time;
        touched.set(d.symbol, touched.get(d.symbol) || 0);
      }
    }
    for (const [symbol, dir] of touched) redraw(symbol, dir);
  });
}
