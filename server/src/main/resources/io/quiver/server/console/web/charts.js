// Charts of the live view, drawn by uPlot (served from its webjar with the console).
import uPlot from './vendor/uplot/uPlot.esm.js';

export const PALETTE = ['#1f5fa8', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#5c940d', '#e67700'];

function width(container) {
  return Math.max(200, container.clientWidth - 16);
}

/** Keeps a chart as wide as its box (the grid reflows when the window or the number of versions changes). */
function follow(container, chart, height) {
  const observer = new ResizeObserver(() => {
    const w = width(container);
    if (Math.abs(w - chart.width) > 2) chart.setSize({width: w, height});
  });
  observer.observe(container);
  return observer;
}

/**
 * A time-series chart: x in Unix seconds, one line per series ({label, color, dash}), values shown with format.
 * Returns {update(xs, ys[]), destroy()}.
 */
export function timeChart(container, title, series, format) {
  const opts = {
    width: width(container),
    height: 190,
    legend: {live: true},
    scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(max || 0, 1e-9) * 1.1]}},
    axes: [
      {stroke: '#66717f', grid: {stroke: '#eef2f6'}, space: 70,
        values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], {hour12: false}))},
      {stroke: '#66717f', grid: {stroke: '#eef2f6'}, size: 72, values: (u, ticks) => ticks.map((v) => format(v))},
    ],
    series: [{}].concat(series.map((s) => ({label: s.label, stroke: s.color, width: 1.6, dash: s.dash,
      value: (u, v) => (v === null || v === undefined ? '—' : format(v))}))),
  };
  const chart = new uPlot(opts, [[], ...series.map(() => [])], container);
  const observer = follow(container, chart, 190);
  return {
    update(xs, ys) {
      chart.setData([xs, ...ys]);
    },
    destroy() {
      observer.disconnect();
      chart.destroy();
    },
  };
}

/** A bar chart of counts by batch size (x: rows per batch). Returns {update(xs, ys), destroy()}. */
export function barChart(container, label, color) {
  const opts = {
    width: width(container),
    height: 130,
    legend: {show: false},
    scales: {x: {time: false, range: (u, min, max) => [Math.min(0.5, min - 0.5), max + 0.5]}, y: {range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1]}},
    axes: [{stroke: '#66717f', grid: {show: false}, incrs: [1, 2, 4, 8, 16, 32, 64]}, {stroke: '#66717f', size: 60, grid: {stroke: '#eef2f6'}}],
    series: [{}, {label, stroke: color, fill: color + '99', paths: uPlot.paths.bars({size: [0.7, 40]}), points: {show: false}}],
  };
  const chart = new uPlot(opts, [[], []], container);
  const observer = follow(container, chart, 130);
  return {
    update(xs, ys) {
      chart.setData([xs, ys]);
    },
    destroy() {
      observer.disconnect();
      chart.destroy();
    },
  };
}
