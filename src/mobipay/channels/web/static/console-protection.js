// The console's handset protection report chart, drawn by the vendored ECharts from the
// figures the page embeds (#protection-data): enrolments and claims per city as bars, the
// approval rate (%) as a line on a second axis.
"use strict";
(function () {
  const el = document.getElementById("chart-protection");
  const source = document.getElementById("protection-data");
  if (!el || !source || typeof echarts === "undefined") return;
  const en = document.documentElement.lang === "en";
  const T = (zh, eng) => (en ? eng : zh);
  const d = JSON.parse(source.textContent);
  const chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption({
    title: { text: T("按城市：办理、理赔与通过率", "By city: enrolments, claims and approval rate"), left: 0,
             textStyle: { fontSize: 15 } },
    tooltip: { trigger: "axis" },
    legend: { top: 24 },
    grid: { top: 64, left: 48, right: 48, bottom: 32 },
    xAxis: { type: "category", data: d.cities || [] },
    yAxis: [{ type: "value", name: T("件", "count"), minInterval: 1 },
            { type: "value", name: "%", min: 0, max: 100 }],
    series: [
      { name: T("办理", "Enrolments"), type: "bar", data: d.enrolments || [], itemStyle: { color: "#1677ff" } },
      { name: T("理赔", "Claims"), type: "bar", data: d.claims || [], itemStyle: { color: "#fa8c16" } },
      { name: T("通过率", "Approval rate"), type: "line", yAxisIndex: 1, data: d.approval || [],
        itemStyle: { color: "#52c41a" } },
    ],
  });
  window.addEventListener("resize", () => chart.resize());
})();
