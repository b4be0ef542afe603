// An environment's history, highest sequence number first, a page at a time; new
// deployments of the environment arrive at the top as they happen.

import { page, paths, routes } from '../api.js';
import { h, replace } from '../dom.js';
import { bigOf, isNewerUpdate } from '../format.js';
import { deploymentRow, deploymentTable, problem } from './parts.js';

export const PAGE_SIZE = 20;

export async function environmentHistory({ session, stream, main, signal, params }) {
  const [pipelineId, environmentId] = params;
  document.title = `${environmentId} of ${pipelineId} · deploystream`;
  const heading = h(
    'h1',
    { tabindex: '-1' },
    'History of ',
    h('span', { class: 'ident' }, environmentId),
  );
  const subtitle = h(
    'p',
    { class: 'muted' },
    'Pipeline ',
    h('span', { class: 'ident' }, pipelineId),
  );
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const { table, body } = deploymentTable(`Deployments of ${environmentId} in ${pipelineId}`);
  const more = h(
    'button',
    { type: 'button', class: 'more', hidden: true },
    'Load older deployments',
  );
  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: routes.board() }, 'Board')),
    heading,
    subtitle,
    status,
    h('div', { class: 'table-wrap' }, table),
    more,
  );

  const rows = new Map(); // sequence number -> row
  const shownData = new Map(); // sequence number -> the deployment its row shows
  let next = null;
  let lowest = null; // the lowest sequence number loaded (null: none yet)
  let titled = false;

  const place = (d) => {
    const number = String(d.deploymentSequenceNumber);
    // A page read while a change arrived may hold the older state: the newer one stays.
    if (shownData.has(number) && !isNewerUpdate(d, shownData.get(number))) return;
    shownData.set(number, d);
    const row = deploymentRow(d);
    const shown = rows.get(number);
    if (shown) {
      shown.replaceWith(row);
    } else {
      // Rows are in descending order: before the first row with a lower number.
      const after = [...rows.entries()].find(([n]) => bigOf(n) < bigOf(number));
      body.insertBefore(row, after ? after[1] : null);
    }
    rows.set(number, row);
    const sorted = [...rows.entries()].sort(([a], [b]) => (bigOf(b) > bigOf(a) ? 1 : -1));
    rows.clear();
    for (const [n, r] of sorted) rows.set(n, r);
  };
  const describe = () => {
    const count = rows.size;
    replace(
      status,
      count === 0
        ? 'No deployments in this environment.'
        : `${count} deployment${count === 1 ? '' : 's'} shown${next ? '; older ones below' : ''}.`,
    );
    more.hidden = !next;
  };
  const load = async () => {
    more.disabled = true;
    try {
      const found = await page(session, paths.history(pipelineId, environmentId), {
        limit: PAGE_SIZE,
        cursor: next,
        signal,
      });
      const named = found.values[0];
      if (named && !titled) {
        titled = true;
        // Names are known once a deployment is: the ids stay beside them.
        const environment = named.environment?.displayName ?? environmentId;
        const pipeline = named.pipeline?.displayName ?? pipelineId;
        replace(heading, `History of ${environment}`);
        replace(
          subtitle,
          'Pipeline ',
          h('strong', {}, pipeline),
          ' ',
          h(
            'span',
            { class: 'id' },
            `${pipelineId} · ${environmentId} · ${named.environment?.type ?? 'unmapped'}`,
          ),
        );
        document.title = `${environment} of ${pipeline} · deploystream`;
      }
      for (const d of found.values) {
        place(d);
        if (lowest === null || bigOf(d.deploymentSequenceNumber) < lowest)
          lowest = bigOf(d.deploymentSequenceNumber);
      }
      next = found.next;
      describe();
    } catch (error) {
      if (!signal.aborted) problem(status, error);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', async () => {
    const before = rows.size;
    await load();
    // Keep the keyboard where the new rows start (the button may have gone).
    const first = [...rows.values()][before]?.querySelector('a');
    if (more.hidden && first) first.focus();
  });

  const ours = (d) => d.pipelineId === pipelineId && d.environmentId === environmentId;
  stream.addEventListener(
    'deployment',
    (event) => {
      const d = event.detail;
      // Rows below the loaded range arrive with their page.
      if (ours(d) && (!next || lowest === null || bigOf(d.deploymentSequenceNumber) > lowest)) {
        place(d);
        describe();
      }
    },
    { signal },
  );
  stream.addEventListener(
    'deleted',
    (event) => {
      const number = String(event.detail.deploymentSequenceNumber);
      if (ours(event.detail) && rows.has(number)) {
        rows.get(number).remove();
        rows.delete(number);
        shownData.delete(number);
        describe();
      }
    },
    { signal },
  );
  await stream.whenLive();
  await load();
}
