// Every element of the web view is built here, and data only ever goes in as text: there
// is no path from a value to HTML parsing. The page's CSP requires Trusted Types and allows
// no policy, so an innerHTML assignment with a string would throw rather than parse.

const WEB_PROTOCOLS = new Set(['http:', 'https:']);

/** An element with attributes, event listeners (`on<event>`) and children (nodes or text).
 * `href` takes in-page routes (`#/...`) only: links out go through `externalLink`. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) {
      if (typeof value !== 'function') throw new TypeError(`${name} must be a function`);
      element.addEventListener(name.slice(2), value);
    } else if (name === 'href' && !String(value).startsWith('#/')) {
      throw new TypeError('h() links within the page only; use externalLink()');
    } else if (name === 'class') {
      element.className = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Append children: nodes as they are, anything else as a text node. */
export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replace an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

/** The value as a link target when it is an absolute http(s) URL, normalised as the
 * browser will follow it; null for anything else (`javascript:`, `data:`, relative...). */
export function safeHref(value) {
  if (typeof value !== 'string') return null;
  let url;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return WEB_PROTOCOLS.has(url.protocol) ? url.href : null;
}

/** A link out to `url` labelled `label`, or the label as plain text when the URL is not
 * http(s): such a value never becomes something that can be clicked. */
export function externalLink(url, label, attributes = {}) {
  const href = safeHref(url);
  const text = label ?? url ?? '';
  if (href === null) {
    const unlinked = [attributes.class, 'unlinked'].filter(Boolean).join(' ');
    return h('span', { ...attributes, class: unlinked }, text);
  }
  const link = h('a', { ...attributes, rel: 'noopener noreferrer external' }, text);
  link.href = href;
  return link;
}
