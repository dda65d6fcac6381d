// Charts of the live view, drawn by uPlot (served from its webjar with the console).
import uPlot from './vendor/uplot/uPlot.esm.js';

export const PALETTE = ['#1f5fa8', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#5c940d', '#e67700'];

function width(container) {
  return Math.max(320, container.clientWidth - 16);
}

/**
 * A time-series chart: x in Unix seconds, one line per series ({label, color, dash}).
 * Returns {update(xs, ys[]), destroy()}.
 */
export function timeChart(container, title, unit, series, format) {
  const opts = {
    width: width(container),
    height: 190,
    legend: {live: true},
    scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(max || 0, 1e-9) * 1.1]}},
    axes: [
      {stroke: '#66717f', grid: {stroke: '#eef2f6'}},
      {stroke: '#66717f', grid: {stroke: '#eef2f6'}, size: 60, values: (u, ticks) => ticks.map((v) => format(v))},
    ],
    series: [{}].concat(series.map((s) => ({label: s.label, stroke: s.color, width: 1.6, dash: s.dash,
      value: (u, v) => (v === null || v === undefined ? '—' : format(v))}))),
  };
  const chart = new uPlot(opts, [[], ...series.map(() => [])], container);
  const resize = () => chart.setSize({width: width(container), height: 190});
  window.addEventListener('resize', resize);
  return {
    update(xs, ys) {
      chart.setData([xs, ...ys]);
    },
    destroy() {
      window.removeEventListener('resize', resize);
      chart.destroy();
    },
  };
}

/** A bar chart of counts by batch size (x: rows per batch). Returns {update(xs, ys), destroy()}. */
export function barChart(container, label, color) {
  const opts = {
    width: Math.max(240, container.clientWidth - 8),
    height: 130,
    legend: {show: false},
    scales: {x: {time: false, range: (u, min, max) => [Math.min(0.5, min - 0.5), max + 0.5]}, y: {range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1]}},
    axes: [{stroke: '#66717f', grid: {show: false}, incrs: [1, 2, 4, 8, 16, 32, 64]}, {stroke: '#66717f', size: 44, grid: {stroke: '#eef2f6'}}],
    series: [{}, {label, stroke: color, fill: color + '99', paths: uPlot.paths.bars({size: [0.7, 40]}), points: {show: false}}],
  };
  const chart = new uPlot(opts, [[], []], container);
  return {
    update(xs, ys) {
      chart.setData([xs, ys]);
    },
    destroy() {
      chart.destroy();
    },
  };
}
