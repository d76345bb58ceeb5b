// The footprint as a lightweight-charts custom series (ICustomSeriesPaneView): per bar and
// price row the sells × buys, imbalanced cells highlighted, stacks marked by a bar at the
// column's edge, and the bar statistics (delta, trades, max/min delta, volume) in a strip
// at the bottom of the pane. Numbers are written only where a cell is large enough to read;
// narrower, each cell is shaded by its volume, so 300 bars × 60 rows stay one fill per cell.
const STATS = ["Δ", "trades", "max Δ", "min Δ", "vol"];
const STAT_ROW = 13; // CSS pixels per statistics line
const STACK = 3; // a run of this many imbalanced rows is a stack (the signal marts' default)
const SHADES = [0.15, 0.27, 0.39, 0.51, 0.63, 0.75]; // cell opacity by its share of the largest

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

function short(x) {
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(0)}K`;
  if (a >= 100) return x.toFixed(0);
  return x.toFixed(a >= 10 ? 1 : 2);
}

class FootprintRenderer {
  constructor(owner) {
    this.owner = owner;
    this.data = null;
    this.options = null;
  }

  update(data, options) {
    this.data = data;
    this.options = options;
  }

  draw(target, priceToY) {
    const t0 = performance.now();
    target.useBitmapCoordinateSpace((scope) => this.paint(scope, priceToY));
    this.owner.drawn(performance.now() - t0);
  }

  paint({ context: ctx, bitmapSize, horizontalPixelRatio: hr, verticalPixelRatio: vr }, priceToY) {
    const d = this.data;
    if (!d || !d.visibleRange || !d.bars.length) return;
    const o = this.options;
    const row = o.rowSize;
    const spacing = d.barSpacing * d.conflationFactor;
    const colW = Math.max(1, Math.floor(spacing * hr * 0.9));
    const statsH = o.showStats ? STAT_ROW * STATS.length * vr : 0;
    const bottom = bitmapSize.height - statsH;
    let maxCell = 1;
    for (let i = d.visibleRange.from; i < d.visibleRange.to; i++) {
      for (const c of d.bars[i].originalData.cells) maxCell = Math.max(maxCell, c.buy + c.sell);
    }
    const rowPx = Math.abs((priceToY(0) ?? 0) - (priceToY(row) ?? 0)) * vr;
    const writeCells = colW >= 64 * hr && rowPx >= 10 * vr;
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, bitmapSize.width, bottom);
    ctx.clip();
    ctx.textBaseline = "middle";
    ctx.font = `${Math.round(10 * vr)}px sans-serif`;
    const buyShades = SHADES.map((a) => rgba(o.buyShade, a));
    const sellShades = SHADES.map((a) => rgba(o.sellShade, a));
    const gap = rowPx > 3 ? 1 : 0;
    const h = Math.max(1, Math.round(rowPx) - gap);
    const half = Math.floor(colW / 2);
    for (let i = d.visibleRange.from; i < d.visibleRange.to; i++) {
      const bar = d.bars[i];
      const cells = bar.originalData.cells;
      const left = Math.round(bar.x * hr - colW / 2);
      // stacks: runs of cells whose stack length is at least STACK, per side
      let buyFrom = -1;
      let sellFrom = -1;
      let prevY = 0;
      const mark = (side, from, to) => {
        ctx.fillStyle = side === "buy" ? o.buyColor : o.sellColor;
        ctx.fillRect(side === "buy" ? left + colW - 2 * hr : left, Math.min(from, to), 2 * hr, Math.abs(to - from) + h);
      };
      for (let j = 0; j < cells.length; j++) {
        const c = cells[j];
        const top = priceToY(c.price + row / 2);
        if (top == null) continue;
        const y = Math.round(top * vr);
        const total = c.buy + c.sell;
        const shade = Math.min(SHADES.length - 1, Math.floor((total / maxCell) * SHADES.length));
        ctx.fillStyle = c.buy >= c.sell ? buyShades[shade] : sellShades[shade];
        ctx.fillRect(left, y, colW, h);
        if (c.sell_imbalance) {
          ctx.fillStyle = o.sellColor;
          ctx.fillRect(left, y, half, h);
        }
        if (c.buy_imbalance) {
          ctx.fillStyle = o.buyColor;
          ctx.fillRect(left + half, y, colW - half, h);
        }
        if (writeCells) {
          ctx.fillStyle = o.textColor;
          ctx.textAlign = "right";
          ctx.fillText(short(c.sell), left + half - 4 * hr, y + h / 2);
          ctx.textAlign = "left";
          ctx.fillText(`× ${short(c.buy)}`, left + half - 2 * hr, y + h / 2);
        }
        if (c.buy_stack >= STACK) { if (buyFrom < 0) buyFrom = y; } else if (buyFrom >= 0) { mark("buy", buyFrom, prevY); buyFrom = -1; }
        if (c.sell_stack >= STACK) { if (sellFrom < 0) sellFrom = y; } else if (sellFrom >= 0) { mark("sell", sellFrom, prevY); sellFrom = -1; }
        prevY = y;
      }
      if (buyFrom >= 0) mark("buy", buyFrom, prevY);
      if (sellFrom >= 0) mark("sell", sellFrom, prevY);
    }
    ctx.restore();
    if (o.showStats) this.paintStats(ctx, d, bitmapSize, hr, vr, colW, bottom);
  }

  paintStats(ctx, d, bitmapSize, hr, vr, colW, bottom) {
    const o = this.options;
    ctx.fillStyle = o.statsBackground;
    ctx.fillRect(0, bottom, bitmapSize.width, bitmapSize.height - bottom);
    const write = colW >= 34 * hr;
    ctx.font = `${Math.round(9 * vr)}px sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let i = d.visibleRange.from; i < d.visibleRange.to; i++) {
      const bar = d.bars[i];
      const b = bar.originalData;
      const x = Math.round(bar.x * hr);
      const values = [b.delta, b.trades, b.max_delta, b.min_delta, b.volume];
      for (let k = 0; k < values.length; k++) {
        const y = bottom + (k + 0.5) * STAT_ROW * vr;
        const v = values[k];
        if (k === 0 || !write) {
          ctx.fillStyle = v >= 0 ? o.buyShade : o.sellShade;
          ctx.globalAlpha = write ? 0.35 : 0.7;
          if (k === 0 || !write) ctx.fillRect(x - colW / 2, y - (STAT_ROW * vr) / 2 + vr, colW, STAT_ROW * vr - 2 * vr);
          ctx.globalAlpha = 1;
          if (!write) break;
        }
        ctx.fillStyle = o.textColor;
        ctx.fillText(v == null ? "–" : short(v), x, y);
      }
    }
  }
}

export class FootprintSeries {
  constructor() {
    this._renderer = new FootprintRenderer(this);
    this.draws = []; // milliseconds of each draw (the browser test reads them)
  }

  drawn(ms) {
    this.draws.push(ms);
    if (this.draws.length > 5000) this.draws.splice(0, 1000);
  }

  priceValueBuilder(bar) {
    const cells = bar.cells;
    const lo = cells[0].price;
    const hi = cells[cells.length - 1].price;
    return [lo, hi, (lo + hi) / 2];
  }

  isWhitespace(bar) {
    return !bar.cells || bar.cells.length === 0;
  }

  renderer() {
    return this._renderer;
  }

  update(data, options) {
    this._renderer.update(data, options);
  }

  defaultOptions() {
    return {
      lastValueVisible: false,
      priceLineVisible: false,
      rowSize: 0.01,
      showStats: true,
      buyColor: "rgba(38,166,154,0.95)",
      sellColor: "rgba(239,83,80,0.95)",
      buyShade: "#26a69a",
      sellShade: "#ef5350",
      textColor: "#e6ebf5",
      statsBackground: "#0e121b",
    };
  }
}

export const STATS_LABELS = STATS;
export const STATS_HEIGHT = STAT_ROW * STATS.length;
