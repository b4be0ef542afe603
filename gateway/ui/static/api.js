// The session (an access token held in this tab's sessionStorage only) and the API calls.
// Credentials travel in request bodies and Authorization headers, never in a URL.

const SESSION_KEY = 'deploystream.session';
const QUERY = '/rest/deploystream/1';
const JIRA = '/rest/deployments/0.1';

/** The OAuth scope of approvers (gating decisions). */
export const APPROVE_GATING = 'approve:deployment-gating:deploystream';

/** Fired with `ended` when the API refuses the session's token (expired or revoked). */
export const sessionEvents = new EventTarget();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The signed-in session of this tab, or null. */
export function currentSession() {
  let session;
  try {
    session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
  } catch {
    session = null;
  }
  if (!session || typeof session.token !== 'string' || !(session.expiresAt > Date.now())) {
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }
  return session;
}

/** Exchange a client id and secret for an access token (client credentials grant). The
 * secret is sent once, in the body, and kept nowhere. */
export async function signIn(clientId, clientSecret) {
  const response = await fetch('/oauth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
    }),
    cache: 'no-store',
    credentials: 'omit',
  });
  if (response.status === 401 || response.status === 400) {
    throw new ApiError(response.status, 'Sign-in failed: the client id or secret is not right.');
  }
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  const body = await response.json();
  const session = {
    clientId,
    token: body.access_token,
    scopes: String(body.scope ?? '')
      .split(' ')
      .filter(Boolean),
    expiresAt: Date.now() + Number(body.expires_in) * 1000,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

export function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
}

export function canApprove(session) {
  return session.scopes.includes(APPROVE_GATING);
}

export function authorization(session) {
  return { Authorization: `Bearer ${session.token}` };
}

/** The session's token was refused: every view stops and the sign-in form returns. */
export function endSession(reason) {
  signOut();
  sessionEvents.dispatchEvent(new CustomEvent('ended', { detail: reason }));
}

async function messageOf(response) {
  if (response.status === 429) {
    const wait = response.headers.get('Retry-After');
    return `Too many requests; try again${wait ? ` in ${wait} s` : ' shortly'}.`;
  }
  try {
    const body = await response.json();
    if (Array.isArray(body)) return body.map((error) => String(error.message)).join(' ');
    if (body && typeof body === 'object') {
      return String(body.error_description ?? body.message ?? response.statusText);
    }
  } catch {
    // not JSON: the status says enough
  }
  return `The gateway answered ${response.status} ${response.statusText}.`;
}

const READ_ATTEMPTS = 4;
const MAX_RETRY_WAIT_S = 5;

/** Call the API as the session's client; JSON back (null for 202/204). Reads answered 503
 * (a rebalance, Kafka away) are tried again after the Retry-After the gateway sends. */
export async function call(session, path, { method = 'GET', body, signal } = {}) {
  const headers = { ...authorization(session), Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  for (let attempt = 1; ; attempt += 1) {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
    if (response.status !== 503 || method !== 'GET' || attempt === READ_ATTEMPTS) break;
    const wait = Math.min(Number(response.headers.get('Retry-After')) || 1, MAX_RETRY_WAIT_S);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
  }
  if (response.status === 401) {
    endSession('Your session has ended. Sign in again.');
    throw new ApiError(401, 'Your session has ended. Sign in again.');
  }
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  if (response.status === 202 || response.status === 204) return null;
  return response.json();
}

/** One page of a list: `{values, next}`. */
export function page(session, path, { limit = 50, cursor = null, signal } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set('cursor', cursor);
  return call(session, `${path}?${query}`, { signal });
}

/** Pages of a list until its end or `max` values: the first page's body (an issue's
 * details, say) with every value read, and `next` where more would start. */
export async function pages(session, path, { max = 2000, signal } = {}) {
  let first = null;
  const values = [];
  let next = null;
  do {
    const found = await page(session, path, { limit: 200, cursor: next, signal });
    first ??= found;
    values.push(...found.values);
    next = found.next;
  } while (next && values.length < max);
  return { ...first, values, next };
}

const segment = (value) => encodeURIComponent(String(value));

/** Paths of the API the web view calls. */
export const paths = {
  pipelines: () => `${QUERY}/pipelines`,
  environments: (pipeline) => `${QUERY}/pipelines/${segment(pipeline)}/environments`,
  history: (pipeline, environment) =>
    `${QUERY}/pipelines/${segment(pipeline)}/environments/${segment(environment)}/deployments`,
  issue: (key) => `${QUERY}/issues/${segment(key)}/deployments`,
  changes: () => `${QUERY}/changes`,
  deployment: (pipeline, environment, number) =>
    `${JIRA}/pipelines/${segment(pipeline)}/environments/${segment(environment)}` +
    `/deployments/${segment(number)}`,
  gatingStatus: (pipeline, environment, number) =>
    `${paths.deployment(pipeline, environment, number)}/gating-status`,
  gatingDecision: (pipeline, environment, number) =>
    `${paths.deployment(pipeline, environment, number)}/gating-decision`,
};

/** In-page routes (the part after `#`), each segment encoded. */
export const routes = {
  board: () => '#/board',
  issues: (key) => (key ? `#/issues/${segment(key)}` : '#/issues'),
  history: (pipeline, environment) =>
    `#/pipelines/${segment(pipeline)}/environments/${segment(environment)}`,
  deployment: (pipeline, environment, number) =>
    `#/deployments/${segment(pipeline)}/${segment(environment)}/${segment(number)}`,
};
