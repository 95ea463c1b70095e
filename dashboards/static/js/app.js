// The shell: who is signed in, the navigation, and the page the path names
// (/dashboards/<page>, drawn by pages/<page>.js).
import { h, replace, failed } from './dom.js';
import * as session from './session.js';

const main = document.getElementById('page');
const page = location.pathname.split('/').filter(Boolean)[1] ?? 'customers';

async function config() {
  const response = await fetch('/dashboards/config.json');
  return response.ok ? response.json() : { developmentSignIn: false, roles: [] };
}

function signIn({ developmentSignIn, roles }) {
  document.getElementById('who').replaceChildren();
  const tokenForm = h(
    'form',
    {
      class: 'token-form',
      onSubmit: (event) => {
        event.preventDefault();
        const token = new FormData(event.target).get('token').trim();
        const claims = session.claims(token);
        session.keep({ token, subject: claims.sub ?? 'unknown', roles: claims.roles ?? [] });
        location.reload();
      },
    },
    h('label', { class: 'field' }, h('span', {}, 'Bearer token from your identity provider'),
      h('input', { name: 'token', required: true, autocomplete: 'off' })),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  const development = developmentSignIn
    ? h(
        'div',
        { class: 'dev-sign-in' },
        h('p', { class: 'warning' }, h('strong', {}, 'Development sign-in. '),
          'This demo mints a token for the role you pick; production signs in through your identity provider.'),
        h('div', { class: 'roles' }, roles.map((role) =>
          h('button', { type: 'button', dataset: { role }, onClick: () => developmentSession(role) },
            role.replace(/_/g, ' ')))),
      )
    : null;
  replace(main, h('section', { class: 'panel sign-in', dataset: { panel: 'sign-in' } },
    h('header', {}, h('h2', {}, 'Sign in')), h('div', { class: 'body' }, development, tokenForm)));
}

async function developmentSession(role) {
  const response = await fetch('/dashboards/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role }),
  });
  if (!response.ok) {
    main.prepend(failed({ message: `The development sign-in answered ${response.status}.` }));
    return;
  }
  session.keep(await response.json());
  location.reload();
}

function who(current) {
  replace(
    document.getElementById('who'),
    h('span', { class: 'subject', title: current.roles.join(', ') }, current.subject),
    h('button', { type: 'button', class: 'link', onClick: () => { session.forget(); location.reload(); } }, 'Sign out'),
  );
}

async function start() {
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.page === page) link.setAttribute('aria-current', 'page');
  }
  const settings = await config();
  if (settings.graphiql) {
    document.querySelector('nav').append(h('a', { href: '/graphiql', target: '_blank' }, 'GraphiQL'));
  }
  const current = session.current();
  if (!current) {
    signIn(settings);
    return;
  }
  who(current);
  window.addEventListener('opsgraph:signed-out', () => signIn(settings), { once: true });
  try {
    const module = await import(`./pages/${page}.js`);
    await module.render(main, new URLSearchParams(location.search));
  } catch (error) {
    replace(main, failed(error));
  }
}

start();
