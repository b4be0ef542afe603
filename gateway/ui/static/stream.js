// The change stream (Server-Sent Events) read with fetch(): EventSource cannot send an
// Authorization header, and a token must never travel in a URL. Reconnects send the last
// event id in `Last-Event-ID`, so nothing is missed between two connections.

import { authorization, endSession, paths } from './api.js';

const MAX_WAIT_MS = 30000;

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Dispatches `deployment` and `deleted` (detail: the event's data), `status` (detail:
 * 'connecting' | 'live' | 'reconnecting') and `resync` (a reconnection that could not resume
 * where the last one ended: views reload what they show). */
export class ChangeStream extends EventTarget {
  #session;
  #stop = new AbortController();
  #lastEventId = null;
  #retryMs = 2000;
  #connections = 0;
  status = 'connecting';

  constructor(session) {
    super();
    this.#session = session;
  }

  start() {
    this.#run();
    return this;
  }

  stop() {
    this.#stop.abort();
  }

  /** Resolves once the stream is live (changes from then on arrive) or after `timeoutMs`. */
  whenLive(timeoutMs = 5000) {
    if (this.status === 'live') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.removeEventListener('status', onStatus);
        resolve();
      };
      const onStatus = () => this.status === 'live' && done();
      const timer = setTimeout(done, timeoutMs);
      this.addEventListener('status', onStatus);
    });
  }

  #setStatus(status) {
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: status }));
  }

  async #run() {
    const stop = this.#stop.signal;
    let failures = 0;
    while (!stop.aborted) {
      let waitMs = this.#retryMs;
      try {
        const headers = { ...authorization(this.#session), Accept: 'text/event-stream' };
        if (this.#lastEventId) headers['Last-Event-ID'] = this.#lastEventId;
        const response = await fetch(paths.changes(), {
          headers,
          signal: stop,
          cache: 'no-store',
          credentials: 'omit',
        });
        if (response.status === 401) {
          endSession('Your session has ended. Sign in again.');
          return;
        }
        if (response.status === 400 && this.#lastEventId) {
          // Our position no longer fits the stream (its topic changed): start afresh.
          this.#lastEventId = null;
          continue;
        }
        if (!response.ok || !response.body) {
          waitMs = 1000 * Number(response.headers.get('Retry-After') ?? 0) || waitMs;
          throw new Error(`change stream: ${response.status}`);
        }
        const resumed = this.#lastEventId !== null;
        this.#connections += 1;
        failures = 0;
        this.#setStatus('live');
        if (this.#connections > 1 && !resumed) this.dispatchEvent(new CustomEvent('resync'));
        await this.#read(response.body);
      } catch {
        if (stop.aborted) return;
      }
      this.#setStatus('reconnecting');
      failures += 1;
      await sleep(Math.min(waitMs * 2 ** Math.min(failures - 1, 4), MAX_WAIT_MS), stop);
    }
  }

  async #read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { type: '', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // A CR at the end may be the first half of a CRLF: keep it for the next chunk.
      const cut = buffer.endsWith('\r') ? buffer.length - 1 : buffer.length;
      const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(cut);
      for (const line of lines) {
        if (line === '') {
          this.#dispatch(event);
          event = { type: '', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue; // a keep-alive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'event') event.type = text;
        else if (field === 'data') event.data.push(text);
        else if (field === 'id' && !text.includes('\0')) this.#lastEventId = text || null;
        else if (field === 'retry' && /^\d+$/.test(text)) this.#retryMs = Number(text);
      }
    }
  }

  #dispatch(event) {
    if (event.data.length === 0 || !['deployment', 'deleted'].includes(event.type)) return;
    let detail;
    try {
      detail = JSON.parse(event.data.join('\n'));
    } catch {
      return;
    }
    this.dispatchEvent(new CustomEvent(event.type, { detail }));
  }
}
