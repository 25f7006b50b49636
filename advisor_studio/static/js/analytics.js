// Analytics charts (Apache ECharts, served by the app): the figures come from the page's
// <script type="application/json" id="analytics-chart-data"> block, so no inline script is needed.
(function () {
  const source = document.getElementById('analytics-chart-data');
  if (!source || typeof window.echarts === 'undefined') { return; }
  let data;
  try { data = JSON.parse(source.textContent); } catch (err) { return; }
  const charts = [];
  const make = (name, option) => {
    const el = document.querySelector('[data-chart="' + name + '"]');
    if (!el) { return; }
    const chart = window.echarts.init(el, null, { renderer: 'canvas' });
    chart.setOption(option);
    charts.push(chart);
  };
  const steps = data.steps || [];
  // The funnel as horizontal bars, widest step on top (the common build of ECharts has no funnel series).
  make('funnel', {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    grid: { left: 8, right: 56, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: 'value', show: false },
    yAxis: { type: 'category', inverse: true, data: steps.map((s) => s.name), axisTick: { show: false } },
    series: [{
      type: 'bar', barWidth: '60%', label: { show: true, position: 'right' },
      data: steps.map((s) => s.value),
    }],
  });
  const daily = data.daily || { days: [], series: [] };
  make('daily', {
    tooltip: { trigger: 'axis' },
    legend: { top: 0, type: 'scroll' },
    grid: { left: 48, right: 16, top: 40, bottom: 32 },
    xAxis: { type: 'category', data: daily.days },
    yAxis: { type: 'value', minInterval: 1 },
    series: daily.series.map((s) => ({ name: s.name, type: 'line', smooth: true, showSymbol: false, data: s.data })),
  });
  const bars = data.bars || { labels: [], values: [] };
  if (bars.labels.length) {
    make('bars', {
      tooltip: { trigger: 'axis' },
      grid: { left: 48, right: 16, top: 24, bottom: 72 },
      xAxis: { type: 'category', data: bars.labels, axisLabel: { rotate: 30, interval: 0 } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [{ name: bars.name, type: 'bar', data: bars.values }],
    });
  }
  window.addEventListener('resize', () => charts.forEach((c) => c.resize()));
})();
