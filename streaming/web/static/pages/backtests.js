// Stored backtests, read-only: the runs, and for the chosen run (?run=ID, else the newest)
// its equity curve and drawdown, its metrics per run and per symbol, exits by reason and its
// trades. Nothing here writes; runs are made by `marketflow backtest` or the backtest asset.
import { api, badge, cls, esc, num, price, qty, signed, stamp } from "../common.js";

const COLORS = { equity: "#4c8dff", drawdown: "#ef5350" };
let chart = null;
let points = 0;

function table(id, head, rows) {
  return `<table class="grid" id="${id}"><thead><tr>${head.map(([h, c]) => `<th class="${c || ""}">${h}</th>`).join("")}</tr></thead><tbody>${rows.join("") || `<tr><td colspan="${head.length}" class="muted">none</td></tr>`}</tbody></table>`;
}

const pct = (x, digits = 1) => (x === null || x === undefined ? "–" : `${num(x, digits)}%`);
const share = (x) => (x === null || x === undefined ? "–" : pct(100 * x));
const money = (x) => `<span class="${cls(x)}">${signed(x)}</span>`;
const period = (r) => (r.first_day === r.last_day ? r.first_day : `${r.first_day} → ${r.last_day}`);
const epoch = (iso) => Math.floor(new Date(iso).getTime() / 1000);

function runRow(r, chosen) {
  const symbols = r.symbols || [];
  const shown = symbols.length > 4 ? `${symbols.slice(0, 4).join(", ")} +${symbols.length - 4}` : symbols.join(", ");
  return `<tr class="link${r.run_id === chosen ? " on" : ""}" data-run="${r.run_id}">
    <td class="num muted">#${r.run_id}</td><td class="sym">${esc(r.strategy_name)}</td><td class="num">${esc(period(r))}</td>
    <td title="${esc(symbols.join(", "))}">${esc(shown)}</td><td>${badge(r.status)}</td><td class="num">${num(r.trades, 0)}</td>
    <td class="num">${money(r.total_pnl)}</td><td class="num">${share(r.win_rate)}</td><td class="num">${num(r.profit_factor)}</td>
    <td class="num down">${pct(r.max_drawdown_pct, 2)}</td><td class="num">${num(r.sharpe)}</td><td class="num muted">${stamp(r.started_at)}</td></tr>`;
}

