// Symbol detail: candles per timeframe with the session profile beside the price axis,
// POC/VA/LVN/HVN and naked-POC lines, signal markers, delta and CVD panes, state and alerts.
import { CH, api, badge, clock, cls, compact, esc, live, localEpoch, num, price, priceDigits, qty, signed, zoneName, zoneOffset } from "../common.js";
import { ProfileOverlay } from "../profile_overlay.js";
import { footprintPanel } from "../footprint_panel.js";
import { LevelLines, FAMILIES } from "../level_lines.js";

// how often the footprint and the VWAP follow the market while the tab is visible (besides
// each new live minute): the profile run that writes their rows lags the live candles
const FOLLOW_MS = 10000;
const TF_SECONDS = { "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "1d": 86400 };
const COLORS = { up: "#26a69a", down: "#ef5350", poc: "#f0b90b", va: "#4c8dff", lvn: "#7d889c", hvn: "#ff9f43", naked: "#b07cff" };

function layout(symbol, tf) {
  return `
  <div class="symhead">
    <span class="big">${esc(symbol)}</span><span class="muted" id="name"></span>
    <span class="price" id="last-price">–</span><span id="change"></span>
    <span id="state-head"></span>
    <span class="spacer"></span>
    <div class="tfs" id="tfs">${Object.keys(TF_SECONDS).map((t) => `<button data-tf="${t}" class="${t === tf ? "on" : ""}">${t}</button>`).join("")}</div>
  </div>
  <div class="layout">
    <div>
      <div class="chartbox" id="chartbox"><div class="chart" id="chart"></div><div class="legend" id="legend"></div>
        <div class="families" id="families">${FAMILIES.map(([key, label]) => `<button class="act on" data-family="${key}">${label}</button>`).join("")}</div></div>
      <div class="chartbox fpchart" id="fpbox"><div class="fp-note muted"></div><div class="chart"></div></div>
    </div>
    <div class="stack">
      <div class="panel"><h2>Market state</h2><div id="state"></div></div>
      <div class="panel"><h2>Session profile</h2><dl class="kv" id="levels"></dl></div>
      <div class="panel"><h2>Signals</h2><ul class="feed" id="signals"></ul></div>
      <div class="panel"><h2>Alerts</h2><ul class="feed" id="alerts"><li class="muted">none yet</li></ul></div>
    </div>
  </div>`;
}

export async function start({ root, params }) {
  const symbol = params.symbol.toUpperCase();
  let tf = new URL(location.href).searchParams.get("tf") || "1m";
  if (!TF_SECONDS[tf]) tf = "1m";
  root.innerHTML = layout(symbol, tf);
  const LC = window.LightweightCharts;
  const chart = LC ? makeChart(LC, document.getElementById("chart")) : null;
  if (!chart) document.getElementById("chart").innerHTML = '<p class="muted" style="padding:20px">Chart library missing (see the banner above); live prices still update.</p>';
  let tz = "UTC";
  let bars = [];
  let minutes = new Map(); // the current bar's 1-minute candles, by local epoch
  let signals = [];
  let lastMinute = 0;
  const state = { symbol };
  const $ = (id) => document.getElementById(id);
  const footprint = LC ? footprintPanel(LC, $("fpbox"), symbol) : null;
  // how old a number is, said beside it (the page shows values of different sources)
  const age = (iso) => {
    if (!iso) return "–";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : s < 172800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`;
  };

  const bucket = (t) => Math.floor(t / TF_SECONDS[tf]) * TF_SECONDS[tf];
  const toBar = (c) => ({ time: c.t, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume });

  function legend(bar) {
    if (!bar) return;
    const d = new Date(bar.time * 1000);
    const when = d.toLocaleString("en-GB", { timeZone: "UTC", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    // bar times are market wall-clock seconds: name the zone the axis is in
    const zone = zoneName(tz, new Date((bar.time - zoneOffset(tz, bar.time)) * 1000).toISOString());
    $("legend").innerHTML = `<span class="muted">${esc(symbol)} · ${tf} · ${when} ${esc(zone)}</span> O ${price(bar.open)} H ${price(bar.high)} L ${price(bar.low)} <span class="${cls(bar.close - bar.open)}">C ${price(bar.close)}</span>`;
  }

  function head(last, prevClose) {
    $("last-price").textContent = price(last);
    if (prevClose) {
      const chg = last - prevClose;
      $("change").className = cls(chg);
      $("change").textContent = `${signed(chg)} (${signed((100 * chg) / prevClose, 2, "%")})`;
    }
  }

  function showState(s) {
    if (!s) {
      $("state").innerHTML = '<span class="muted">no state yet</span>';
      return;
    }
    // the engine sends confidence in points, 0-100 (docs/semantics.md, market state)
    const conf = s.confidence != null ? `${num(s.confidence, 0)}%` : "";
    $("state-head").innerHTML = badge(s.state, conf);
    $("state").innerHTML = `<div class="row">${badge(s.state, conf)} <span class="muted">${clock(s.time || s.ts, tz)} ${esc(zoneName(tz, s.time || s.ts))}</span></div>
      <dl class="kv"><dt>Judged on POC</dt><dd>${price(s.poc)} <span class="muted src" id="state-src">engine, ${esc(age(s.time || s.ts))}</span></dd>
      ${s.val != null ? `<dt>Value area</dt><dd>${price(s.val)} – ${price(s.vah)}</dd>` : ""}
      <dt>Balance</dt><dd>${s.balance_low != null ? `${price(s.balance_low)} – ${price(s.balance_high)}` : "–"}</dd></dl>`;
    $("state").dataset.state = s.state;
  }

  function addSignal(s) {
    signals.push(s);
    const li = document.createElement("li");
    li.innerHTML = `<span class="t">${clock(s.time || s.ts, tz)}</span>${badge(s.type)} <span>${esc(s.strategy || "")}</span> <span class="num muted">${price(s.price)}</span>`;
    const ul = $("signals");
    if (ul.firstChild && ul.firstChild.classList && ul.firstChild.classList.contains("muted")) ul.innerHTML = "";
    ul.prepend(li);
    if (chart) chart.markers(signals.map((g) => ({ time: bucket(localEpoch(g.time || g.ts, tz)), type: g.type, strategy: g.strategy })));
  }

  function addAlert(a) {
    const ul = $("alerts");
    if (ul.firstChild && ul.firstChild.classList && ul.firstChild.classList.contains("muted")) ul.innerHTML = "";
    const li = document.createElement("li");
    const extra = (...parts) => (parts.filter((p) => p != null && p !== "").length ? ` (${parts.filter((p) => p != null && p !== "").map(esc).join(", ")})` : "");
    let what;
    if (a.type === "lvn") what = `near LVN ${price(a.lvn)}${extra(a.horizon, a.direction)}`;
    else if (a.type === "aggressive_flow") what = `aggressive ${esc(a.direction || "")} flow, score ${num(a.score, 0)}${extra(a.intensity)}`;
    else if (a.type === "stacked_imbalance") what = `stacked ${esc(a.side || "")} imbalance, ${num(a.rows, 0)} rows (bar ${clock(a.bar, tz)})`;
    else if (a.type === "vwap_band") what = `${esc(a.band || "")} VWAP band touched at ${price(a.price)} (${num(a.k, 1)} sd, band ${price(a.level)}, VWAP ${price(a.vwap)})`;
    else if (a.type === "big_print") what = `big print ${qty(a.size)} @ ${price(a.price)}${extra(a.side || "unclassified", clock(a.print_time, tz))}`;
    else what = esc(a.message || a.kind || JSON.stringify(a.details || {}));
    li.innerHTML = `<span class="t">${clock(a.time, tz)}</span><span class="badge">${esc(a.type || "alert")}</span> <span>${what}</span>`;
    ul.prepend(li);
    while (ul.children.length > 50) ul.lastChild.remove();
  }

  async function loadProfile() {
    const p = await api(`/api/profile?symbol=${encodeURIComponent(symbol)}`);
    const s = p.session || {};
    $("levels").innerHTML = `<dt>Session</dt><dd>${esc(s.session_date || "–")}</dd><dt>POC</dt><dd>${price(s.poc)}</dd>
      <dt>From</dt><dd class="muted src" id="profile-src">profile run of ${s.bucket ? `${clock(s.bucket, tz)} (${esc(age(s.bucket))})` : "–"}</dd>
      <dt>IB</dt><dd>${s.ib_low != null ? `${price(s.ib_low)} – ${price(s.ib_high)}` : "–"}</dd>
      <dt>VAH</dt><dd>${price(s.vah)}</dd><dt>VAL</dt><dd>${price(s.val)}</dd>
      <dt>Volume</dt><dd>${compact(s.total_volume)}</dd>
      <dt>LVNs</dt><dd>${(s.lvns || []).map((n) => price(n.price)).join(", ") || "–"}</dd>
      <dt>Naked POCs</dt><dd>${p.naked_pocs.map((n) => price(n.poc)).join(", ") || "–"}</dd>`;
    if (chart) chart.levels(p);
  }

  async function loadFlow(withVwap = true) {
    if (!chart) return;
    const [f, v] = await Promise.all([
      api(`/api/flow?symbol=${encodeURIComponent(symbol)}&tf=${tf}&limit=500`),
      withVwap ? api(`/api/vwap?symbol=${encodeURIComponent(symbol)}&tf=${tf}&limit=500`) : null,
    ]);
    chart.flow(f.flow);
    if (v) chart.vwap(v.vwap);
  }

  // the footprint and the VWAP follow the market: only the bars from the last one shown
  let following = null;
  let loads = 0; // each timeframe load (loadBars); a follow begun before one is stale after it
  function follow() {
    if (!chart || following) return following;
    const at = loads;
    const last = chart.lastVwap();
    const from = last ? `&from=${encodeURIComponent(last.time)}&limit=60` : "&limit=500";
    following = Promise.all([
      footprint.follow(tf),
      api(`/api/vwap?symbol=${encodeURIComponent(symbol)}&tf=${tf}${from}`).then((v) => {
        if (at === loads) chart.followVwap(v.vwap); // not across a timeframe change
      }),
    ]).finally(() => {
      following = null;
    });
    return following;
  }

  async function loadBars() {
    loads += 1;
    const c = await api(`/api/candles?symbol=${encodeURIComponent(symbol)}&tf=${tf}&limit=500`);
    tz = c.timezone || "UTC";
    bars = c.candles.map(toBar);
    minutes = new Map();
    if (bars.length && tf !== "1m") {
      const m = await api(`/api/candles?symbol=${encodeURIComponent(symbol)}&tf=1m&limit=${TF_SECONDS[tf] / 60}`);
      const last = bars[bars.length - 1].time;
      for (const x of m.candles) if (bucket(x.t) === last) minutes.set(x.t, toBar(x));
    }
    if (chart) chart.candles(bars);
    const lastBar = bars[bars.length - 1];
    legend(lastBar);
    if (lastBar) head(lastBar.close, state.prevClose);
    await loadFlow();
    if (chart) chart.frame(bars);
    if (footprint) await footprint.load(tf);
  }

  function onCandle(d) {
    const t1 = localEpoch(d.time, tz);
    const b = bucket(t1);
    const lastBar = bars[bars.length - 1];
    if (lastBar && b < lastBar.time) return;
    if (!lastBar || b > lastBar.time) minutes = new Map();
    minutes.set(t1, { time: t1, open: d.open, high: d.high, low: d.low, close: d.close, volume: d.volume });
    const ms = [...minutes.values()].sort((x, y) => x.time - y.time);
    const bar = {
      time: b, open: ms[0].open, close: ms[ms.length - 1].close,
      high: Math.max(...ms.map((x) => x.high)), low: Math.min(...ms.map((x) => x.low)),
      volume: ms.reduce((s, x) => s + (x.volume || 0), 0),
    };
    if (lastBar && lastBar.time === b) bars[bars.length - 1] = bar;
    else bars.push(bar);
    if (chart) chart.update(bar);
    legend(bar);
    head(bar.close, state.prevClose);
    if (t1 > lastMinute) {
      if (lastMinute) {
        setTimeout(() => {
          loadFlow(false).catch(() => {});
          follow()?.catch(() => {});
        }, 1500);
      }
      lastMinute = t1;
    }
  }

  const [wl, states, sigs] = await Promise.all([
    api("/api/watchlist").catch(() => ({ rows: [] })),
    api(`/api/states?symbol=${encodeURIComponent(symbol)}&limit=20`),
    api(`/api/signals?symbol=${encodeURIComponent(symbol)}&limit=100`),
  ]);
  const row = wl.rows.find((r) => r.symbol === symbol);
  if (row) {
    $("name").textContent = row.name || "";
    state.prevClose = row.previous_close;
  }
  await loadBars();
  showState(states.states[0]);
  $("signals").innerHTML = '<li class="muted">none yet</li>';
  for (const s of sigs.signals.slice().reverse()) addSignal(s);
  await loadProfile();
  setInterval(() => loadProfile().catch(() => {}), 30000);
  setInterval(() => {
    if (!document.hidden) follow()?.catch(() => {});
  }, FOLLOW_MS);

  $("tfs").addEventListener("click", async (ev) => {
    const next = ev.target.dataset && ev.target.dataset.tf;
    if (!next || next === tf) return;
    tf = next;
    for (const b of $("tfs").children) b.classList.toggle("on", b.dataset.tf === tf);
    const url = new URL(location.href);
    url.searchParams.set("tf", tf);
    history.replaceState(null, "", url.pathname + url.search);
    await loadBars();
    if (chart) chart.markers(signals.map((g) => ({ time: bucket(localEpoch(g.time || g.ts, tz)), type: g.type, strategy: g.strategy })));
  });

  live({ channels: [CH.candles, CH.state, CH.signals, CH.alerts], symbols: [symbol] }, (items) => {
    for (const { channel, data } of items) {
      if (data.symbol !== symbol) continue;
      if (channel === CH.candles) onCandle(data);
      else if (channel === CH.state) showState(data);
      else if (channel === CH.signals) addSignal(data);
      else if (channel === CH.alerts) addAlert(data);
    }
  });
  if (chart) chart.onHover((bar) => legend(bar || bars[bars.length - 1]));
  if (chart) {
    $("families").addEventListener("click", (ev) => {
      const key = ev.target.dataset && ev.target.dataset.family;
      if (!key) return;
      ev.target.classList.toggle("on", chart.toggle(key));
    });
  }
  window.mfSymbol = {
    bars: () => bars,
    signals: () => signals,
    labelled: () => (chart ? chart.labelled() : []),
    visibleTimes: () => (chart ? chart.visibleTimes() : null),
    footprint: footprint,
    follow: () => follow(),
    vwapLast: () => (chart ? chart.lastVwap() : null),
  };
}

function makeChart(LC, el) {
  const chart = LC.createChart(el, {
    autoSize: true,
    layout: { background: { color: "#121722" }, textColor: "#9aa4b6", fontSize: 11, panes: { separatorColor: "#232b3b" } },
    grid: { vertLines: { color: "#1a2130" }, horzLines: { color: "#1a2130" } },
    rightPriceScale: { borderColor: "#232b3b" },
    timeScale: { borderColor: "#232b3b", timeVisible: true, secondsVisible: false, rightOffset: 8 },
    crosshair: { mode: LC.CrosshairMode.Normal },
  });
  const candles = chart.addSeries(LC.CandlestickSeries, {
    upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
  });
  // volume under the candles, on its own scale in the bottom seventh of the price pane
  const volume = chart.addSeries(LC.HistogramSeries, {
    priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false, priceLineVisible: false,
  });
  chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.86, bottom: 0 } });
  const volumeBar = (b) => ({ time: b.time, value: b.volume || 0, color: b.close >= b.open ? "rgba(38,166,154,0.28)" : "rgba(239,83,80,0.28)" });
  const delta = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" }, title: "Delta" }, 1);
  const cvd = chart.addSeries(LC.LineSeries, { color: COLORS.va, lineWidth: 2, priceFormat: { type: "volume" }, title: "CVD" }, 2);
  const panes = chart.panes();
  if (panes[1]) panes[1].setHeight(90);
  if (panes[2]) panes[2].setHeight(90);
  const markers = LC.createSeriesMarkers(candles, []);
  const overlay = new ProfileOverlay(el.parentElement, chart, candles);
  const levels = new LevelLines(LC, chart, candles, COLORS);
  return {
    candles(bars) {
      const last = bars.length ? bars[bars.length - 1].close : 1;
      const digits = priceDigits(last);
      candles.applyOptions({ priceFormat: { type: "price", precision: digits, minMove: 10 ** -digits } });
      candles.setData(bars);
      volume.setData(bars.map(volumeBar));
      delta.setData([]); // the panes share the time scale: no bars of another timeframe
      cvd.setData([]);
    },
    // the latest ~150 candles, with room on the right for the profile beside the price
    // axis: the range is fitted to the candles' times, whatever other series hold
    frame(bars) {
      const n = bars.length;
      const ts = chart.timeScale();
      if (n) {
        // logical indices of the candles themselves (timeToIndex: synchronous, unlike
        // reading the range back after setVisibleRange, which still held the default
        // ~130 slots and squeezed a young session's few candles against the axis)
        const first = ts.timeToIndex(bars[Math.max(0, n - 150)].time, true);
        const last = ts.timeToIndex(bars[n - 1].time, true);
        if (first !== null && last !== null) {
          ts.setVisibleLogicalRange({ from: first - 2, to: last + Math.max(12, Math.min(n, 150) / 4) });
        }
      }
      overlay.draw();
      levels.relabel();
    },
    // the times of the first and last bar in view, and the logical slots shown
    visibleTimes() {
      const r = chart.timeScale().getVisibleRange();
      const l = chart.timeScale().getVisibleLogicalRange();
      return r && l ? { from: r.from, to: r.to, slots: l.to - l.from } : null;
    },
    vwap(rows) {
      levels.vwap(rows);
    },
    followVwap(rows) {
      levels.followVwap(rows);
    },
    lastVwap() {
      return levels.lastVwap;
    },
    toggle(family) {
      return levels.toggle(family);
    },
    labelled() {
      return levels.labelled();
    },
    update(bar) {
      candles.update(bar);
      volume.update(volumeBar(bar));
    },
    flow(rows) {
      delta.setData(rows.filter((r) => r.delta != null).map((r) => ({ time: r.t, value: r.delta, color: r.delta >= 0 ? COLORS.up : COLORS.down })));
      cvd.setData(rows.filter((r) => r.cvd != null).map((r) => ({ time: r.t, value: r.cvd })));
    },
    markers(list) {
      const seen = list.slice().sort((a, b) => a.time - b.time);
      markers.setMarkers(seen.map((m) => ({
        time: m.time,
        position: m.type === "SELL" ? "aboveBar" : "belowBar",
        color: m.type === "SELL" ? COLORS.down : COLORS.up,
        shape: m.type === "SELL" ? "arrowDown" : "arrowUp",
        text: m.type,
      })));
    },
    levels(p) {
      levels.set(p);
      overlay.setLevels(p.levels || [], p.session || {});
    },
    onHover(fn) {
      chart.subscribeCrosshairMove((param) => fn(param && param.seriesData ? param.seriesData.get(candles) : null));
    },
  };
}
