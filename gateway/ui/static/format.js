// Words, colours and orders: how values of the API are shown.

import { h } from './dom.js';

const STATES = {
  successful: 'Successful',
  failed: 'Failed',
  in_progress: 'In progress',
  pending: 'Pending',
  cancelled: 'Cancelled',
  rolled_back: 'Rolled back',
  unknown: 'Unknown',
};

const GATING = {
  awaiting: 'Awaiting approval',
  allowed: 'Allowed',
  prevented: 'Prevented',
  expired: 'Expired',
  invalid: 'Not gated',
};

// Environments from development to production, as Jira orders them.
const ENVIRONMENT_TYPES = ['development', 'testing', 'staging', 'production', 'unmapped'];

/** The state of a deployment as a coloured word (the class comes from known states only). */
export function stateBadge(state) {
  const known = Object.hasOwn(STATES, state) ? state : 'unknown';
  return h('span', { class: `badge state-${known}` }, STATES[known]);
}

/** A gating status as a coloured word. */
export function gatingBadge(status) {
  const known = Object.hasOwn(GATING, status) ? status : 'invalid';
  return h('span', { class: `badge gating-${known}` }, GATING[known]);
}

export function stateClass(state) {
  return `state-${Object.hasOwn(STATES, state) ? state : 'unknown'}`;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago" of an RFC 3339 time. */
export function age(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return 'unknown time';
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 36) return `${hours} h ago`;
  return `${Math.round(hours / 24)} d ago`;
}

/** A <time> showing the age of `iso` (kept current by `refreshAges`), the time as a tooltip. */
export function ageOf(iso) {
  const exact = Number.isNaN(Date.parse(iso)) ? String(iso) : new Date(iso).toLocaleString();
  return h('time', { datetime: iso, title: exact, 'data-age': '' }, age(iso));
}

/** Bring every age on the page up to date. */
export function refreshAges(root = document) {
  const now = Date.now();
  for (const element of root.querySelectorAll('time[data-age]')) {
    element.textContent = age(element.getAttribute('datetime'), now);
  }
}

/** Order environments from development to production, then by name. */
export function compareEnvironments(a, b) {
  const rank = (type) => {
    const index = ENVIRONMENT_TYPES.indexOf(type);
    return index < 0 ? ENVIRONMENT_TYPES.length : index;
  };
  return rank(a.type) - rank(b.type) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
}

/** A deployment's issue keys: `issueKeys` and the values of issue associations. */
export function issueKeysOf(deployment) {
  const keys = new Set(deployment.issueKeys ?? []);
  for (const association of deployment.associations ?? []) {
    if (['issueKeys', 'issueIdOrKeys'].includes(association.associationType)) {
      for (const value of association.values ?? []) keys.add(value);
    }
  }
  return [...keys];
}

/** The number of an API value (sequence numbers are int64: compared as BigInt). */
export function bigOf(value) {
  try {
    return BigInt(value);
  } catch {
    return -1n;
  }
}

/** Whether `incoming` is a newer state of the same deployment than `current`. */
export function isNewerUpdate(incoming, current) {
  return bigOf(incoming.updateSequenceNumber) >= bigOf(current.updateSequenceNumber);
}
