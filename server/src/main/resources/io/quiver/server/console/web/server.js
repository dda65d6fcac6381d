// The server page: version, uptime, ports, TLS and authentication, extensions, runtime and JVM memory,
// and (for administrators) the recent audit lines.
import {consoleApi, ApiError} from './api.js';
import {el, clear, bytes, duration, time, showError} from './format.js';

const REFRESH_MS = 5000;

export async function render(main) {
  clear(main);
  const box = el('div', {id: 'server'});
  main.append(el('div', {class: 'toolbar'}, el('h1', {class: 'grow'}, 'Server')), box);
  let stopped = false;
  async function refresh() {
    try {
      const s = await consoleApi('server');
      if (!stopped) fill(box, s);
      showError(null);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) showError('Server: ' + e.message);
    }
  }
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

function facts(pairs) {
  return el('dl', {class: 'facts'}, pairs.map(([k, v]) => [el('dt', null, k), el('dd', {dataset: {fact: k}}, v)]));
}

function port(p) {
  return p < 0 ? 'off' : String(p);
}

function fill(box, s) {
  clear(box);
  const m = s.memory;
  box.append(el('div', {class: 'grid2'},
    el('div', null, el('h2', null, 'Quiver'), facts([
      ['version', s.version],
      ['uptime', duration(s.uptimeMs)],
      ['started', time(s.startedAt)],
      ['bound to', s.host],
      ['gRPC port', port(s.ports.grpc)],
      ['REST port', port(s.ports.http)],
      ['metrics port', port(s.ports.metrics)],
      ['control port', port(s.ports.control)],
      ['TLS', s.tls],
      ['authentication', s.authentication],
      ['tracing', s.tracing ? 'on' : 'off'],
      ['repository', s.repository],
      ['model control mode', s.controlMode],
      ['extensions', s.extensions.join(', ')],
    ])),
    el('div', null, el('h2', null, 'Runtime'), facts([
      ['Java', s.runtime.java + ' (' + s.runtime.vendor + ')'],
      ['VM', s.runtime.vm],
      ['OS', s.runtime.os],
      ['processors', String(s.runtime.processors)],
      ['threads', String(s.runtime.threads)],
      ['pid', String(s.runtime.pid)],
      ['heap', bytes(m.heap.used) + ' used of ' + bytes(m.heap.committed) + ' committed, max ' + bytes(m.heap.max)],
      ['non-heap', bytes(m.nonHeap.used) + ' used of ' + bytes(m.nonHeap.committed)],
      ['direct buffers', m.direct ? bytes(m.direct.used) + ' in ' + m.direct.count + ' buffers' : '—'],
      ['GC', s.gc.map((g) => g.name + ': ' + g.count + ' in ' + g.timeMs + ' ms').join('; ')],
    ]))));
  box.append(el('h2', null, 'Recent audit events'));
  if (!s.auditVisible) {
    box.append(el('p', {class: 'muted'}, 'Audit lines name principals and peers: they are shown to administrators only.'));
    return;
  }
  const rows = s.audit.map((a) => el('tr', null, el('td', null, time(a.time)), el('td', null, a.logger),
    el('td', null, a.level), el('td', {class: 'message'}, a.message)));
  box.append(rows.length
    ? el('table', {id: 'audit'}, el('thead', null, el('tr', null, el('th', null, 'time'), el('th', null, 'logger'),
      el('th', null, 'level'), el('th', null, 'event'))), el('tbody', null, rows))
    : el('p', {class: 'muted'}, 'No audit event since the server started.'));
}
