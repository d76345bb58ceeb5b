// The footprint chart of the symbol page: its own lightweight-charts chart under the candles,
// one custom series (footprint_series.js) fed by /api/footprint at the page's timeframe.
import { api, esc } from "./common.js";
import { FootprintSeries, STATS_HEIGHT, STATS_LABELS } from "./footprint_series.js";

export function footprintPanel(LC, box, symbol) {
  const el = box.querySelector(".chart");
  const chart = LC.createChart(el, {
    autoSize: true,
    layout: { background: { color: "#121722" }, textColor: "#9aa4b6", fontSize: 11 },
    grid: { vertLines: { visible: false }, horzLines: { color: "#1a2130" } },
    rightPriceScale: { borderColor: "#232b3b" },
    timeScale: { borderColor: "#232b3b", timeVisible: true, secondsVisible: false, rightOffset: 2, barSpacing: 70, minBarSpacing: 2 },
  });
  const view = new FootprintSeries();
  const series = chart.addCustomSeries(view, { rowSize: 0.01 });
  const note = box.querySelector(".fp-note");
  let bars = [];

  function margins() {
    const h = el.clientHeight || 420;
    series.priceScale().applyOptions({ scaleMargins: { top: 0.04, bottom: Math.min(0.6, (STATS_HEIGHT + 8) / h) } });
  }

  async function load(tf) {
    const f = await api(`/api/footprint?symbol=${encodeURIComponent(symbol)}&tf=${tf}&limit=300`);
    bars = f.bars.filter((b) => b.cells.length).map((b) => ({ ...b, time: b.t }));
    series.applyOptions({ rowSize: f.row_size });
    margins();
    series.setData(bars);
    // the newest bars, wide enough to read sells × buys
    const n = bars.length;
    chart.timeScale().setVisibleLogicalRange({ from: Math.max(-1, n - 14), to: n + 1 });
    const stacks = bars.reduce((s, b) => s + b.cells.filter((c) => c.buy_stack >= 3 || c.sell_stack >= 3).length, 0);
    note.innerHTML = `${esc(tf)} · ${n} bars · imbalance ≥ ${f.imbalance_ratio}× diagonal · ${stacks} stacked cells · strip: ${STATS_LABELS.map(esc).join(", ")} <span class="muted">(footprint_imbalances, order_flow)</span>`;
    box.dataset.bars = String(n);
  }

  return { chart, series, view, load, bars: () => bars };
}
