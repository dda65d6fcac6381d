// Try it: a request form built from the model's metadata (inputs, datatypes, shapes), sent to the REST
// data plane with the console's credential, and the same request as curl and grpcurl commands.
import {api, consoleApi, credentialKind} from './api.js';
import {el, clear, showError} from './format.js';

const CONTENTS = {
  BOOL: 'bool_contents', INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents',
};

export async function render(main, args, session) {
  clear(main);
  let models;
  try {
    models = (await consoleApi('models')).models.filter((m) => m.versions.some((v) => v.state === 'READY'));
  } catch (e) {
    showError('Models: ' + e.message);
    return null;
  }
  const model = args[0] && models.some((m) => m.name === args[0]) ? args[0] : (models[0] || {}).name;
  const select = el('select', {id: 'try-model', onchange: () => { location.hash = '#/try/' + encodeURIComponent(select.value); }},
    models.map((m) => el('option', {value: m.name, selected: m.name === model}, m.name)));
  main.append(el('div', {class: 'toolbar'}, el('h1', {class: 'grow'}, 'Try it'), el('label', null, 'Model ', select)));
  if (!model) {
    main.append(el('p', {class: 'muted'}, 'No model is ready.'));
    return null;
  }
  const info = models.find((m) => m.name === model);
  const version = el('select', {id: 'try-version'}, el('option', {value: ''}, 'routed (traffic weights)'),
    info.versions.filter((v) => v.state === 'READY').map((v) => el('option', {value: String(v.version)},
      'version ' + v.version + (v.labels.length ? ' (' + v.labels.join(', ') + ')' : ''))));
  let metadata;
  let config;
  try {
    metadata = await api('/v2/models/' + encodeURIComponent(model));
    config = await api('/v2/models/' + encodeURIComponent(model) + '/config');
  } catch (e) {
    main.append(el('p', {class: 'error'}, 'Metadata of ' + model + ': ' + e.message));
    return null;
  }
  const batched = (config.max_batch_size || 0) > 0;
  const inputs = metadata.inputs.map((t) => tensorInput(t, batched));
  const output = el('div', {id: 'try-output'});
  const curl = el('pre', {class: 'cmd', id: 'try-curl'});
  const grpcurl = el('pre', {class: 'cmd', id: 'try-grpcurl'});
  const send = el('button', {id: 'try-send', class: 'primary', type: 'button'}, 'Send');
  main.append(
    el('div', {class: 'grid2'},
      el('div', null,
        el('p', {class: 'muted'}, metadata.platform + ', max_batch_size ' + (config.max_batch_size || 0) +
          (batched ? ' (the first dimension is the batch)' : '')),
        el('div', {class: 'form-grid'}, el('span', null, 'Version'), version),
        el('h2', null, 'Inputs'), inputs.map((i) => i.node),
        send,
        el('h2', null, 'Outputs'), output),
      el('div', null,
        el('h2', null, 'The same request with curl (REST)'), curl,
        el('h2', null, 'With grpcurl (gRPC)'), grpcurl,
        el('p', {class: 'muted'}, credentialKind()
          ? 'The commands read your credential from $QUIVER_API_KEY / $QUIVER_TOKEN; the console never prints it.'
          : ''))));
  const build = () => {
    const request = {id: 'console-' + Date.now().toString(36), inputs: inputs.map((i) => i.value())};
    return request;
  };
  const refreshCommands = () => {
    try {
      const request = build();
      curl.textContent = curlCommand(model, version.value, request);
      grpcurl.textContent = grpcurlCommand(model, version.value, request, metadata, session);
    } catch (e) {
      curl.textContent = grpcurl.textContent = e.message;
    }
  };
  for (const i of inputs) i.node.addEventListener('input', refreshCommands);
  version.addEventListener('change', refreshCommands);
  refreshCommands();
  send.addEventListener('click', async () => {
    clear(output);
    let request;
    try {
      request = build();
    } catch (e) {
      output.append(el('p', {class: 'error'}, e.message));
      return;
    }
    const path = '/v2/models/' + encodeURIComponent(model) + (version.value ? '/versions/' + encodeURIComponent(version.value) : '') + '/infer';
    send.disabled = true;
    const t0 = performance.now();
    try {
      const answer = await api(path, {method: 'POST', body: request});
      const ms = performance.now() - t0;
      output.append(el('p', {class: 'muted', id: 'try-answered'}, 'version ' + answer.model_version + ' answered in ' +
        ms.toFixed(1) + ' ms (round trip from this browser)'));
      for (const o of answer.outputs) {
        const data = Array.isArray(o.data) ? o.data.flat(Infinity) : [];
        output.append(el('div', {class: 'tensor', dataset: {output: o.name}},
          el('div', {class: 'meta'}, o.name + '  ' + o.datatype + '  [' + o.shape.join(', ') + ']'),
          el('code', {class: 'values'}, JSON.stringify(data.slice(0, 256)) + (data.length > 256 ? ' … (' + data.length + ' values)' : ''))));
      }
    } catch (e) {
      output.append(el('p', {class: 'error', id: 'try-error'}, 'HTTP ' + e.status + ': ' + e.message));
    } finally {
      send.disabled = false;
    }
  });
  return null;
}

