// The console's SP trend chart, drawn by the vendored ECharts from the figures the page
// embeds (#sp-data): complaints and subscribers per month as bars, the complaint rate per
// 10,000 subscribers as a line on a second axis.
"use strict";
(function () {
  const el = document.getElementById("chart-sp");
  const source = document.getElementById("sp-data");
  if (!el || !source || typeof echarts === "undefined") return;
  const en = document.documentElement.lang === "en";
  const T = (zh, eng) => (en ? eng : zh);
  const d = JSON.parse(source.textContent);
  const chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption({
    title: { text: T("投诉趋势", "Complaint trend"), left: 0, textStyle: { fontSize: 15 } },
    tooltip: { trigger: "axis" },
    legend: { top: 24 },
    grid: { top: 64, left: 48, right: 56, bottom: 32 },
    xAxis: { type: "category", data: d.periods || [] },
    yAxis: [{ type: "value", name: T("件/户", "count"), minInterval: 1 },
            { type: "value", name: T("每万户", "per 10,000") }],
    series: [
      { name: T("投诉", "Complaints"), type: "bar", data: d.complaints || [], itemStyle: { color: "#fa541c" } },
      { name: T("用户", "Subscribers"), type: "bar", data: d.subscribers || [], itemStyle: { color: "#1677ff" } },
      { name: T("投诉率", "Complaint rate"), type: "line", yAxisIndex: 1, data: d.rate || [],
        itemStyle: { color: "#722ed1" } },
    ],
  });
  window.addEventListener("resize", () => chart.resize());
})();
