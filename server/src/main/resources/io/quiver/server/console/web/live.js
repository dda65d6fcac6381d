// The live view of one model: every ready version side by side (stable and canary, with their weights),
// from the server's own statistics and metrics histograms, sampled once a second. The server keeps no
// state for viewers: each sample is cumulative, and rates and percentiles come from differences here.
import {consoleApi, ApiError} from './api.js';
import {el, clear, latency, rate, count, percent, stateBadge, showError} from './format.js';
import {timeChart, barChart, PALETTE} from './charts.js';

const POLL_MS = 1000;
const KEEP = 180; // samples kept: three minutes of charts
const WINDOW_MS = 5000; // rates and percentiles over the last five seconds
const BATCH_WINDOW_MS = 60000;

export async function render(main, args) {
  clear(main);
  let models;
  try {
    models = (await consoleApi('models')).models;
  } catch (e) {
    showError('Models: ' + e.message);
    return null;
  }
  const names = models.filter((m) => m.versions.some((v) => v.state === 'READY')).map((m) => m.name);
  const model = args[0] && names.includes(args[0]) ? args[0] : names[0];
  const select = el('select', {id: 'live-model', onchange: () => { location.hash = '#/live/' + encodeURIComponent(select.value); }},
    names.map((n) => el('option', {value: n, selected: n === model}, n)));
  const updated = el('span', {id: 'live-updated', class: 'muted'});
  main.append(el('div', {class: 'toolbar'}, el('h1', {class: 'grow'}, 'Live'), el('label', null, 'Model ', select), updated));
  if (!model) {
    main.append(el('p', {class: 'muted'}, 'No model is ready.'));
    return null;
  }
  const cards = el('div', {class: 'cards', id: 'live-cards'});
  const chartsBox = el('div', {class: 'charts'});
  main.append(
    el('p', {class: 'muted'}, 'Each ready version of ' + model + ', sampled every second from the server\'s statistics ' +
      '(the same counts as the statistics RPC) and its latency histograms (the same as /metrics). Rates and percentiles ' +
      'cover the last 5 s; percentiles are interpolated inside the histogram\'s buckets. Totals count since the version loaded.'),
    cards, chartsBox);

  const samples = [];
  let versions = []; // version numbers shown, in order
  let view = null; // {cards: Map(version → fields), charts: [...], bars: Map(version → chart)}
  let stopped = false;
  let timer = null;

  async function poll() {
    try {
      const s = await consoleApi('live?model=' + encodeURIComponent(model));
      if (stopped) return;
      s.byVersion = new Map(s.versions.filter((v) => v.success !== undefined).map((v) => [v.version, v]));
      samples.push(s);
      if (samples.length > KEEP) samples.shift();
      const ready = s.versions.filter((v) => v.success !== undefined).map((v) => v.version);
      if (ready.join() !== versions.join()) {
        versions = ready;
        destroy(view);
        view = build(cards, chartsBox, s, versions);
      }
      update(view, samples, versions);
      updated.textContent = 'updated ' + new Date(s.t).toLocaleTimeString();
      updated.dataset.t = String(s.t);
      showError(null);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) showError('Live: ' + e.message);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  await poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    destroy(view);
  };
}

function destroy(view) {
  if (!view) return;
  for (const c of view.charts) c.destroy();
  for (const c of view.bars.values()) c.destroy();
}

function title(v) {
  return 'v' + v.version + (v.labels.length ? ' ' + v.labels.join(',') : '');
}

const FIELDS = [
  ['rate', 'rate'], ['errors', 'errors'], ['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'],
  ['queue', 'queue wait'], ['compute', 'compute'], ['batch', 'mean batch'],
  ['queued', 'queue depth'], ['inFlight', 'in flight'], ['total', 'total ok'], ['failed', 'total failed'],
  ['mean', 'mean latency'], ['weight', 'weight'],
];

