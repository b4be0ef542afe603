// The web view: sign-in, the header, and the routes (after `#`) to the views.

import { currentSession, endSession, sessionEvents, signOut } from './api.js';
import { replace } from './dom.js';
import { refreshAges } from './format.js';
import { ChangeStream } from './stream.js';
import { board } from './views/board.js';
import { deployment } from './views/deployment.js';
import { environmentHistory } from './views/history.js';
import { issues } from './views/issues.js';
import { notFound } from './views/parts.js';
import { signInForm } from './views/signin.js';

const ROUTES = [
  [/^#\/board$/, board],
  [/^#\/pipelines\/([^/]+)\/environments\/([^/]+)$/, environmentHistory],
  [/^#\/issues(?:\/([^/]+))?$/, issues],
  [/^#\/deployments\/([^/]+)\/([^/]+)\/([^/]+)$/, deployment],
];
const AGES_EVERY_MS = 30000;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const whoName = document.getElementById('who-name');
const live = document.getElementById('live');

let session = null;
let stream = null;
let view = null; // the AbortController of the view on screen
let expiry = null;

function route(hash) {
  for (const [pattern, render] of ROUTES) {
    const match = pattern.exec(hash);
    if (!match) continue;
    try {
      return {
        render,
        params: match.slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p))),
      };
    } catch {
      return { render: notFound, params: [] };
    }
  }
  return { render: notFound, params: [] };
}

/** Show the view of the current route; `focus` moves the keyboard to its heading. */
function show({ focus = true } = {}) {
  view?.abort();
  view = new AbortController();
  if (!session) {
    showSignIn();
    return;
  }
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    window.history.replaceState(null, '', '#/board');
  }
  const { render, params } = route(location.hash);
  replace(main);
  const context = { session, stream, main, signal: view.signal, params };
  Promise.resolve(render(context)).catch((error) => {
    if (!view.signal.aborted) console.error(error);
  });
  if (focus) main.querySelector('h1')?.focus();
}

function showSignIn(message) {
  view?.abort();
  view = new AbortController();
  nav.hidden = true;
  who.hidden = true;
  live.hidden = true;
  replace(main, signInForm({ message, onSignedIn: start, signal: view.signal }));
  main.querySelector('input')?.focus();
}

function setLive(status) {
  live.hidden = false;
  live.className = `live live-${status}`;
  live.textContent =
    status === 'live' ? 'Live' : status === 'connecting' ? 'Connecting…' : 'Reconnecting…';
}

/** Signed in (now or in an earlier load of this tab): open the change stream and show. */
function start(signedIn) {
  session = signedIn;
  stream = new ChangeStream(session);
  stream.addEventListener('status', (event) => setLive(event.detail));
  // Reconnected without resuming: changes may have been missed; the view reads afresh.
  stream.addEventListener('resync', () => show({ focus: false }));
  setLive('connecting');
  stream.start();
  replace(whoName, session.clientId);
  nav.hidden = false;
  who.hidden = false;
  clearTimeout(expiry);
  expiry = setTimeout(
    () => endSession('Your session has expired. Sign in again.'),
    Math.max(0, session.expiresAt - Date.now()),
  );
  show();
}

function stop(message) {
  stream?.stop();
  stream = null;
  session = null;
  clearTimeout(expiry);
  showSignIn(message);
}

sessionEvents.addEventListener('ended', (event) => stop(event.detail));
document.getElementById('sign-out').addEventListener('click', () => {
  signOut();
  stop('Signed out.');
});
window.addEventListener('hashchange', () => show());
setInterval(() => refreshAges(main), AGES_EVERY_MS);

const resumed = currentSession();
if (resumed) start(resumed);
else showSignIn();
