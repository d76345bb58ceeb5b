// Strategies: switch on/off, cooldown, definition and per-symbol configs; the server
// validates every change as the engine does and stores it only with the token, which this
// tab keeps from the link printed at start (common.js sends it as Authorization: Bearer).
import { CH, api, badge, clock, esc, live, num, stamp, toast, token } from "../common.js";

function perfRows(perf) {
  if (!perf.length) return '<p class="muted">no performance yet (mart strategy_performance)</p>';
  return `<table class="grid"><thead><tr><th>Symbol</th><th class="num">Signals</th><th class="num">Hit 60m</th>
    <th class="num">Mean 60m</th><th class="num">TP</th><th class="num">SL</th></tr></thead><tbody>${perf
      .map((p) => `<tr><td>${esc(p.symbol)}</td><td class="num">${p.signals ?? "–"}</td>
        <td class="num">${p.hit_rate_60m != null ? num(100 * p.hit_rate_60m, 0) + "%" : "–"}</td>
        <td class="num">${p.mean_return_60m_pct != null ? num(p.mean_return_60m_pct, 2) + "%" : "–"}</td>
        <td class="num">${p.take_profits ?? "–"}</td><td class="num">${p.stop_losses ?? "–"}</td></tr>`)
      .join("")}</tbody></table>`;
}

function configRows(st) {
  if (!st.configs.length) return '<p class="muted">no per-symbol configs</p>';
  return `<table class="grid"><thead><tr><th>Symbol</th><th>Enabled</th><th>Parameters</th><th class="num">Risk %</th><th class="num">Max pos</th><th></th></tr></thead><tbody>${st.configs
    .map((c) => `<tr data-config="${esc(c.symbol)}">
      <td class="sym">${esc(c.symbol)}</td>
      <td><input type="checkbox" class="c-enabled" ${c.enabled ? "checked" : ""}></td>
      <td class="params"><code class="c-params" contenteditable="true" spellcheck="false" title="JSON, edit in place">${esc(JSON.stringify(c.parameters))}</code></td>
      <td class="num"><input type="number" step="0.1" class="c-risk" value="${c.risk_per_trade_pct ?? ""}"></td>
      <td class="num"><input type="number" step="1" class="c-pos" value="${c.max_positions ?? ""}"></td>
      <td><button class="act c-save">Save</button></td></tr>`)
    .join("")}</tbody></table>`;
}

function card(st) {
  const d = st.definition || {};
  return `<div class="panel card" data-strategy="${st.id}">
    <div class="row"><h3>${esc(st.name)}</h3><span class="tag">${esc(d.type || "?")}</span>
      ${st.active ? '<span class="badge on">active</span>' : '<span class="badge off">disabled</span>'}
      <span class="spacer"></span>
      <span class="muted">signals 24h <b class="n24">${st.signals_24h ?? 0}</b> · total ${st.signals_total ?? 0} · last <span class="lastsig">${stamp(st.last_signal_at)}</span></span></div>
    <div class="row">
      <label class="switch"><input type="checkbox" class="s-active" ${st.active ? "checked" : ""}> active</label>
      <label>cooldown <input type="number" class="s-cooldown" min="0" step="1" value="${st.cooldown_seconds}"> s</label>
    </div>
    <div class="cardbody">
      <div><h2>Definition</h2><textarea class="s-definition" spellcheck="false">${esc(JSON.stringify(d, null, 2))}</textarea>
        <div class="row"><button class="act s-save">Save strategy</button><span class="msg" id="strategy-msg-${st.id}"></span></div></div>
      <div><h2>Per-symbol configs</h2>${configRows(st)}
        <h2 class="gap">Performance <span class="tag">all history</span></h2>${perfRows(st.performance)}</div>
    </div>
  </div>`;
}

function number(value) {
  return value === "" || value === null ? null : Number(value);
}

export async function start({ root }) {
  const data = await api("/api/strategies");
  const recent = await api("/api/signals?limit=30");
  const hint = token()
    ? ""
    : `<div class="banner" id="token-hint">Changes need the dashboard's token: open the link printed at start (…/?token=…) in this tab.</div>`;
  root.innerHTML = `${hint}<div class="layout">
    <div class="cards" id="strategies">${data.strategies.map(card).join("")}</div>
    <div class="panel"><h2>Live signals <span class="tag">UTC</span></h2><ul class="feed" id="feed" style="max-height:none"></ul></div></div>`;
  const feed = document.getElementById("feed");
  const addSignal = (s) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="t">${clock(s.time || s.ts, "UTC")}</span>${badge(s.type)} <b>${esc(s.symbol)}</b> <span class="muted">${esc(s.strategy || "")}</span>`;
    feed.prepend(li);
    while (feed.children.length > 100) feed.lastChild.remove();
  };
  recent.signals.slice().reverse().forEach(addSignal);

  async function save(id, call) {
    const msg = document.getElementById(`strategy-msg-${id}`);
    msg.className = "msg";
    msg.textContent = "saving…";
    try {
      await call();
      msg.className = "msg ok";
      msg.textContent = "saved";
    } catch (err) {
      msg.className = "msg err";
      msg.textContent = `refused: ${err.message}`;
      toast(`Change refused: ${err.message}`);
    }
  }

  root.addEventListener("click", (ev) => {
    const cardEl = ev.target.closest("[data-strategy]");
    if (!cardEl) return;
    const id = Number(cardEl.dataset.strategy);
    if (ev.target.classList.contains("s-save")) {
      save(id, async () => {
        let definition;
        try {
          definition = JSON.parse(cardEl.querySelector(".s-definition").value);
        } catch (_) {
          throw new Error("the definition is not valid JSON");
        }
        await api(`/api/strategies/${id}`, {
          method: "PATCH",
          body: {
            active: cardEl.querySelector(".s-active").checked,
            cooldown_seconds: Number(cardEl.querySelector(".s-cooldown").value),
            definition,
          },
        });
      });
    } else if (ev.target.classList.contains("c-save")) {
      const tr = ev.target.closest("[data-config]");
      save(id, async () => {
        let parameters;
        try {
          parameters = JSON.parse(tr.querySelector(".c-params").textContent);
        } catch (_) {
          throw new Error("the parameters are not valid JSON");
        }
        await api(`/api/strategies/${id}/configs/${encodeURIComponent(tr.dataset.config)}`, {
          method: "PUT",
          body: {
            enabled: tr.querySelector(".c-enabled").checked,
            parameters,
            risk_per_trade_pct: number(tr.querySelector(".c-risk").value),
            max_positions: number(tr.querySelector(".c-pos").value),
          },
        });
      });
    }
  });

  const byName = new Map(data.strategies.map((s) => [s.name, s.id]));
  live({ channels: [CH.signals] }, (items) => {
    for (const { data: s } of items) {
      addSignal(s);
      const id = byName.get(s.strategy);
      const el = id && root.querySelector(`[data-strategy="${id}"]`);
      if (el) {
        const n = el.querySelector(".n24");
        n.textContent = String(Number(n.textContent) + 1);
        el.querySelector(".lastsig").textContent = stamp(s.time);
      }
    }
  });
}