function tensorInput(t, batched) {
  const shape = t.shape.map((d, i) => (d >= 0 ? d : batched && i === 0 ? 1 : 4));
  const n = shape.reduce((a, b) => a * b, 1);
  const shapeInput = el('input', {class: 'shape', value: shape.join(', '), size: 16, dataset: {input: t.name}});
  const values = el('textarea', {class: 'values', rows: 3, dataset: {input: t.name}}, JSON.stringify(sample(t.datatype, n)));
  const node = el('div', {class: 'tensor'},
    el('div', {class: 'meta'}, t.name + '  ' + t.datatype + '  metadata shape [' + t.shape.join(', ') + ']'),
    el('div', {class: 'form-grid'}, el('span', null, 'shape'), shapeInput, el('span', null, 'values (JSON, flat)'), values));
  shapeInput.addEventListener('change', () => {
    const dims = parseShape(shapeInput.value, t.name);
    values.value = JSON.stringify(sample(t.datatype, dims.reduce((a, b) => a * b, 1)));
    node.dispatchEvent(new Event('input', {bubbles: true}));
  });
  return {
    node,
    value() {
      let data;
      try {
        data = JSON.parse(values.value);
      } catch (e) {
        throw new Error('input ' + t.name + ': the values are not JSON (' + e.message + ')');
      }
      return {name: t.name, datatype: t.datatype, shape: parseShape(shapeInput.value, t.name), data};
    },
  };
}

function parseShape(text, name) {
  const dims = text.split(',').map((s) => Number(s.trim()));
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new Error('input ' + name + ': the shape must be whole numbers, e.g. 1, 16');
  return dims;
}

function sample(datatype, n) {
  const out = [];
  for (let i = 0; i < Math.min(n, 100000); i++) {
    if (datatype === 'BOOL') out.push(i % 2 === 0);
    else if (datatype === 'BYTES') out.push('hello ' + i);
    else if (datatype.startsWith('FP') || datatype === 'BF16') out.push(i / 2);
    else if (datatype === 'UINT8' || datatype === 'INT8') out.push(i % 100);
    else out.push(i);
  }
  return out;
}

function quote(s) {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

function authFlag(flag) {
  const kind = credentialKind();
  if (kind === 'api_key') return ' \\\n  ' + flag + ' "x-api-key: $QUIVER_API_KEY"';
  if (kind === 'bearer') return ' \\\n  ' + flag + ' "authorization: Bearer $QUIVER_TOKEN"';
  return '';
}

function curlCommand(model, version, request) {
  const url = location.origin + '/v2/models/' + encodeURIComponent(model) +
    (version ? '/versions/' + encodeURIComponent(version) : '') + '/infer';
  return 'curl -s -X POST ' + (location.protocol === 'https:' ? '--cacert ca.pem ' : '') + quote(url) +
    ' \\\n  -H \'Content-Type: application/json\'' + authFlag('-H') + ' \\\n  -d ' + quote(JSON.stringify(request));
}

function grpcurlCommand(model, version, request, metadata, session) {
  const message = {model_name: model, id: request.id, inputs: []};
  if (version) message.model_version = version;
  for (const input of request.inputs) {
    const field = CONTENTS[input.datatype];
    if (!field) {
      return '# ' + input.datatype + ' travels only as raw_input_contents (little-endian bytes), which grpcurl cannot ' +
        'build from JSON numbers: use a client library (tritonclient, the Java stubs).';
    }
    let values = Array.isArray(input.data) ? input.data.flat(Infinity) : [input.data];
    if (input.datatype === 'BYTES') values = values.map((s) => base64(String(s)));
    message.inputs.push({name: input.name, datatype: input.datatype, shape: input.shape, contents: {[field]: values}});
  }
  const tls = location.protocol === 'https:';
  return 'grpcurl ' + (tls ? '-cacert ca.pem' : '-plaintext') + authFlag('-H') + ' \\\n  -d ' + quote(JSON.stringify(message)) +
    ' \\\n  ' + location.hostname + ':' + (session.grpcPort || 8001) + ' inference.GRPCInferenceService/ModelInfer';
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
