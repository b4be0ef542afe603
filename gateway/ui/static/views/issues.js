// An issue: every deployment that shipped it, newest first, and where it is live (the
// environments whose latest deployment of the issue succeeded), with what the issue
// registry knows of it.

import { pages, paths, routes } from '../api.js';
import { h, replace } from '../dom.js';
import { bigOf, compareEnvironments, issueKeysOf, stateBadge } from '../format.js';
import { deploymentRow, deploymentTable, numberLink, problem } from './parts.js';

const MAX_SHOWN = 1000;

/** Per (pipeline, environment), the deployment of the issue with the highest number. */
function placesOf(deployments) {
  const latest = new Map();
  for (const d of deployments) {
    const where = JSON.stringify([d.pipelineId, d.environmentId]);
    const shown = latest.get(where);
    if (!shown || bigOf(d.deploymentSequenceNumber) > bigOf(shown.deploymentSequenceNumber))
      latest.set(where, d);
  }
  const place = (d) => ({
    id: d.environmentId,
    name: d.environment?.displayName ?? d.environmentId,
    type: d.environment?.type ?? 'unmapped',
  });
  return [...latest.values()].sort(
    (a, b) =>
      (a.pipeline?.displayName ?? a.pipelineId).localeCompare(
        b.pipeline?.displayName ?? b.pipelineId,
      ) || compareEnvironments(place(a), place(b)),
  );
}

function issueHeader(issue) {
  if (!issue) {
    return h('p', { class: 'muted' }, 'The issue registry has no details of this issue.');
  }
  return h(
    'p',
    { class: 'issue-facts' },
    h('span', { class: 'summary' }, issue.summary ?? ''),
    issue.status ? h('span', { class: 'badge issue-status' }, issue.status) : null,
    issue.project ? h('span', { class: 'muted' }, `Project ${issue.project}`) : null,
  );
}

function whereItIs(deployments) {
  const places = placesOf(deployments);
  const live = places.filter((d) => d.state === 'successful');
  const name = (d) =>
    `${d.pipeline?.displayName ?? d.pipelineId} / ${d.environment?.displayName ?? d.environmentId}`;
  return h(
    'section',
    { class: 'where', 'aria-labelledby': 'where-heading' },
    h('h2', { id: 'where-heading' }, 'Where it is'),
    h(
      'p',
      { class: 'live-in' },
      live.length === 0
        ? 'Not live anywhere yet.'
        : ['Live in ', live.map((d, i) => [i ? ', ' : '', h('strong', {}, name(d))])],
    ),
    h(
      'ul',
      { class: 'places' },
      places.map((d) =>
        h(
          'li',
          { 'data-pipeline': d.pipelineId, 'data-environment': d.environmentId },
          h('span', { class: 'place' }, name(d)),
          ' ',
          stateBadge(d.state),
          ' ',
          numberLink(d),
        ),
      ),
    ),
  );
}

export async function issues({ session, stream, main, signal, params }) {
  const [key] = params;
  document.title = `${key ? `${key} · ` : ''}Issues · deploystream`;
  const input = h('input', {
    id: 'issue-key',
    name: 'issue',
    value: key ?? '',
    placeholder: 'ABC-123',
    autocapitalize: 'characters',
    spellcheck: 'false',
    required: true,
  });
  const form = h(
    'form',
    {
      role: 'search',
      class: 'search',
      onsubmit: (event) => {
        event.preventDefault();
        const wanted = input.value.trim();
        if (wanted) location.hash = routes.issues(wanted);
      },
    },
    h('label', { for: 'issue-key' }, 'Issue key'),
    input,
    h('button', { type: 'submit' }, 'Show deployments'),
  );
  const results = h('div', { class: 'results' });
  main.append(h('h1', { tabindex: '-1' }, key ? `Issue ${key}` : 'Issues'), form, results);
  if (!key) {
    results.append(
      h('p', { class: 'muted' }, 'Enter an issue key to see every deployment that shipped it.'),
    );
    return;
  }

  const where = (d) =>
    JSON.stringify([d.pipelineId, d.environmentId, String(d.deploymentSequenceNumber)]);
  let shown = new Set(); // the deployments on screen
  const show = async () => {
    try {
      const first = await pages(session, paths.issue(key), { max: MAX_SHOWN, signal });
      shown = new Set(first.values.map(where));
      const { table, body } = deploymentTable(`Deployments of ${key}`, { showPlace: true });
      for (const d of first.values) body.append(deploymentRow(d, { showPlace: true }));
      const count = first.values.length;
      replace(
        results,
        issueHeader(first.issue),
        count === 0 ? h('p', {}, 'No deployment has shipped this issue.') : whereItIs(first.values),
        count === 0
          ? null
          : h(
              'section',
              { 'aria-labelledby': 'all-heading' },
              h('h2', { id: 'all-heading' }, `Every deployment (${count}${first.next ? '+' : ''})`),
              h('div', { class: 'table-wrap' }, table),
              first.next
                ? h('p', { class: 'muted' }, `The ${MAX_SHOWN} most recent are shown.`)
                : null,
            ),
      );
    } catch (error) {
      if (!signal.aborted) problem(results, error);
    }
  };

  let pending = 0;
  const soon = () => {
    clearTimeout(pending);
    pending = setTimeout(show, 300);
  };
  // A change that ships the issue, or to a deployment shown (it may not ship it any more).
  const concerns = (d) => shown.has(where(d)) || issueKeysOf(d).includes(key);
  stream.addEventListener('deployment', (event) => concerns(event.detail) && soon(), { signal });
  stream.addEventListener('deleted', (event) => shown.has(where(event.detail)) && soon(), {
    signal,
  });
  signal.addEventListener('abort', () => clearTimeout(pending));
  await stream.whenLive();
  await show();
}