function kv(pairs) {
  return `<dl class="kv">${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

function metrics(m) {
  if (!m) return '<p class="muted">no metrics (the run did not finish)</p>';
  return kv([
    ["Trades", `${num(m.trades, 0)} <span class="muted">(${num(m.wins, 0)} won)</span>`],
    ["Win rate", share(m.win_rate)],
    ["Total P&L", money(m.total_pnl)],
    ["Average P&L", money(m.avg_pnl)],
    ["Profit factor", num(m.profit_factor)],
    ["Max drawdown", `<span class="down">${num(m.max_drawdown)}</span> <span class="muted">(${pct(m.max_drawdown_pct, 2)})</span>`],
    ["Sharpe", num(m.sharpe)],
    ["Sortino", num(m.sortino)],
    ["Exposure", share(m.exposure)],
    ["Avg holding", m.avg_holding_minutes == null ? "–" : `${num(m.avg_holding_minutes, 0)} min`],
  ]);
}

function exits(m) {
  const reasons = Object.entries((m && m.exit_reasons) || {});
  if (!reasons.length) return '<p class="muted">no exits</p>';
  return kv(reasons.map(([k, v]) => [k.replace(/_/g, " "), num(v, 0)]));
}

function bySymbol(map) {
  const rows = Object.entries(map || {}).map(([symbol, m]) => `<tr data-symbol="${esc(symbol)}"><td class="sym">${esc(symbol)}</td>
    <td class="num">${num(m.trades, 0)}</td><td class="num">${share(m.win_rate)}</td><td class="num">${money(m.total_pnl)}</td>
    <td class="num">${money(m.avg_pnl)}</td><td class="num">${num(m.profit_factor)}</td><td class="num down">${pct(m.max_drawdown_pct, 2)}</td>
    <td class="num">${num(m.sharpe)}</td><td class="muted">${esc(Object.entries(m.exit_reasons || {}).map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(", "))}</td></tr>`);
  return table("by-symbol", [["Symbol"], ["Trades", "num"], ["Win rate", "num"], ["P&L", "num"], ["Avg P&L", "num"], ["PF", "num"], ["Max DD", "num"], ["Sharpe", "num"], ["Exits"]], rows);
}

function trades(list, total) {
  const rows = list.map((t) => `<tr data-trade="${t.trade_no}"><td class="num muted">${t.trade_no}</td><td class="sym">${esc(t.symbol)}</td>
    <td>${badge(t.side === "sell" ? "SELL" : "BUY")}</td><td class="num">${qty(t.qty)}</td>
    <td class="num muted">${stamp(t.entry_ts)}</td><td class="num">${price(t.entry_price)}</td>
    <td class="num muted">${stamp(t.exit_ts)}</td><td class="num">${price(t.exit_price)}</td><td>${esc((t.exit_reason || "").replace(/_/g, " "))}</td>
    <td class="num">${money(t.pnl)}</td><td class="num down">${num(t.mae)}</td><td class="num up">${num(t.mfe)}</td>
    <td class="num">${num(t.bars_held, 0)}</td><td>${badge(t.market_state)}</td></tr>`);
  const more = total > list.length ? ` <span class="tag">first ${list.length} of ${total}</span>` : "";
  return `<h2>Trades <span class="tag">times UTC</span>${more}</h2>${table("trades", [
    ["#", "num"], ["Symbol"], ["Side"], ["Qty", "num"], ["Entry", "num"], ["Entry price", "num"], ["Exit", "num"], ["Exit price", "num"],
    ["Reason"], ["P&L", "num"], ["MAE", "num"], ["MFE", "num"], ["Bars", "num"], ["State at entry"],
  ], rows)}`;
}

function drawCurve(el, legend, equity) {
  if (chart) chart.remove();
  chart = null;
  points = 0;
  const LC = window.LightweightCharts;
  if (!LC) {
    el.innerHTML = '<p class="muted pad">Charts are unavailable (see the banner above).</p>';
    return;
  }
  chart = LC.createChart(el, {
    autoSize: true,
    layout: { background: { color: "#121722" }, textColor: "#9aa4b6", fontSize: 11, panes: { separatorColor: "#232b3b" } },
    grid: { vertLines: { color: "#1a2130" }, horzLines: { color: "#1a2130" } },
    rightPriceScale: { borderColor: "#232b3b" },
    timeScale: { borderColor: "#232b3b", timeVisible: true, secondsVisible: false },
    crosshair: { mode: LC.CrosshairMode.Normal },
  });
  const curve = chart.addSeries(LC.AreaSeries, {
    lineColor: COLORS.equity, topColor: "rgba(76,141,255,0.28)", bottomColor: "rgba(76,141,255,0.02)", lineWidth: 2, title: "Equity",
    priceFormat: { type: "custom", minMove: 0.01, formatter: (x) => num(x, 0) },
  });
  const fall = chart.addSeries(LC.AreaSeries, {
    lineColor: COLORS.drawdown, topColor: "rgba(239,83,80,0.05)", bottomColor: "rgba(239,83,80,0.35)", lineWidth: 1,
    invertFilledArea: true, title: "Drawdown",
  }, 1);
  const panes = chart.panes();
  if (panes[1]) panes[1].setHeight(120);
  const rows = equity.map((p) => ({ time: epoch(p.ts), equity: p.equity, drawdown: p.drawdown, open: p.open_positions }));
  curve.setData(rows.map((r) => ({ time: r.time, value: r.equity })));
  fall.setData(rows.map((r) => ({ time: r.time, value: -r.drawdown })));
  chart.timeScale().fitContent();
  points = rows.length;
  const byTime = new Map(rows.map((r) => [r.time, r]));
  const show = (r) => {
    legend.innerHTML = r
      ? `<span class="muted">${stamp(new Date(r.time * 1000).toISOString())} UTC</span> Equity <b>${num(r.equity)}</b> · Drawdown <span class="down">${num(-r.drawdown)}</span> · open ${num(r.open, 0)}`
      : "";
  };
  chart.subscribeCrosshairMove((param) => show(param.time ? byTime.get(param.time) : rows[rows.length - 1]));
  show(rows[rows.length - 1]);
}

function renderRun(box, run) {
  const head = `<div class="symhead"><span class="big">${esc(run.strategy_name)}</span>
    <span class="muted">run #${run.run_id} · ${esc(period(run))} UTC · ${esc((run.symbols || []).join(", "))}</span>
    ${badge(run.status)} <span class="tag">${esc(run.source)}</span> <span class="tag">read-only</span></div>`;
  const failed = run.error ? `<div class="banner">The run failed: ${esc(run.error)}</div>` : "";
  const params = Object.entries(run.parameters || {}).map(([k, v]) => [k.replace(/_/g, " "), v === null ? "–" : esc(typeof v === "object" ? JSON.stringify(v) : v)]);
  box.innerHTML = `${head}${failed}<div class="layout">
      <div class="stack">
        <div class="panel"><h2>Equity and drawdown <span class="tag">UTC</span></h2>
          <div class="chartbox btchart"><div class="legend" id="bt-legend"></div><div class="chart" id="equity"></div></div></div>
        <div class="panel"><h2>By symbol</h2>${bySymbol(run.by_symbol)}</div>
        <div class="panel"><h2>Parameters</h2><div class="kvgrid">${params.map(([k, v]) => `<div><span class="muted">${esc(k)}</span><span>${v}</span></div>`).join("")}</div></div>
      </div>
      <div class="stack">
        <div class="panel"><h2>Metrics</h2><div id="metrics">${metrics(run.metrics)}</div></div>
        <div class="panel"><h2>Exits by reason</h2><div id="exits">${exits(run.metrics)}</div></div>
        <div class="panel"><h2>Run</h2>${kv([["Signals", num(run.signals, 0)], ["Symbol-minutes", num(run.symbol_minutes, 0)],
          ["Started", `${stamp(run.started_at)} UTC`], ["Finished", run.finished_at ? `${stamp(run.finished_at)} UTC` : "–"]])}</div>
      </div>
    </div>
    <div class="panel gaptop">${trades(run.trades_list || [], run.trades || 0)}</div>`;
  drawCurve(box.querySelector("#equity"), box.querySelector("#bt-legend"), run.equity || []);
}

export async function start({ root }) {
  const { runs } = await api("/api/backtests?limit=100");
  if (!runs.length) {
    root.innerHTML = `<div class="panel" id="runs-empty"><h2>Backtests</h2><p class="muted">No backtest stored yet. Run
      <code>marketflow backtest --strategy NAME --from DAY --to DAY</code> or materialise the <code>backtest</code> asset in Dagster.</p></div>`;
    return;
  }
  const wanted = Number(new URLSearchParams(location.search).get("run"));
  let chosen = runs.some((r) => r.run_id === wanted) ? wanted : runs[0].run_id;
  root.innerHTML = `<div class="stack"><div class="panel"><h2>Backtest runs <span class="tag">read-only</span></h2><div class="scroll" id="runs-box"></div></div>
    <div id="run"></div></div>`;
  const list = root.querySelector("#runs-box");
  const box = root.querySelector("#run");
  const head = [["Run", "num"], ["Strategy"], ["Period (UTC)", "num"], ["Symbols"], ["Status"], ["Trades", "num"], ["P&L", "num"],
    ["Win rate", "num"], ["PF", "num"], ["Max DD", "num"], ["Sharpe", "num"], ["Started (UTC)", "num"]];
  const showList = () => (list.innerHTML = table("runs", head, runs.map((r) => runRow(r, chosen))));
  async function open(runId) {
    chosen = runId;
    showList();
    const url = new URL(location.href);
    url.searchParams.set("run", String(runId));
    history.replaceState(history.state, "", url.pathname + url.search);
    renderRun(box, await api(`/api/backtests/${runId}`));
  }
  list.addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-run]");
    if (row && Number(row.dataset.run) !== chosen) open(Number(row.dataset.run)).catch((err) => (box.innerHTML = `<div class="banner">Could not load: ${esc(err.message)}</div>`));
  });
  await open(chosen);
  window.mfBacktest = { run: () => chosen, points: () => points };
}
