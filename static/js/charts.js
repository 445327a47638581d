// Draws every <canvas data-chart="bar|hbar|line" data-chart-source="ID"> with Chart.js (served locally from
// node_modules, see settings.STATICFILES_DIRS). The data comes from a json_script element:
//   {"labels": [...], "series": [{"label": "...", "data": [...], "color": "#1f7a4d", "type": "line"?}],
//    "stacked": false}
// Every chart has the same numbers in a table next to it, so the page still reads without JavaScript.
(function () {
  "use strict";

  function draw(canvas) {
    if (typeof window.Chart === "undefined") return;
    const source = document.getElementById(canvas.dataset.chartSource);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    const kind = canvas.dataset.chart || "bar";
    const horizontal = kind === "hbar";
    const stacked = Boolean(spec.stacked);
    const datasets = (spec.series || []).map(function (s) {
      return {
        type: s.type || (kind === "line" ? "line" : "bar"),
        label: s.label,
        data: s.data,
        backgroundColor: s.color,
        borderColor: s.color,
        borderWidth: s.type === "line" ? 2 : 0,
        pointRadius: s.type === "line" ? 2 : 0,
        tension: 0,
      };
    });
    const chart = new window.Chart(canvas, {
      type: kind === "line" ? "line" : "bar",
      data: { labels: spec.labels || [], datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: { stacked: stacked, ticks: { precision: 0, autoSkip: true, maxRotation: 0 } },
          y: { stacked: stacked, ticks: { precision: 0 }, beginAtZero: true },
        },
      },
    });
    canvas.dataset.chartReady = "1";
    return chart;
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]:not([data-chart-ready])").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  // Pages that swap parts in with htmx get their charts too.
  document.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
})();
