// A deployment: everything stored about it, its gating status and, for approvers of an
// awaiting gate, Allow and Prevent.

import { ApiError, call, canApprove, paths, routes } from '../api.js';
import { externalLink, h, replace } from '../dom.js';
import { ageOf, gatingBadge, issueKeysOf, stateBadge } from '../format.js';
import { problem } from './parts.js';

const DECISION_WAIT_MS = 30000;
const POLL_MS = 500;

function facts(rows) {
  return h(
    'dl',
    { class: 'facts' },
    rows
      .filter(([, value]) => value !== undefined && value !== null && value !== '')
      .map(([name, value]) => h('div', {}, h('dt', {}, name), h('dd', {}, value))),
  );
}

function described(d) {
  const url = d.url ?? '';
  const link = externalLink(url, url);
  return facts([
    ['State', stateBadge(d.state)],
    [
      'Pipeline',
      [
        externalLink(d.pipeline?.url, d.pipeline?.displayName ?? d.pipelineId),
        ' ',
        h('span', { class: 'id' }, d.pipelineId),
      ],
    ],
    [
      'Environment',
      [
        h(
          'a',
          { href: routes.history(d.pipelineId, d.environmentId) },
          d.environment?.displayName ?? d.environmentId,
        ),
        ' ',
        h('span', { class: 'id' }, `${d.environmentId} · ${d.environment?.type ?? 'unmapped'}`),
      ],
    ],
    ['Sequence number', String(d.deploymentSequenceNumber)],
    ['Update sequence number', String(d.updateSequenceNumber)],
    ['Last updated', [ageOf(d.lastUpdated), ' ', h('span', { class: 'id' }, d.lastUpdated)]],
    ['Label', d.label],
    ['Duration', d.duration === undefined ? undefined : `${d.duration} s`],
    [
      'URL',
      link.tagName === 'A'
        ? link
        : [link, ' ', h('span', { class: 'muted' }, '(not a web address: not linked)')],
    ],
    ['Description', d.description],
    [
      'Issues',
      issueKeysOf(d).length === 0
        ? undefined
        : issueKeysOf(d).map((key, i) => [
            i ? ', ' : '',
            h('a', { href: routes.issues(key) }, key),
          ]),
    ],
    [
      'Associations',
      (d.associations ?? []).length === 0
        ? undefined
        : h(
            'ul',
            { class: 'plain' },
            d.associations.map((a) =>
              h('li', {}, `${a.associationType}: `, (a.values ?? []).join(', ')),
            ),
          ),
    ],
    ['Commands', (d.commands ?? []).map((c) => c.command).join(', ')],
    ['Schema version', d.schemaVersion],
  ]);
}

