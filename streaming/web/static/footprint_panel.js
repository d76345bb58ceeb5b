// The footprint chart of the symbol page: its own lightweight-charts chart under the candles,
// one custom series (footprint_series.js) fed by /api/footprint at the page's timeframe.
import { api, esc } from "./common.js";
import { FootprintSeries, STATS_HEIGHT, STATS_LABELS } from "./footprint_series.js";

// at most this many bars come back when following; as many means the page missed more
const FOLLOW_LIMIT = 60;

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

  const path = (tf, extra) => `/api/footprint?symbol=${encodeURIComponent(symbol)}&tf=${tf}${extra}`;
  const shown = (f) => f.bars.filter((b) => b.cells.length).map((b) => ({ ...b, utc: b.time, time: b.t }));
  let shownTf = null;
  let gen = 0; // each load starts a generation; a follow's answer of an older one is dropped
  let busy = null;

  function describe(tf, ratio) {
    const n = bars.length;
    const stacks = bars.reduce((s, b) => s + b.cells.filter((c) => c.buy_stack >= 3 || c.sell_stack >= 3).length, 0);
    note.innerHTML = `${esc(tf)} · ${n} bars · imbalance ≥ ${ratio}× diagonal · ${stacks} stacked cells · strip: ${STATS_LABELS.map(esc).join(", ")} <span class="muted">(footprint_imbalances, order_flow)</span>`;
    box.dataset.bars = String(n);
  }

  async function load(tf) {
    const mine = ++gen;
    shownTf = null;
    const f = await api(path(tf, "&limit=300"));
    if (mine !== gen) return;
    bars = shown(f);
    series.applyOptions({ rowSize: f.row_size });
    margins();
    series.setData(bars);
    // the newest bars, wide enough to read sells × buys
    const n = bars.length;
    chart.timeScale().setVisibleLogicalRange({ from: Math.max(-1, n - 14), to: n + 1 });
    describe(tf, f.imbalance_ratio);
    shownTf = tf;
  }

  // Follow the market: the bars from the last one shown (that bar again, with the minutes
  // it gained, and any newer ones) merged in with update(), which keeps the user's scroll
  // and zoom; never the whole window again. One request at a time; a timeframe change
  // (load) in between makes the answer stale, and it is dropped.
  async function follow(tf) {
    if (busy) return busy;
    if (!bars.length) return load(tf); // nothing yet: an empty answer costs as little
    if (shownTf !== tf) return;
    const last = bars[bars.length - 1];
    const mine = gen;
    busy = (async () => {
      const f = await api(path(tf, `&from=${encodeURIComponent(last.utc)}&limit=${FOLLOW_LIMIT}`));
      if (mine !== gen) return;
      if (f.bars.length >= FOLLOW_LIMIT) return load(tf); // away too long: start again
      for (const bar of shown(f)) {
        const end = bars[bars.length - 1];
        if (bar.time < end.time) continue;
        if (bar.time === end.time) bars[bars.length - 1] = bar;
        else bars.push(bar);
        series.update(bar);
      }
      describe(tf, f.imbalance_ratio);
    })().finally(() => {
      busy = null;
    });
    return busy;
  }

  return { chart, series, view, load, follow, bars: () => bars };
}
