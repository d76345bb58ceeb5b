// The session volume profile drawn beside the price axis: one horizontal bar per price level,
// buy volume (green) then sell volume (red), widest level = 20% of the pane; POC outlined.
export class ProfileOverlay {
  constructor(box, chart, series) {
    this.box = box;
    this.chart = chart;
    this.series = series;
    this.levels = [];
    this.session = {};
    this.canvas = document.createElement("canvas");
    this.canvas.className = "vp";
    box.appendChild(this.canvas);
    const redraw = () => this.draw();
    chart.timeScale().subscribeVisibleLogicalRangeChange(redraw);
    new ResizeObserver(redraw).observe(box);
    setInterval(redraw, 500); // the price scale rescales as candles arrive
  }

  setLevels(levels, session) {
    this.levels = levels;
    this.session = session || {};
    this.draw();
  }

  draw() {
    const pane = this.chart.panes()[0];
    const width = this.box.clientWidth;
    const height = pane ? pane.getHeight() : this.box.clientHeight;
    const axis = this.chart.priceScale("right").width();
    const dpr = window.devicePixelRatio || 1;
    const c = this.canvas;
    c.style.left = "0px";
    c.style.top = "0px";
    c.style.width = `${width - axis}px`;
    c.style.height = `${height}px`;
    c.width = Math.max(1, Math.floor((width - axis) * dpr));
    c.height = Math.max(1, Math.floor(height * dpr));
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!this.levels.length) return;
    const prices = this.levels.map((l) => l.price);
    let row = Infinity;
    for (let i = 1; i < prices.length; i++) row = Math.min(row, prices[i] - prices[i - 1]);
    if (!Number.isFinite(row) || row <= 0) row = Math.abs(prices[0]) * 0.001 || 0.01;
    const maxTotal = Math.max(...this.levels.map((l) => l.total || (l.buy || 0) + (l.sell || 0)));
    const maxWidth = (width - axis) * 0.2;
    const right = width - axis - 2;
    for (const l of this.levels) {
      const yTop = this.series.priceToCoordinate(l.price + row / 2);
      const yBot = this.series.priceToCoordinate(l.price - row / 2);
      if (yTop == null || yBot == null) continue;
      const h = Math.max(1, Math.abs(yBot - yTop) - 1);
      const y = Math.min(yTop, yBot);
      const total = l.total || (l.buy || 0) + (l.sell || 0);
      const w = (total / maxTotal) * maxWidth;
      const wb = total > 0 ? (w * (l.buy || 0)) / total : 0;
      const inVa = this.session.val != null && l.price >= this.session.val && l.price <= this.session.vah;
      ctx.globalAlpha = inVa ? 0.55 : 0.3;
      ctx.fillStyle = "#26a69a";
      ctx.fillRect(right - w, y, wb, h);
      ctx.fillStyle = "#ef5350";
      ctx.fillRect(right - w + wb, y, w - wb, h);
      if (this.session.poc != null && Math.abs(l.price - this.session.poc) < row / 2) {
        ctx.globalAlpha = 0.9;
        ctx.strokeStyle = "#f0b90b";
        ctx.strokeRect(right - w, y, w, h);
      }
    }
    ctx.globalAlpha = 1;
  }
}
