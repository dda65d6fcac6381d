// DOM building and number formatting. Everything user- or server-provided goes into the page as text
// (textContent), never as markup.

/** el('tr', {class: 'x', dataset: {model: 'm'}, onclick: f}, child, 'text', ...) */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else if (key === 'text') node.textContent = value;
      else if (value === true) node.setAttribute(key, '');
      else node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function bytes(n) {
  if (n === null || n === undefined || n < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
}

/** Seconds to a short human latency: 312 µs, 4.21 ms, 1.20 s. */
export function latency(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
  if (seconds < 1e-3) return (seconds * 1e6).toFixed(0) + ' µs';
  if (seconds < 1) return (seconds * 1e3).toFixed(seconds < 0.01 ? 2 : 1) + ' ms';
  return seconds.toFixed(2) + ' s';
}

export function rate(perSecond) {
  if (perSecond === null || perSecond === undefined || !isFinite(perSecond)) return '—';
  if (perSecond >= 1000) return (perSecond / 1000).toFixed(1) + 'k/s';
  return perSecond.toFixed(perSecond < 10 ? 1 : 0) + '/s';
}

export function count(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

export function duration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + s + 's';
}

export function time(millis) {
  const t = new Date(millis);
  return t.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function percent(x) {
  return x === null || x === undefined || !isFinite(x) ? '—' : (x * 100).toFixed(x < 0.1 ? 2 : 1) + '%';
}

/** A state badge: READY, LOADING, UNLOADING, FAILED. */
export function stateBadge(state) {
  return el('span', {class: 'badge state-' + String(state).toLowerCase(), text: state});
}

/**
 * Shows the page's one modal dialog. {@code onConfirm} runs when the user confirms; when it throws, its
 * message is shown and the dialog stays open. Resolves with onConfirm's result, or null when cancelled.
 * With {@code stayOpen}, a successful confirmation leaves the dialog open (to show a result) with one
 * Close button.
 */
export function openDialog({title, body, confirmLabel = 'Confirm', danger = false, onConfirm, stayOpen = false}) {
  const dialog = document.getElementById('dialog');
  const confirm = document.getElementById('dialog-confirm');
  const cancel = document.getElementById('dialog-cancel');
  const error = document.getElementById('dialog-error');
  document.getElementById('dialog-title').textContent = title;
  clear(document.getElementById('dialog-body')).append(body);
  confirm.textContent = confirmLabel;
  confirm.className = danger ? 'primary danger-bg' : 'primary';
  confirm.disabled = false;
  cancel.hidden = false;
  error.hidden = true;
  return new Promise((resolve) => {
    let busy = false;
    let finished = false;
    let outcome = null;
    const finish = (value) => {
      confirm.removeEventListener('click', onClick);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onCancel = (e) => {
      e.preventDefault();
      if (!busy) finish(finished ? outcome : null);
    };
    const onClick = async (e) => {
      e.preventDefault();
      if (busy) return;
      if (finished) {
        finish(outcome);
        return;
      }
      busy = true;
      confirm.disabled = true;
      error.hidden = true;
      try {
        const result = onConfirm ? await onConfirm() : true;
        busy = false;
        outcome = result === undefined ? true : result;
        if (stayOpen) {
          finished = true;
          confirm.textContent = 'Close';
          confirm.disabled = false;
          cancel.hidden = true;
        } else {
          finish(outcome);
        }
      } catch (err) {
        busy = false;
        confirm.disabled = false;
        error.textContent = err.message || String(err);
        error.hidden = false;
      }
    };
    confirm.addEventListener('click', onClick);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
  });
}

export function showError(message) {
  const banner = document.getElementById('error');
  if (!message) {
    banner.hidden = true;
    banner.textContent = '';
    return;
  }
  banner.textContent = message;
  banner.hidden = false;
}
