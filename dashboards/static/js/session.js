// Who is signed in: a bearer token and whom it speaks for, kept for this tab only
// (sessionStorage), so two windows can be two people.
const KEY = 'opsgraph.session';

export function current() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(KEY));
    return kept && typeof kept.token === 'string' ? kept : null;
  } catch {
    return null;
  }
}

export function keep(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

export function mayAny(...roles) {
  const roles_ = current()?.roles ?? [];
  return roles.some((role) => roles_.includes(role));
}

// A token that is not ours to read (an identity provider's): its subject from the claims,
// for display only; the gateway verifies it.
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return {};
  }
}