function build(cards, chartsBox, sample, versions) {
  clear(cards);
  clear(chartsBox);
  const fields = new Map();
  const bars = new Map();
  const totalWeight = sample.versions.reduce((s, v) => s + (v.weight || 0), 0);
  versions.forEach((version, i) => {
    const v = sample.byVersion.get(version);
    const values = {};
    const grid = el('div', {class: 'stats'});
    for (const [key, label] of FIELDS) {
      const value = el('div', {class: 'v', dataset: {field: key}}, '—');
      values[key] = value;
      grid.append(el('div', {class: 'stat'}, el('div', {class: 'k'}, label), value));
    }
    const reasons = el('div', {class: 'muted', dataset: {field: 'reasons'}});
    const barBox = el('div', {class: 'bars'});
    const share = totalWeight > 0 ? Math.round(100 * (v.weight || 0) / totalWeight) + '% of traffic' : '';
    cards.append(el('div', {class: 'card version-card', dataset: {version: String(version)}},
      el('h3', null, el('span', {class: 'swatch'}, '■'), 'version ' + version, stateBadge(v.state),
        v.labels.map((l) => el('span', {class: 'badge label'}, l)), el('span', {class: 'muted'}, share)),
      grid, reasons,
      el('div', {class: 'legend-note'}, 'batch sizes executed, last 60 s'), barBox));
    cards.lastChild.querySelector('.swatch').style.color = PALETTE[i % PALETTE.length];
    values.reasons = reasons;
    values.barBox = barBox;
    fields.set(version, values);
  });
  const specs = [
    ['Requests per second', [['ok', false], ['errors', true]], (x) => rate(x)],
    ['Latency: p50 and p99 (5 s window)', [['p50', true], ['p99', false]], (x) => latency(x)],
    ['Queue wait vs compute (mean per request)', [['queue', true], ['compute', false]], (x) => latency(x)],
    ['Queue depth and requests in flight', [['queued', true], ['in flight', false]], (x) => count(Math.round(x))],
  ];
  const boxes = specs.map(([name]) => {
    const box = el('div', {class: 'chart'}, el('h3', null, name));
    chartsBox.append(box);
    return box;
  });
  // Charts are sized from their boxes, so they are made once every box is in the page.
  versions.forEach((version, i) => bars.set(version, barChart(fields.get(version).barBox, 'executions', PALETTE[i % PALETTE.length])));
  const charts = specs.map(([name, kinds, format], c) => {
    const series = [];
    versions.forEach((version, i) => {
      const v = sample.byVersion.get(version);
      for (const [kind, dash] of kinds) {
        series.push({label: title(v) + ' ' + kind, color: PALETTE[i % PALETTE.length], dash: dash ? [5, 4] : undefined});
      }
    });
    return timeChart(boxes[c], name, series, format);
  });
  return {fields, bars, charts};
}

/** The sample at or just before {@code back} ms before sample {@code i} that has this version. */
function base(samples, i, version, back) {
  const t = samples[i].t - back;
  let j = i - 1;
  let found = -1;
  while (j >= 0 && samples[j].byVersion.has(version)) {
    found = j;
    if (samples[j].t <= t) break;
    j--;
  }
  return found;
}

function sum(o) {
  return Object.values(o || {}).reduce((a, b) => a + b, 0);
}

/** Prometheus' histogram_quantile: linear inside the bucket; the +Inf bucket answers its lower bound. */
export function quantile(q, le, counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (seen + counts[i] >= rank && counts[i] > 0) {
      if (i >= le.length) return le[le.length - 1];
      const lower = i === 0 ? 0 : le[i - 1];
      return lower + (le[i] - lower) * ((rank - seen) / counts[i]);
    }
    seen += counts[i];
  }
  return le[le.length - 1];
}

function diff(a, b) {
  return a.map((x, i) => x - (b[i] || 0));
}

