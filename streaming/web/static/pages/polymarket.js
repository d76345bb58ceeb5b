// Polymarket: live YES/NO quotes with spread and edge, open opportunities, recent episodes.
import { CH, api, badge, esc, live, num, stamp, cls } from "../common.js";

const cents = (x) => (x == null ? "–" : num(100 * x, 1));

function marketRow(m) {
  return `<td>${esc(m.question || m.market_id)}</td><td class="muted">${esc(m.category || "")}</td>
    <td class="num up">${cents(m.yes_bid)}</td><td class="num up">${cents(m.yes_ask)}</td>
    <td class="num down">${cents(m.no_bid)}</td><td class="num down">${cents(m.no_ask)}</td>
    <td class="num">${cents(m.spread)}</td><td class="num ${cls(m.edge)}">${m.edge == null ? "–" : num(100 * m.edge, 2) + "¢"}</td>
    <td class="num">${num(m.executable_size, 0)}</td><td>${m.arbitrage ? '<span class="badge on">ARB</span>' : ""}${m.stale ? '<span class="tag">stale</span>' : ""}</td>
    <td class="num muted">${stamp(m.ts || m.time)}</td>`;
}

export async function start({ root }) {
  const d = await api("/api/polymarket?limit=100");
  const markets = new Map(d.markets.map((m) => [m.market_id, m]));
  const opps = new Map(d.opportunities.map((o) => [String(o.id), o]));
  root.innerHTML = `<div class="stack">
    <div class="panel"><h2>Markets · YES / NO (¢)</h2><table class="grid" id="markets"><thead><tr><th>Question</th><th>Category</th>
      <th class="num">YES bid</th><th class="num">YES ask</th><th class="num">NO bid</th><th class="num">NO ask</th>
      <th class="num">Spread</th><th class="num">Edge</th><th class="num">Size</th><th></th><th class="num">Updated</th></tr></thead><tbody></tbody></table></div>
    <div class="cols2">
      <div class="panel"><h2>Open opportunities</h2><table class="grid"><thead><tr><th>Kind</th><th>Market / event</th><th class="num">Best edge</th><th class="num">Size</th><th class="num">Opened</th></tr></thead><tbody id="opps"></tbody></table></div>
      <div class="panel"><h2>Recent episodes <span class="tag">${esc(d.episodes_source)}</span></h2><table class="grid"><thead><tr><th>Kind</th><th>Market / event</th><th class="num">Best edge</th><th class="num">Size</th><th class="num">Duration</th><th class="num">Started</th></tr></thead><tbody id="episodes"></tbody></table></div>
    </div></div>`;
  const body = root.querySelector("#markets tbody");
  function drawMarkets() {
    body.innerHTML = "";
    for (const m of markets.values()) {
      const tr = document.createElement("tr");
      tr.dataset.market = m.market_id;
      tr.innerHTML = marketRow(m);
      body.appendChild(tr);
    }
    if (!markets.size) body.innerHTML = '<tr><td colspan="11" class="muted">no active markets</td></tr>';
  }
  function drawOpps() {
    const rows = [...opps.values()].map((o) => `<tr><td>${badge(o.kind)}</td><td>${esc(o.question || o.market_id || o.event_id || "")}</td>
      <td class="num up">${num(100 * (o.best_edge || 0), 2)}¢</td><td class="num">${num(o.size, 0)}</td><td class="num muted">${stamp(o.opened_at)}</td></tr>`);
    document.getElementById("opps").innerHTML = rows.join("") || '<tr><td colspan="5" class="muted">none open</td></tr>';
  }
  const episodes = d.episodes.slice();
  function drawEpisodes() {
    document.getElementById("episodes").innerHTML = episodes.slice(0, 50).map((e) => `<tr><td>${badge(e.kind)}</td><td>${esc(e.question || e.market_id || e.event_id || "")}</td>
      <td class="num">${num(100 * (e.best_edge || 0), 2)}¢</td><td class="num">${num(e.size_at_best_edge, 0)}</td>
      <td class="num">${e.duration_seconds != null ? num(e.duration_seconds, 0) + " s" : "–"}</td><td class="num muted">${stamp(e.started_at)}</td></tr>`).join("") || '<tr><td colspan="6" class="muted">none yet</td></tr>';
  }
  drawMarkets();
  drawOpps();
  drawEpisodes();
  live({ channels: [CH.binaryPrices, CH.binaryArb] }, (items) => {
    let marketsDirty = false;
    for (const { channel, data } of items) {
      if (channel === CH.binaryPrices) {
        const m = markets.get(data.market_id) || { market_id: data.market_id, question: data.symbol };
        markets.set(data.market_id, { ...m, ...data, ts: data.time });
        marketsDirty = true;
      } else if (channel === CH.binaryArb) {
        const key = String(data.opportunity_id ?? `${data.kind}:${data.market_id || data.event_id}`);
        const market = markets.get(data.market_id);
        if (market && !data.question) data.question = market.question;
        if (data.action === "open") opps.set(key, { ...data, id: key });
        else {
          const open = opps.get(key);
          if (open && open.question) data.question = open.question;
          opps.delete(key);
          episodes.unshift({ ...data, started_at: data.opened_at, size_at_best_edge: data.size,
            duration_seconds: data.closed_at ? (new Date(data.closed_at) - new Date(data.opened_at)) / 1000 : null });
          drawEpisodes();
        }
        drawOpps();
      }
    }
    if (marketsDirty) drawMarkets();
  });
}
