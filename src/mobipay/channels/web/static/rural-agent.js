// The village agent's page: /v1/rural with the staff bearer token (sessionStorage only).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const yuan = (fen) => (fen / 100).toFixed(2);
  const fen = (text) => Math.round(parseFloat(text) * 100);
  const KIND = { cash_in: "存款 cash-in", cash_out: "取款 cash-out", rebalance: "调拨 rebalance",
                 float_buy: "购入备付金 float bought", float_sell: "售出备付金 float sold",
                 commission: "佣金 commission", market: "代购 order for a villager" };
  let token = sessionStorage.getItem("rural-agent-token") || "";
  let pending = "";

  async function call(method, path, body, key) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    if (key) headers["Idempotency-Key"] = key;
    const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const data = await r.json();
    if (!r.ok) throw new Error(data.detail || data.title || r.status);
    return data;
  }

  function say(text) { $("result").textContent = text; }

  async function refresh() {
    const me = await call("GET", "/v1/rural/agent");
    $("who").textContent = me.name;
    $("float").textContent = yuan(me.float_balance.amount);
    $("cash").textContent = yuan(me.cash.amount);
    const lines = await call("GET", "/v1/rural/agent/statement?limit=5");
    $("statement").replaceChildren(...lines.map((t) => {
      const li = document.createElement("li");
      const at = new Date(t.created_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit",
                                                                  day: "2-digit", hour: "2-digit", minute: "2-digit" });
      li.textContent = `${at} ${KIND[t.kind] || t.kind} ${yuan(t.amount.amount)}`;
      return li;
    }));
    const month = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 7);  // Beijing's month
    const c = await call("GET", "/v1/rural/agent/commissions?month=" + month);
    $("commissions").textContent = yuan(c.accrued.amount + c.paid.amount);
  }

  function show() {
    $("signin").hidden = !!token;
    $("desk").hidden = !token;
    if (token) refresh().catch((e) => say(e.message));
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const s = await call("POST", "/v1/rural/agent/sessions", { msisdn: f.get("msisdn"), pin: f.get("pin") });
      token = s.token;
      sessionStorage.setItem("rural-agent-token", token);
      show();
    } catch (e) { say(e.message); }
  });

  $("cashin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const t = await call("POST", "/v1/rural/agent/cash-ins",
        { customer: f.get("customer"), amount: fen(f.get("amount")) }, crypto.randomUUID());
      say(`存款成功 Deposited ${yuan(t.amount.amount)}`);
      ev.target.reset();
      refresh();
    } catch (e) { say(e.message); }
  });

  $("co-amount").addEventListener("change", async () => {
    try {
      const q = await call("GET", "/v1/rural/quote?kind=cash_out&amount=" + fen($("co-amount").value));
      $("co-fee").textContent = `手续费 Fee ${yuan(q.fee.amount)}，共扣 Total ${yuan(q.total.amount)}`;
    } catch (e) { $("co-fee").textContent = e.message; }
  });

  $("cashout-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const r = await call("POST", "/v1/rural/agent/cash-outs",
        { customer: f.get("customer"), amount: fen(f.get("amount")) }, crypto.randomUUID());
      pending = r.id;
      $("code-form").hidden = false;
      say(`已发验证码，手续费 ${yuan(r.fee.amount)}。Code sent; ask the customer for it.`);
    } catch (e) { say(e.message); }
  });

  $("code-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const t = await call("POST", `/v1/rural/agent/cash-outs/${pending}/confirm`, { code: f.get("code") });
      say(`请付现金 Pay the cash: ${yuan(t.amount.amount)}`);
      ev.target.reset();
      ev.target.hidden = true;
      $("cashout-form").reset();
      refresh();
    } catch (e) { say(e.message); }
  });

  show();
})();