/** Windowed figures of one version between samples j and i. */
function window(samples, i, j, version) {
  const now = samples[i].byVersion.get(version);
  const then = samples[j].byVersion.get(version);
  const dt = (samples[i].t - samples[j].t) / 1000;
  const ok = now.success - then.success;
  const failuresNow = sum(now.failures);
  const failures = failuresNow - sum(then.failures);
  const lat = diff(now.latency.n, then.latency.n);
  const reasons = {};
  for (const [k, n] of Object.entries(now.failures)) {
    const d = n - (then.failures[k] || 0);
    if (d > 0) reasons[k] = d;
  }
  return {
    rate: dt > 0 ? ok / dt : null,
    errorRate: dt > 0 ? failures / dt : null,
    errorShare: ok + failures > 0 ? failures / (ok + failures) : null,
    reasons,
    p50: quantile(0.5, now.latency.le, lat),
    p90: quantile(0.9, now.latency.le, lat),
    p99: quantile(0.99, now.latency.le, lat),
    queue: ok > 0 ? (now.queueNs - then.queueNs) / ok / 1e9 : null,
    compute: ok > 0 ? (now.computeNs - then.computeNs) / ok / 1e9 : null,
    batch: now.executionCount > then.executionCount
      ? (now.inferenceCount - then.inferenceCount) / (now.executionCount - then.executionCount) : null,
  };
}

function set(node, text, value) {
  node.textContent = text;
  node.dataset.value = value === null || value === undefined ? '' : String(value);
}

function update(view, samples, versions) {
  const i = samples.length - 1;
  const last = samples[i];
  for (const version of versions) {
    const f = view.fields.get(version);
    const v = last.byVersion.get(version);
    const j = base(samples, i, version, WINDOW_MS);
    const w = j >= 0 ? window(samples, i, j, version) : null;
    set(f.rate, w ? rate(w.rate) : '—', w ? w.rate : null);
    set(f.errors, w ? percent(w.errorShare) : '—', w ? w.errorShare : null);
    set(f.p50, w ? latency(w.p50) : '—', w ? w.p50 : null);
    set(f.p90, w ? latency(w.p90) : '—', w ? w.p90 : null);
    set(f.p99, w ? latency(w.p99) : '—', w ? w.p99 : null);
    set(f.queue, w ? latency(w.queue) : '—', w ? w.queue : null);
    set(f.compute, w ? latency(w.compute) : '—', w ? w.compute : null);
    set(f.batch, w && w.batch !== null ? w.batch.toFixed(1) : '—', w ? w.batch : null);
    set(f.queued, count(v.queued), v.queued);
    set(f.inFlight, count(v.inFlight), v.inFlight);
    set(f.total, count(v.success), v.success);
    set(f.failed, count(sum(v.failures)), sum(v.failures)); // every routed failure, refusals at submit included
    set(f.mean, v.success > 0 ? latency(v.successNs / v.success / 1e9) : '—', v.success > 0 ? v.successNs / v.success / 1e9 : null);
    set(f.weight, String(v.weight), v.weight);
    f.reasons.textContent = w && Object.keys(w.reasons).length
      ? 'errors in the last 5 s: ' + Object.entries(w.reasons).map(([k, n]) => k + ' ' + n).join(', ') : '';
    // Batch sizes executed over the last minute.
    const b = base(samples, i, version, BATCH_WINDOW_MS);
    const then = b >= 0 ? samples[b].byVersion.get(version).batches : {};
    const sizes = Object.keys(v.batches).map(Number).sort((x, y) => x - y);
    const counts = sizes.map((s) => v.batches[s] - (then[s] || 0));
    view.bars.get(version).update(sizes, counts);
  }
  // Chart series: one point per sample, each over its own 5 s window.
  const xs = [];
  const series = view.charts.map(() => []);
  for (const c of series) {
    for (let k = 0; k < versions.length * 2; k++) c.push([]);
  }
  for (let k = 1; k < samples.length; k++) {
    xs.push(samples[k].t / 1000);
    versions.forEach((version, n) => {
      const v = samples[k].byVersion.get(version);
      const j = v ? base(samples, k, version, WINDOW_MS) : -1;
      const w = j >= 0 ? window(samples, k, j, version) : null;
      const put = (chart, idx, value) => series[chart][n * 2 + idx].push(value === undefined ? null : value);
      put(0, 0, w ? w.rate : null);
      put(0, 1, w ? w.errorRate : null);
      put(1, 0, w ? w.p50 : null);
      put(1, 1, w ? w.p99 : null);
      put(2, 0, w ? w.queue : null);
      put(2, 1, w ? w.compute : null);
      put(3, 0, v ? v.queued : null);
      put(3, 1, v ? v.inFlight : null);
    });
  }
  view.charts.forEach((chart, c) => chart.update(xs, series[c]));
}
