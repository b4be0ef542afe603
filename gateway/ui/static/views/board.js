// The board: pipelines × environments, each cell the latest deployment, kept current by the
// change stream.

import { pages, paths, routes } from '../api.js';
import { externalLink, h, replace } from '../dom.js';
import {
  ageOf,
  bigOf,
  compareEnvironments,
  isNewerUpdate,
  stateBadge,
  stateClass,
} from '../format.js';
import { deploymentName, numberLink, problem } from './parts.js';

const PARALLEL = 4;

const keyOf = (d) =>
  JSON.stringify([d.pipelineId, d.environmentId, String(d.deploymentSequenceNumber)]);
const cellOf = (pipelineId, environmentId) => JSON.stringify([pipelineId, environmentId]);

/** The latest deployment of every (pipeline, environment) the page knows. */
class BoardModel {
  pipelines = new Map(); // pipelineId -> Map(environmentId -> deployment)
  deleted = new Set(); // deployments deleted since the page opened: a page loaded before may hold them
  changed = new Set(); // cells changed by the stream since the last render

  /** Keep `d` when it is the environment's latest; true when the board changed. */
  put(d, { live = false } = {}) {
    if (live) this.deleted.delete(keyOf(d));
    else if (this.deleted.has(keyOf(d))) return false;
    const cells = this.pipelines.get(d.pipelineId) ?? new Map();
    const current = cells.get(d.environmentId);
    const number = bigOf(d.deploymentSequenceNumber);
    if (current) {
      const shown = bigOf(current.deploymentSequenceNumber);
      if (number < shown || (number === shown && !isNewerUpdate(d, current))) return false;
    }
    cells.set(d.environmentId, d);
    this.pipelines.set(d.pipelineId, cells);
    if (live) this.changed.add(cellOf(d.pipelineId, d.environmentId));
    return true;
  }

  /** Forget a deleted deployment; true when it was on the board (its cell needs the next
   * latest, if any, from the API). */
  remove(key) {
    this.deleted.add(keyOf(key));
    const cells = this.pipelines.get(key.pipelineId);
    const current = cells?.get(key.environmentId);
    if (!current || keyOf(current) !== keyOf(key)) return false;
    cells.delete(key.environmentId);
    if (cells.size === 0) this.pipelines.delete(key.pipelineId);
    return true;
  }

  environments() {
    const found = new Map();
    for (const cells of this.pipelines.values()) {
      for (const d of cells.values()) {
        if (!found.has(d.environmentId)) {
          found.set(d.environmentId, {
            id: d.environmentId,
            name: d.environment?.displayName ?? d.environmentId,
            type: d.environment?.type ?? 'unmapped',
          });
        }
      }
    }
    return [...found.values()].sort(compareEnvironments);
  }

  rows() {
    const named = [...this.pipelines].map(([id, cells]) => {
      const any = cells.values().next().value;
      return { id, name: any?.pipeline?.displayName ?? id, url: any?.pipeline?.url, cells };
    });
    return named.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }
}

function cell(d, pipelineName, environment) {
  const where = cellOf(d.pipelineId, d.environmentId);
  const focus = (part) => `${where}:${part}`;
  const name = deploymentName(d);
  name.dataset.focus = focus('name');
  const number = numberLink(d);
  number.dataset.focus = focus('number');
  return [
    h('span', { class: 'env-label', 'aria-hidden': 'true' }, environment.name),
    h('div', { class: 'cell-head' }, stateBadge(d.state), number),
    h('div', { class: 'cell-name' }, name),
    h(
      'div',
      { class: 'cell-meta' },
      ageOf(d.lastUpdated),
      ' · ',
      h(
        'a',
        {
          href: routes.history(d.pipelineId, d.environmentId),
          'data-focus': focus('history'),
          'aria-label': `History of ${environment.name} in ${pipelineName}`,
        },
        'History',
      ),
    ),
  ];
}

function table(model) {
  const environments = model.environments();
  const rows = model.rows().map((row) =>
    h(
      'tr',
      { 'data-pipeline': row.id },
      h(
        'th',
        { scope: 'row', class: 'pipeline' },
        externalLink(row.url, row.name, {
          class: 'pipeline-name',
          'data-focus': `${row.id}:pipeline`,
        }),
        row.name === row.id ? null : h('span', { class: 'id' }, row.id),
      ),
      environments.map((environment) => {
        const d = row.cells.get(environment.id);
        if (!d)
          return h('td', { class: 'cell empty' }, h('span', { class: 'visually-hidden' }, 'none'));
        const changed = model.changed.has(cellOf(row.id, environment.id));
        return h(
          'td',
          {
            class: `cell ${stateClass(d.state)}${changed ? ' changed' : ''}`,
            'data-pipeline': d.pipelineId,
            'data-environment': d.environmentId,
          },
          cell(d, row.name, environment),
        );
      }),
    ),
  );
  return h(
    'table',
    { class: 'board' },
    h(
      'caption',
      { class: 'visually-hidden' },
      'Latest deployment of each pipeline in each environment',
    ),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Pipeline'),
        environments.map((e) =>
          h('th', { scope: 'col' }, e.name, h('span', { class: 'env-type' }, e.type)),
        ),
      ),
    ),
    h('tbody', {}, rows),
  );
}

export async function board({ session, stream, main, signal }) {
  document.title = 'Board · deploystream';
  const summary = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const holder = h('div', { class: 'board-wrap' });
  main.append(h('h1', { tabindex: '-1' }, 'Board'), summary, holder);
  const model = new BoardModel();
  let loaded = false;
  let frame = 0;

  const render = () => {
    frame = 0;
    if (!loaded) return;
    const focused = document.activeElement?.dataset?.focus;
    const count = model.pipelines.size;
    replace(
      summary,
      count === 0
        ? 'No deployments yet: they appear here as they are submitted.'
        : `${count} pipeline${count === 1 ? '' : 's'} · latest deployment per environment, updated live`,
    );
    replace(holder, count === 0 ? null : table(model));
    model.changed.clear();
    if (focused) holder.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
  };
  const later = () => {
    if (!frame) frame = requestAnimationFrame(render);
  };

  const refresh = async (pipelineId) => {
    try {
      const found = await pages(session, paths.environments(pipelineId), { signal });
      for (const d of found.values) model.put(d);
      later();
    } catch (error) {
      if (!signal.aborted) problem(holder, error);
    }
  };
  const load = async () => {
    const listed = await pages(session, paths.pipelines(), { signal });
    const queue = listed.values.map((p) => p.pipelineId);
    const worker = async () => {
      while (queue.length && !signal.aborted) {
        const found = await pages(session, paths.environments(queue.shift()), { signal });
        for (const d of found.values) model.put(d);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    loaded = true;
    render();
  };

  // Listening before loading: a change made while the board loads is applied over it.
  stream.addEventListener('deployment', (e) => model.put(e.detail, { live: true }) && later(), {
    signal,
  });
  stream.addEventListener(
    'deleted',
    (event) => {
      if (model.remove(event.detail)) {
        later();
        refresh(event.detail.pipelineId);
      }
    },
    { signal },
  );
  await stream.whenLive();
  try {
    await load();
  } catch (error) {
    if (!signal.aborted) problem(summary, error);
  }
}
