// Building the page: elements from data, text always as text (never parsed as HTML), so a
// customer called "<script>" is shown, not run.
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// A panel: a titled section that says where its data came from and how fresh it is.
export function panel(name, title, ...children) {
  return h(
    'section',
    { class: 'panel', dataset: { panel: name } },
    h('header', {}, h('h2', {}, title), h('span', { class: 'source' })),
    h('div', { class: 'body' }, children),
  );
}

export function fill(section, { source = null, body = [] }) {
  replace(section.querySelector('.source'), source ?? '');
  replace(section.querySelector('.body'), body);
  return section;
}

export function loading(what = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, what);
}

export function failed(error) {
  const code = error?.code ?? error?.extensions?.code;
  return h(
    'p',
    { class: 'error', role: 'alert' },
    code ? h('code', {}, code) : null,
    ' ',
    error?.message ?? String(error),
  );
}

export function badge(text, tone = '') {
  return h('span', { class: `badge ${tone}`.trim() }, text);
}

export function field(label, control) {
  return h('label', { class: 'field' }, h('span', {}, label), control);
}