export async function deployment({ session, stream, main, signal, params }) {
  const [pipelineId, environmentId, number] = params;
  document.title = `#${number} of ${environmentId} · deploystream`;
  const heading = h('h1', { tabindex: '-1' }, `Deployment #${number}`);
  const details = h(
    'div',
    { class: 'details' },
    h('p', { class: 'muted', role: 'status' }, 'Loading…'),
  );
  const gatingBody = h('div', {});
  const gating = h(
    'section',
    { class: 'gating', 'aria-labelledby': 'gating-heading' },
    h('h2', { id: 'gating-heading' }, 'Gating'),
    gatingBody,
  );
  main.append(
    h(
      'p',
      { class: 'crumbs' },
      h('a', { href: routes.board() }, 'Board'),
      ' / ',
      h('a', { href: routes.history(pipelineId, environmentId) }, `History of ${environmentId}`),
    ),
    heading,
    details,
    gating,
  );

  const decisionNote = h('p', { class: 'note', role: 'status' });
  let deciding = false;

  const showDeployment = async () => {
    try {
      const d = await call(session, paths.deployment(pipelineId, environmentId, number), {
        signal,
      });
      d.pipelineId = pipelineId;
      d.environmentId = environmentId;
      replace(heading, d.displayName ?? `Deployment #${number}`);
      document.title = `${d.displayName ?? `#${number}`} · deploystream`;
      replace(details, described(d));
    } catch (error) {
      if (signal.aborted) return;
      const gone = error instanceof ApiError && error.status === 404;
      problem(
        details,
        gone ? new Error('There is no such deployment (it may have been deleted).') : error,
      );
    }
  };

  const decide = async (decision, reason, buttons) => {
    deciding = true;
    for (const button of buttons) button.disabled = true;
    replace(decisionNote, decision === 'allowed' ? 'Allowing…' : 'Preventing…');
    try {
      const body = { decision };
      if (reason) body.reason = reason;
      await call(session, paths.gatingDecision(pipelineId, environmentId, number), {
        method: 'POST',
        body,
        signal,
      });
      replace(decisionNote, 'Decision sent; waiting for it to be recorded…');
      // Decisions are events like everything else: the status changes once a worker applied it.
      const deadline = Date.now() + DECISION_WAIT_MS;
      while (Date.now() < deadline && !signal.aborted) {
        const status = await showGating();
        if (status && status !== 'awaiting') return;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      replace(
        decisionNote,
        'The decision has not been recorded yet; this page updates when it is.',
      );
    } catch (error) {
      if (signal.aborted) return;
      replace(decisionNote, h('span', { class: 'problem' }, error.message));
      for (const button of buttons) button.disabled = false;
    } finally {
      deciding = false;
    }
  };

  const controls = () => {
    const reason = h('input', {
      id: 'decision-reason',
      name: 'reason',
      maxlength: '255',
      autocomplete: 'off',
    });
    const allow = h('button', { type: 'button', class: 'allow' }, 'Allow');
    const prevent = h('button', { type: 'button', class: 'prevent' }, 'Prevent');
    const buttons = [allow, prevent];
    allow.addEventListener('click', () => decide('allowed', reason.value.trim(), buttons));
    prevent.addEventListener('click', () => decide('prevented', reason.value.trim(), buttons));
    return h(
      'div',
      { class: 'decide', role: 'group', 'aria-labelledby': 'decide-heading' },
      h('h3', { id: 'decide-heading' }, 'Your decision'),
      h('label', { for: 'decision-reason' }, 'Reason (optional)'),
      reason,
      h('div', { class: 'buttons' }, allow, prevent),
    );
  };

  /** Show the gating status; returns it (null when it could not be read). */
  const showGating = async () => {
    let status;
    try {
      status = await call(session, paths.gatingStatus(pipelineId, environmentId, number), {
        signal,
      });
    } catch (error) {
      if (!signal.aborted && !(error instanceof ApiError && error.status === 404))
        problem(gatingBody, error);
      if (error instanceof ApiError && error.status === 404) replace(gatingBody);
      return null;
    }
    const awaiting = status.gatingStatus === 'awaiting';
    replace(
      gatingBody,
      h(
        'p',
        { class: 'gating-status' },
        gatingBadge(status.gatingStatus),
        status.updatedTimestamp ? [' ', ageOf(status.updatedTimestamp)] : null,
        status.gatingStatus === 'invalid' ? ' This deployment did not ask for gating.' : null,
      ),
      (status.details ?? []).length === 0
        ? null
        : h(
            'ul',
            { class: 'plain' },
            status.details.map((detail) =>
              h('li', {}, 'Issue ', externalLink(detail.issueLink, detail.issueKey)),
            ),
          ),
      awaiting && canApprove(session) ? (deciding ? null : controls()) : null,
      awaiting && !canApprove(session)
        ? h(
            'p',
            { class: 'muted' },
            'An approver (a client with the gating scope) decides this gate.',
          )
        : null,
      decisionNote,
    );
    return status.gatingStatus;
  };

  const ours = (d) =>
    d.pipelineId === pipelineId &&
    d.environmentId === environmentId &&
    String(d.deploymentSequenceNumber) === number;
  stream.addEventListener(
    'deployment',
    (event) => {
      if (ours(event.detail)) {
        showDeployment();
        if (!deciding) showGating();
      }
    },
    { signal },
  );
  stream.addEventListener('deleted', (event) => ours(event.detail) && showDeployment(), { signal });
  await Promise.all([showDeployment(), showGating()]);
}
