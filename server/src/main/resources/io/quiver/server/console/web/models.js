// The models page: every model and version with its state, and the control plane's operations (load,
// unload, traffic and labels, upload), each after a confirmation. Refreshes every few seconds.
import {consoleApi, ApiError} from './api.js';
import {el, clear, bytes, count, stateBadge, openDialog, showError} from './format.js';

const REFRESH_MS = 3000;

export async function render(main, args, session) {
  clear(main);
  const table = el('table', {id: 'models-table'});
  const uploadButton = el('button', {class: 'primary', type: 'button', dataset: {action: 'upload'},
    disabled: !session.admin || !session.controlPlane, onclick: () => uploadDialog(session, null, refresh)}, 'Upload a version…');
  main.append(...[
    el('div', {class: 'toolbar'},
      el('h1', {class: 'grow'}, 'Models'),
      uploadButton),
    !session.controlPlane ? el('p', {class: 'muted'}, 'The control plane is off (--control-port -1): this page is read-only.') : null,
    session.controlPlane && !session.admin ? el('p', {class: 'muted'}, 'Your credential may read, not change: the actions need the admin permission.') : null,
    table].filter(Boolean));
  let timer = null;
  let stopped = false;
  let shown = null;
  async function refresh() {
    try {
      const answer = await consoleApi('models');
      const text = JSON.stringify(answer.models);
      if (!stopped && text !== shown) { // re-render only what changed: keeps focus and hover still
        shown = text;
        fill(table, answer.models, session, refresh);
      }
      showError(null);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) showError('Models: ' + e.message);
    }
  }
  await refresh();
  timer = setInterval(refresh, REFRESH_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

function fill(table, models, session, refresh) {
  clear(table);
  table.append(el('thead', null, el('tr', null,
    el('th', null, 'Model'), el('th', null, 'Version'), el('th', null, 'State'), el('th', null, 'Platform / runtime'),
    el('th', {class: 'num'}, 'Instances'), el('th', {class: 'num'}, 'Max batch'), el('th', {class: 'num'}, 'Memory'),
    el('th', {class: 'num'}, 'Weight'), el('th', null, 'Labels'), el('th', {class: 'num'}, 'In flight'),
    el('th', null, 'Reason'), el('th', null, ''))));
  const body = el('tbody');
  const canChange = session.admin && session.controlPlane;
  for (const model of models) {
    const versions = model.versions.length ? model.versions : [null];
    const totalWeight = model.versions.reduce((sum, v) => sum + (v.weight || 0), 0);
    versions.forEach((v, i) => {
      const row = el('tr', {class: i === 0 ? 'model-first' : null, dataset: {model: model.name, version: v ? String(v.version) : ''}});
      row.append(
        el('td', null, i === 0 ? el('strong', null, model.name) : ''),
        el('td', {class: 'num'}, v ? String(v.version) : '—'),
        el('td', {class: 'state'}, v ? stateBadge(v.state) : stateBadge('UNAVAILABLE')),
        el('td', null, v && v.platform ? v.platform + ' / ' + v.runtime : ''),
        el('td', {class: 'num', title: v && v.instanceGroups ? v.instanceGroups : null}, v && v.instances !== undefined ? String(v.instances) : ''),
        el('td', {class: 'num'}, v && v.maxBatchSize !== undefined ? String(v.maxBatchSize) : ''),
        el('td', {class: 'num memory'}, v && v.state === 'READY' ? bytes(v.memoryBytes) : ''),
        el('td', {class: 'num weight'}, v && totalWeight > 0 ? v.weight + ' (' + Math.round(100 * v.weight / totalWeight) + '%)' : ''),
        el('td', {class: 'labels'}, v ? v.labels.map((l) => el('span', {class: 'badge label'}, l)) : ''),
        el('td', {class: 'num'}, v && v.inFlight !== undefined ? count(v.inFlight) : ''),
        el('td', {class: 'reason'}, v ? v.reason : model.reason),
        el('td', {class: 'actions'}, i === 0 ? actions(model, canChange, session, refresh) : ''));
      body.append(row);
    });
  }
  table.append(body);
}

function actions(model, canChange, session, refresh) {
  const ready = model.versions.some((v) => v.state === 'READY');
  const loaded = model.versions.length > 0;
  const button = (action, label, handler, enabled, cls) => el('button', {type: 'button', class: 'small ' + (cls || ''),
    dataset: {action, model: model.name}, disabled: !enabled, onclick: handler}, label);
  return [
    button('live', 'Live', () => { location.hash = '#/live/' + encodeURIComponent(model.name); }, ready),
    button('try', 'Try', () => { location.hash = '#/try/' + encodeURIComponent(model.name); }, ready),
    ' ',
    button('load', 'Load', () => loadDialog(model, refresh), canChange),
    button('unload', 'Unload', () => unloadDialog(model, refresh), canChange && loaded, 'danger'),
    button('traffic', 'Traffic', () => trafficDialog(model, refresh), canChange && ready),
    button('upload', 'Upload', () => uploadDialog(session, model.name, refresh), canChange),
  ];
}

async function unloadDialog(model, refresh) {
  const done = await openDialog({
    title: 'Unload ' + model.name + '?',
    body: el('p', null, 'Every version of ', el('strong', null, model.name),
      ' stops taking requests; requests in flight finish first. The control plane records it in the desired state.'),
    confirmLabel: 'Unload', danger: true,
    onConfirm: () => consoleApi('models/' + encodeURIComponent(model.name) + '/unload', {method: 'POST', body: {}}),
  });
  if (done) refresh();
}

async function loadDialog(model, refresh) {
  const mode = el('select', {id: 'load-mode'},
    el('option', {value: 'config'}, "the config's version policy"),
    el('option', {value: 'latest'}, 'the latest N versions'),
    el('option', {value: 'versions'}, 'exactly these versions'),
    el('option', {value: 'all'}, 'every version'));
  const value = el('input', {id: 'load-value', placeholder: 'N, or versions: 1,2', size: 18});
  const done = await openDialog({
    title: 'Load ' + model.name,
    body: el('div', null, el('p', null, 'Loads (or reloads) ', el('strong', null, model.name),
      '. New versions are warmed up before they take traffic; versions no longer selected drain, then unload.'),
      el('div', {class: 'form-grid'}, el('span', null, 'Load'), mode, el('span', null, 'Value'), value)),
    confirmLabel: 'Load',
    onConfirm: () => {
      const body = {};
      if (mode.value === 'latest') body.latest = parseWhole(value.value, 'N');
      if (mode.value === 'versions') body.versions = value.value.split(',').map((s) => parseWhole(s, 'a version'));
      if (mode.value === 'all') body.all = true;
      return consoleApi('models/' + encodeURIComponent(model.name) + '/load', {method: 'POST', body});
    },
  });
  if (done) refresh();
}

function parseWhole(text, what) {
  const n = Number(String(text).trim());
  if (!Number.isInteger(n) || n < 0) throw new Error(what + ' must be a whole number; was "' + text + '"');
  return n;
}

async function trafficDialog(model, refresh) {
  const weights = el('div', {class: 'weights'});
  const inputs = [];
  for (const v of model.versions) {
    const input = el('input', {type: 'number', min: 0, step: 1, value: v.weight || 0, dataset: {weightVersion: String(v.version)}});
    inputs.push([v.version, input]);
    weights.append(el('span', null, 'version ' + v.version + ' '), input, stateBadge(v.state));
  }
  const labels = el('div', {id: 'traffic-labels'});
  const addLabel = (name, version) => {
    const row = el('div', {class: 'toolbar'},
      el('input', {class: 'label-name', placeholder: 'label, e.g. canary', value: name || '', size: 16}),
      '→ version', el('input', {class: 'label-version', type: 'number', min: 0, value: version ?? '', size: 6}),
      el('button', {type: 'button', class: 'small', onclick: () => row.remove()}, 'remove'));
    labels.append(row);
  };
  for (const v of model.versions) for (const l of v.labels) addLabel(l, v.version);
  const done = await openDialog({
    title: 'Traffic of ' + model.name,
    body: el('div', null,
      el('p', null, 'Relative weights of the requests that name no version (0 takes none; all 0 clears the split, and the highest ready version takes everything). Labels let a request name "canary" as its version.'),
      weights,
      el('h3', null, 'Labels'), labels,
      el('button', {type: 'button', class: 'small', id: 'traffic-add-label', onclick: () => addLabel('', '')}, 'add a label')),
    confirmLabel: 'Apply',
    onConfirm: () => {
      const body = {weights: {}, labels: {}};
      let total = 0;
      for (const [version, input] of inputs) {
        const w = parseWhole(input.value || '0', 'the weight of version ' + version);
        total += w;
        if (w > 0) body.weights[version] = w;
      }
      if (total === 0) body.weights = {};
      for (const row of labels.children) {
        const name = row.querySelector('.label-name').value.trim();
        const version = row.querySelector('.label-version').value;
        if (!name) continue;
        body.labels[name] = parseWhole(version, 'the version of label ' + name);
      }
      return consoleApi('models/' + encodeURIComponent(model.name) + '/traffic', {method: 'POST', body});
    },
  });
  if (done) refresh();
}

// ---------------------------------------------------------------------------------------------
// Upload: a directory (or files) streamed in chunks, or one archive unpacked by the server.

const BROWSER_DIGEST_LIMIT = 256 * 1024 * 1024;

async function uploadDialog(session, modelName, refresh) {
  const name = el('input', {id: 'upload-model', value: modelName || '', required: true, size: 28});
  const version = el('input', {id: 'upload-version', type: 'number', min: 0, placeholder: 'next', size: 8});
  const load = el('input', {id: 'upload-load', type: 'checkbox', checked: true});
  const dir = el('input', {id: 'upload-dir', type: 'file', webkitdirectory: true, multiple: true});
  const files = el('input', {id: 'upload-files', type: 'file', multiple: true});
  const archive = el('input', {id: 'upload-archive', type: 'file', accept: '.zip,.tar,.tgz,.tar.gz'});
  const config = el('input', {id: 'upload-config', type: 'file', accept: '.pbtxt,.txt'});
  const progress = el('progress', {id: 'upload-progress', max: 1, value: 0});
  const status = el('div', {id: 'upload-status', class: 'muted'}, '');
  const result = el('div', {id: 'upload-result', class: 'digests'});
  const body = el('div', null,
    el('p', null, 'A new version of a model (new or existing), through the control plane\'s UploadModel: ' +
      'choose the version\'s directory (the one holding model.onnx), its files, or one archive (.zip, .tar, .tar.gz). ' +
      'Limit: ' + bytes(session.maxUploadBytes) + '.'),
    el('div', {class: 'form-grid'},
      el('span', null, 'Model'), name,
      el('span', null, 'Version'), version,
      el('span', null, 'Directory'), dir,
      el('span', null, 'or files'), files,
      el('span', null, 'or an archive'), archive,
      el('span', null, 'config.pbtxt (optional)'), config,
      el('span', null, 'Load when uploaded'), load),
    el('div', null, progress, status),
    result);
  const done = await openDialog({
    title: 'Upload a model version',
    body,
    confirmLabel: 'Upload',
    stayOpen: true,
    onConfirm: () => runUpload({name: name.value.trim(), version: version.value, load: load.checked,
      dir: dir.files, files: files.files, archive: archive.files[0], config: config.files[0]}, progress, status, result),
  });
  if (done) refresh();
}

async function runUpload(form, progress, status, result) {
  if (!form.name) throw new Error('name the model');
  let parts;
  let archiveName = null;
  if (form.archive) {
    parts = [{path: form.archive.name, file: form.archive}];
    archiveName = form.archive.name;
  } else if (form.dir && form.dir.length) {
    // webkitRelativePath is "<chosen directory>/<path inside it>": the version's files are what is inside.
    parts = Array.from(form.dir).map((f) => ({path: f.webkitRelativePath.split('/').slice(1).join('/'), file: f}));
  } else if (form.files && form.files.length) {
    parts = Array.from(form.files).map((f) => ({path: f.name, file: f}));
  } else {
    throw new Error('choose a directory, files or an archive');
  }
  parts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const total = parts.reduce((sum, p) => sum + p.file.size, 0);
  const header = {model: form.name, load: form.load, archive: archiveName};
  if (form.version !== '') header.version = Number(form.version);
  if (form.config) header.config = await form.config.text();
  clear(result);
  status.textContent = 'starting…';
  const session = await consoleApi('uploads', {method: 'POST', body: header});
  const chunk = session.chunkBytes;
  let sent = 0;
  const digests = [];
  try {
    for (const part of parts) {
      let browserSha = null;
      if (window.crypto && crypto.subtle && part.file.size <= BROWSER_DIGEST_LIMIT) {
        status.textContent = 'hashing ' + part.path + '…';
        browserSha = hex(await crypto.subtle.digest('SHA-256', await part.file.arrayBuffer()));
      }
      let offset = 0;
      do {
        const end = Math.min(offset + chunk, part.file.size);
        const last = end >= part.file.size;
        const headers = {'x-quiver-path': encodeURIComponent(part.path), 'x-quiver-last': last ? '1' : '0'};
        if (last && browserSha) headers['x-quiver-sha256'] = browserSha;
        const data = await part.file.slice(offset, end).arrayBuffer();
        const answer = await consoleApi('uploads/' + session.id + '/chunk', {method: 'POST', headers, body: data});
        sent += end - offset;
        offset = end;
        progress.value = total === 0 ? 1 : sent / total;
        status.textContent = 'sent ' + bytes(sent) + ' of ' + bytes(total) + ' (' + Math.round(100 * progress.value) + '%)';
        if (last && answer.sha256) digests.push({path: part.path, sha256: answer.sha256, browser: browserSha});
      } while (offset < part.file.size);
    }
    status.textContent = archiveName ? 'unpacking and storing…' : 'storing' + (form.load ? ' and loading…' : '…');
    const answer = await consoleApi('uploads/' + session.id + '/finish', {method: 'POST', body: {}});
    progress.value = 1;
    status.textContent = 'uploaded ' + answer.name + ' version ' + answer.version + ': ' + answer.files + ' file(s), ' +
      bytes(answer.bytes) + (form.load ? '; ' + (answer.model.versions.find((v) => v.version === answer.version) || {state: '?'}).state : '');
    const byPath = new Map(digests.map((d) => [d.path, d]));
    if (answer.archiveSha256) {
      const d = byPath.get(archiveName);
      result.append(el('div', null, 'archive ' + archiveName + '  sha256 ' + answer.archiveSha256 +
        (d && d.browser ? '  (matches the browser\'s)' : '')));
    }
    for (const f of answer.digests) {
      const d = byPath.get(f.path);
      result.append(el('div', {class: 'digest', dataset: {path: f.path, sha256: f.sha256}},
        f.path + '  ' + bytes(f.bytes) + '  sha256 ' + f.sha256 + (d && d.browser ? '  (matches the browser\'s)' : '')));
    }
    return answer;
  } catch (e) {
    consoleApi('uploads/' + session.id + '/cancel', {method: 'POST', body: {}}).catch(() => {});
    status.textContent = 'failed';
    throw e;
  }
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}
