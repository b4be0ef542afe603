// Pieces several views share.

import { routes } from '../api.js';
import { externalLink, h, replace } from '../dom.js';
import { ageOf, stateBadge } from '../format.js';

/** The display name of a deployment, linked to its URL when that is http(s). */
export function deploymentName(deployment) {
  return externalLink(deployment.url, deployment.displayName ?? '(no name)', { class: 'name' });
}

/** `#12`, linked to the deployment's detail. */
export function numberLink(deployment) {
  const number = String(deployment.deploymentSequenceNumber);
  return h(
    'a',
    {
      href: routes.deployment(deployment.pipelineId, deployment.environmentId, number),
      class: 'number',
      'aria-label': `Deployment ${number}: details`,
    },
    `#${number}`,
  );
}

/** A table row of a deployment list. */
export function deploymentRow(deployment, { showPlace = false } = {}) {
  const place = showPlace
    ? [
        h(
          'td',
          { 'data-label': 'Pipeline' },
          deployment.pipeline?.displayName ?? deployment.pipelineId,
        ),
        h(
          'td',
          { 'data-label': 'Environment' },
          h(
            'a',
            { href: routes.history(deployment.pipelineId, deployment.environmentId) },
            deployment.environment?.displayName ?? deployment.environmentId,
          ),
        ),
      ]
    : [];
  return h(
    'tr',
    {
      'data-pipeline': deployment.pipelineId,
      'data-environment': deployment.environmentId,
      'data-number': String(deployment.deploymentSequenceNumber),
    },
    place,
    h('td', { 'data-label': 'Deployment' }, numberLink(deployment)),
    h('td', { 'data-label': 'State' }, stateBadge(deployment.state)),
    h('td', { 'data-label': 'Name' }, deploymentName(deployment)),
    h('td', { 'data-label': 'Updated' }, ageOf(deployment.lastUpdated)),
    showPlace
      ? null
      : h(
          'td',
          { 'data-label': 'Description', class: 'description' },
          deployment.description ?? '',
        ),
  );
}

/** A table of deployments with its header. */
export function deploymentTable(caption, { showPlace = false } = {}) {
  const headings = [
    ...(showPlace ? ['Pipeline', 'Environment'] : []),
    'Deployment',
    'State',
    'Name',
    'Updated',
    ...(showPlace ? [] : ['Description']),
  ];
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'list' },
    h('caption', { class: 'visually-hidden' }, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headings.map((name) => h('th', { scope: 'col' }, name)),
      ),
    ),
    body,
  );
  return { table, body };
}

/** A message in place of a view's content. */
export function problem(element, error) {
  replace(element, h('p', { class: 'problem', role: 'alert' }, error.message ?? String(error)));
}

export function notFound({ main }) {
  main.append(
    h('h1', { tabindex: '-1' }, 'Not found'),
    h(
      'p',
      {},
      'There is no such page. ',
      h('a', { href: routes.board() }, 'Back to the board'),
      '.',
    ),
  );
}
