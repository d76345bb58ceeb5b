// The levels drawn on the candle chart, by family, each family switched from the legend:
// POC/VA, nodes (LVN/HVN), naked POCs, the session VWAP with its ±1/2/3 sd bands, and the
// initial balance. A level outside the visible price range keeps its line but loses its
// axis label and title, so the price axis only names what is on screen.
export const FAMILIES = [
  ["pocva", "POC/VA"],
  ["nodes", "Nodes"],
  ["naked", "Naked POCs"],
  ["vwap", "VWAP"],
  ["ib", "IB"],
];
const VWAP_COLOR = "#e0e0e0";
const BAND_COLORS = ["rgba(224,224,224,0.55)", "rgba(224,224,224,0.38)", "rgba(224,224,224,0.24)"];
const IB_COLOR = "#4dd0e1";

export class LevelLines {
  constructor(LC, chart, candles, colors) {
    this.LC = LC;
    this.chart = chart;
    this.candles = candles;
    this.colors = colors;
    this.on = Object.fromEntries(FAMILIES.map(([key]) => [key, true]));
    this.lines = []; // {family, price, title, line}
    const line = (color, width, style) =>
      chart.addSeries(LC.LineSeries, {
        color, lineWidth: width, lineStyle: style, priceLineVisible: false, lastValueVisible: false,
        crosshairMarkerVisible: false, priceFormat: candles.options().priceFormat,
      });
    this.vwapLine = line(VWAP_COLOR, 2, LC.LineStyle.Solid);
    this.bands = [1, 2, 3].flatMap((k) => [+k, -k].map((s) => ({ k: s, series: line(BAND_COLORS[k - 1], 1, LC.LineStyle.Dashed) })));
    this.lastVwap = null;
    const relabel = () => this.relabel();
    chart.timeScale().subscribeVisibleLogicalRangeChange(relabel);
    setInterval(relabel, 500); // the price scale rescales as candles arrive
  }

  set(p) {
    for (const l of this.lines) this.candles.removePriceLine(l.line);
    this.lines = [];
    const { LC, colors } = this;
    const s = p.session || {};
    const add = (family, price, color, title, style, width = 1) => {
      if (price == null) return;
      const line = this.candles.createPriceLine({ price, color, title, lineStyle: style, lineWidth: width, axisLabelVisible: true });
      this.lines.push({ family, price, title, line });
    };
    add("pocva", s.poc, colors.poc, "POC", LC.LineStyle.Solid, 2);
    add("pocva", s.vah, colors.va, "VAH", LC.LineStyle.Dashed);
    add("pocva", s.val, colors.va, "VAL", LC.LineStyle.Dashed);
    for (const n of s.lvns || []) add("nodes", n.price, colors.lvn, "LVN", LC.LineStyle.Dotted);
    for (const n of s.hvns || []) add("nodes", n.price, colors.hvn, "HVN", LC.LineStyle.Dotted);
    for (const n of p.naked_pocs || []) add("naked", n.poc, colors.naked, `nPOC ${String(n.session_date).slice(5)}`, LC.LineStyle.LargeDashed);
    add("ib", s.ib_high, IB_COLOR, "IB high", LC.LineStyle.SparseDotted, 2);
    add("ib", s.ib_low, IB_COLOR, "IB low", LC.LineStyle.SparseDotted, 2);
    this.relabel();
  }

  vwap(rows) {
    const pf = this.candles.options().priceFormat;
    this.vwapLine.applyOptions({ priceFormat: pf });
    this.vwapLine.setData(rows.map((r) => ({ time: r.t, value: r.vwap })));
    for (const b of this.bands) {
      b.series.applyOptions({ priceFormat: pf });
      b.series.setData(rows.map((r) => ({ time: r.t, value: r.vwap + b.k * r.sd })));
    }
    this.lastVwap = rows.length ? rows[rows.length - 1] : null;
    this.relabel();
  }

  // the rows from the last bar shown (that bar again and newer ones), merged in with
  // update() so the chart's scroll and zoom stay as the user left them
  followVwap(rows) {
    let last = this.lastVwap;
    for (const r of rows) {
      if (last && r.t < last.t) continue;
      this.vwapLine.update({ time: r.t, value: r.vwap });
      for (const b of this.bands) b.series.update({ time: r.t, value: r.vwap + b.k * r.sd });
      last = r;
    }
    this.lastVwap = last;
    this.relabel();
  }

  toggle(family) {
    this.on[family] = !this.on[family];
    this.relabel();
    return this.on[family];
  }

  // the prices at the pane's top and bottom edges
  visiblePrices() {
    const pane = this.chart.panes()[0];
    const h = pane ? pane.getHeight() : 0;
    const a = this.candles.coordinateToPrice(0);
    const b = this.candles.coordinateToPrice(h);
    if (a == null || b == null) return null;
    return [Math.min(a, b), Math.max(a, b)];
  }

  relabel() {
    const range = this.visiblePrices();
    const inside = (x) => range != null && x >= range[0] && x <= range[1];
    for (const l of this.lines) {
      const on = this.on[l.family];
      const show = on && inside(l.price);
      l.line.applyOptions({ lineVisible: on, axisLabelVisible: show, title: show ? l.title : "" });
      l.labelled = show;
    }
    const v = this.on.vwap;
    const last = this.lastVwap;
    this.vwapLine.applyOptions({ visible: v, lastValueVisible: !!(v && last && inside(last.vwap)), title: "VWAP" });
    for (const b of this.bands) {
      const at = last ? last.vwap + b.k * last.sd : null;
      b.series.applyOptions({ visible: v, lastValueVisible: !!(v && last && inside(at)), title: `${b.k > 0 ? "+" : "−"}${Math.abs(b.k)}σ` });
    }
  }

  // what the price axis names now: titles of the labelled levels (the browser test reads it)
  labelled() {
    const out = this.lines.filter((l) => l.labelled).map((l) => l.title);
    const last = this.lastVwap;
    if (this.vwapLine.options().lastValueVisible) out.push("VWAP");
    for (const b of this.bands) if (last && b.series.options().lastValueVisible) out.push(`${b.k > 0 ? "+" : "−"}${Math.abs(b.k)}σ`);
    return out;
  }
}
