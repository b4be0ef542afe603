// Sign-in: a client id and secret, exchanged at /oauth/token for this tab's session.

import { signIn } from '../api.js';
import { h, replace } from '../dom.js';

export function signInForm({ message, onSignedIn, signal }) {
  const clientId = h('input', {
    id: 'client-id',
    name: 'client_id',
    autocomplete: 'username',
    autocapitalize: 'none',
    spellcheck: 'false',
    required: true,
  });
  const secret = h('input', {
    id: 'client-secret',
    name: 'client_secret',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const problem = h('p', { class: 'problem', role: 'alert' });
  const note = message ? h('p', { class: 'note', role: 'status' }, message) : null;

  // Never submitted by the browser (the page's CSP has form-action 'none' besides): the
  // secret goes to the token endpoint in a request body, then the field is cleared.
  const form = h(
    'form',
    {
      class: 'signin',
      method: 'post',
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        replace(problem);
        const id = clientId.value.trim();
        if (!id || !secret.value) {
          replace(problem, 'Enter the client id and its secret.');
          (id ? secret : clientId).focus();
          return;
        }
        button.disabled = true;
        try {
          const session = await signIn(id, secret.value);
          secret.value = '';
          if (!signal.aborted) onSignedIn(session);
        } catch (error) {
          replace(problem, error.message);
          secret.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h1', { tabindex: '-1' }, 'Sign in'),
    note,
    h(
      'p',
      { class: 'muted' },
      'Sign in as an API client: its deployments are the ones you will see. ' +
        'The access token is kept in this tab only, until it expires or you sign out.',
    ),
    h('label', { for: 'client-id' }, 'Client id'),
    clientId,
    h('label', { for: 'client-secret' }, 'Client secret'),
    secret,
    button,
    problem,
  );
  return form;
}
