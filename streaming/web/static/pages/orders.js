// Orders and positions, read-only; refreshed when a signal arrives (orders follow signals)
// and every 10 s.
import { CH, api, badge, esc, live, num, price, qty, signed, stamp, cls } from "../common.js";

function table(head, rows) {
  return `<table class="grid"><thead><tr>${head.map(([h, c]) => `<th class="${c || ""}">${h}</th>`).join("")}</tr></thead><tbody>${rows.join("") || `<tr><td colspan="${head.length}" class="muted">none</td></tr>`}</tbody></table>`;
}

function render(root, d) {
  const positions = d.positions.map((p) => {
    const pnl = p.net_qty > 0 && p.avg_buy_price != null && p.last_price != null ? (p.last_price - p.avg_buy_price) * p.net_qty : null;
    return `<tr><td class="sym">${esc(p.symbol)}</td><td class="num">${qty(p.net_qty)}</td><td class="num">${price(p.avg_buy_price)}</td>
      <td class="num">${price(p.last_price)}</td><td class="num ${cls(pnl)}">${signed(pnl)}</td><td class="num muted">${stamp(p.last_fill_at)}</td></tr>`;
  });
  const orders = d.orders.map((o) => `<tr data-order="${o.id}"><td class="num muted">${stamp(o.created_at)}</td><td class="sym">${esc(o.symbol || "–")}</td>
    <td>${badge(o.side ? o.side.toUpperCase() : "")}</td><td class="num">${qty(o.qty)}</td><td>${esc(o.order_type || "")}</td>
    <td class="num">${price(o.entry)}</td><td class="num">${price(o.stop)}</td><td class="num">${price(o.target)}</td>
    <td>${badge(o.status)}</td><td class="num">${o.filled_qty ? `${qty(o.filled_qty)} @ ${price(o.filled_avg_price)}` : "–"}</td>
    <td class="muted">${esc(o.strategy || "")}</td><td class="muted">${esc(o.reason || o.error || "")}</td><td>${o.paper ? '<span class="tag">paper</span>' : '<span class="tag">live</span>'}</td></tr>`);
  const binary = d.binary_positions.map((p) => `<tr><td>${esc(p.question || p.market_id)}</td><td class="num">${num(p.yes_qty, 1)}</td><td class="num">${num(p.no_qty, 1)}</td>
    <td class="num">${num(p.entry_cost, 2)}</td><td class="num">${num(p.mark_value, 2)}</td><td class="num ${cls(p.profit_loss)}">${signed(p.profit_loss)}</td></tr>`);
  root.innerHTML = `<div class="stack">
    <div class="cols2">
      <div class="panel"><h2>Positions (from fills)</h2>${table([["Symbol"], ["Net qty", "num"], ["Avg buy", "num"], ["Last", "num"], ["Unrealised", "num"], ["Last fill", "num"]], positions)}</div>
      <div class="panel"><h2>Polymarket positions (open)</h2>${table([["Market"], ["YES", "num"], ["NO", "num"], ["Cost", "num"], ["Mark", "num"], ["P/L", "num"]], binary)}</div>
    </div>
    <div class="panel"><h2>Orders <span class="tag">read-only</span></h2><div id="orders">${table(
      [["Created (UTC)", "num"], ["Symbol"], ["Side"], ["Qty", "num"], ["Type"], ["Entry", "num"], ["Stop", "num"], ["Target", "num"], ["Status"], ["Filled", "num"], ["Strategy"], ["Reason"], [""]],
      orders,
    )}</div></div></div>`;
}

export async function start({ root }) {
  let pending = null;
  async function refresh() {
    render(root, await api("/api/orders?limit=200"));
  }
  await refresh();
  setInterval(() => refresh().catch(() => {}), 10000);
  live({ channels: [CH.signals] }, () => {
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch(() => {}), 1500);
  });
}
