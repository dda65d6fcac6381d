// The console's HTTP client: the credential lives in sessionStorage (this tab only, gone when it closes)
// and travels in a header; it is never put in a URL. POSTs carry the session's anti-forgery token.

const CREDENTIAL = 'quiver.console.credential';
let csrfToken = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function credential() {
  try {
    return JSON.parse(sessionStorage.getItem(CREDENTIAL));
  } catch (e) {
    return null;
  }
}

export function setCredential(kind, value) {
  sessionStorage.setItem(CREDENTIAL, JSON.stringify({kind, value}));
}

export function clearCredential() {
  sessionStorage.removeItem(CREDENTIAL);
}

export function setCsrf(token) {
  csrfToken = token;
}

export function authHeaders() {
  const c = credential();
  if (!c || !c.value) return {};
  return c.kind === 'bearer' ? {'Authorization': 'Bearer ' + c.value} : {'x-api-key': c.value};
}

/** Whether a credential is set (the curl examples then show where it goes, never what it is). */
export function credentialKind() {
  const c = credential();
  return c && c.value ? c.kind : null;
}

/**
 * fetch with the credential and, for changes, the anti-forgery token. A plain object body is sent as
 * JSON; a Blob/ArrayBuffer as bytes. Resolves to the parsed JSON answer (null for an empty one); rejects
 * with an ApiError carrying the HTTP status and the server's message.
 */
export async function api(path, options = {}) {
  const method = options.method || 'GET';
  const headers = Object.assign({}, authHeaders(), options.headers || {});
  let body = options.body;
  if (method !== 'GET') headers['x-quiver-csrf'] = csrfToken || '';
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer) && !ArrayBuffer.isView(body)) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, {method, headers, body, credentials: 'omit', cache: 'no-store', redirect: 'error'});
  } catch (e) {
    throw new ApiError(0, 'the server did not answer (' + e.message + ')');
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!response.ok) {
    const message = json && typeof json.error === 'string' ? json.error : (text || response.statusText);
    const error = new ApiError(response.status, message);
    if (response.status === 401) window.dispatchEvent(new CustomEvent('quiver-unauthenticated', {detail: message}));
    throw error;
  }
  return json;
}

export const consoleApi = (path, options) => api('/console/api/' + path, options);
