// The employer page's chart, drawn by the vendored ECharts from the figures the page embeds
// (#enterprise-data): per day, what the allowance and the employees' wallets paid (CNY), stacked.
"use strict";
(function () {
  const el = document.getElementById("chart-enterprise");
  const source = document.getElementById("enterprise-data");
  if (!el || !source || typeof echarts === "undefined") return;
  const en = document.documentElement.lang === "en";
  const T = (zh, eng) => (en ? eng : zh);
  const d = JSON.parse(source.textContent);
  const chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption({
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { top: 40, left: 56, right: 16, bottom: 32 },
    xAxis: { type: "category", data: d.days || [] },
    yAxis: { type: "value", name: T("元", "CNY") },
    series: [
      { name: T("企业补贴", "Allowance"), type: "bar", stack: "paid", data: d.allowance || [],
        itemStyle: { color: "#1677ff" } },
      { name: T("个人钱包", "Wallet"), type: "bar", stack: "paid", data: d.wallet || [],
        itemStyle: { color: "#fa8c16" } },
    ],
  });
  window.addEventListener("resize", () => chart.resize());
})();
