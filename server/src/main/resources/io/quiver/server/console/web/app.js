// The console's shell: sign-in when the server asks for a credential, the navigation, and a hash router
// (#/models, #/live/NAME, #/try/NAME, #/server). Each page renders into <main> and returns a function
// that stops its timers when the user leaves it.
import {consoleApi, setCsrf, setCredential, clearCredential, credential} from './api.js';
import {showError} from './format.js';
import * as models from './models.js';
import * as live from './live.js';
import * as tryit from './tryit.js';
import * as server from './server.js';

const pages = {models, live, try: tryit, server};
const state = {session: null, leave: null};

async function loadSession() {
  try {
    state.session = await consoleApi('session');
  } catch (e) {
    if (e.status === 401) {
      showLogin(credential() ? e.message : null);
      return false;
    }
    showError('Could not reach the console API: ' + e.message);
    return false;
  }
  setCsrf(state.session.csrf);
  document.getElementById('login').hidden = true;
  document.getElementById('nav').hidden = false;
  const who = document.getElementById('who');
  if (state.session.authentication) {
    who.textContent = state.session.principal + (state.session.admin ? ' (admin)' : ' (read-only)');
    document.getElementById('logout').hidden = false;
  } else {
    who.textContent = 'authentication off';
  }
  return true;
}

function showLogin(error) {
  if (state.leave) {
    state.leave();
    state.leave = null;
  }
  document.getElementById('main').hidden = true;
  document.getElementById('nav').hidden = true;
  document.getElementById('login').hidden = false;
  const message = document.getElementById('login-error');
  message.hidden = !error;
  message.textContent = error ? 'Refused: ' + error : '';
  document.getElementById('login-value').focus();
}

async function route() {
  if (!state.session) return;
  if (state.leave) {
    state.leave();
    state.leave = null;
  }
  showError(null);
  const [name, ...args] = (location.hash.replace(/^#\/?/, '') || 'models').split('/');
  const page = pages[name] || pages.models;
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', link.dataset.page === (pages[name] ? name : 'models'));
  }
  const main = document.getElementById('main');
  main.hidden = false;
  try {
    state.leave = await page.render(main, args.map(decodeURIComponent), state.session) || null;
  } catch (e) {
    showError('This page failed: ' + e.message);
  }
}

document.getElementById('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  setCredential(document.getElementById('login-kind').value, document.getElementById('login-value').value.trim());
  document.getElementById('login-value').value = '';
  if (await loadSession()) route();
});

document.getElementById('logout').addEventListener('click', () => {
  clearCredential();
  location.hash = '#/models';
  location.reload();
});

window.addEventListener('quiver-unauthenticated', (e) => {
  state.session = null;
  showLogin(e.detail);
});
window.addEventListener('hashchange', route);

(async () => {
  if (await loadSession()) route();
})();
