// Writes from a page: a button that sends one mutation with its own idempotency key (kept
// while the same write is retried after no decided answer), disabled while in flight, and
// what came of it said beside it.
import { run, newKey } from './gql.js';
import { h, replace, loading, failed } from './dom.js';

// A button for one write. `prepare()` gives the
// operation's name and variables (or throws what is missing); `field` is the mutation's
// payload field; `done(payload)` what to say once it went through. The idempotency key is
// the button's: kept while the same write is retried after no decided answer, new after
// one (or after `forget()`, when the inputs change).
export function writeButton(label, { tone = '', outcome, prepare, field: payloadField, done }) {
  const button = h('button', { type: 'button', class: tone || null }, label);
  let key = null;
  button.forget = () => { key = null; };
  button.addEventListener('click', async () => {
    let name;
    let variables;
    try {
      [name, variables] = prepare();
    } catch (error) {
      replace(outcome, failed(error));
      return;
    }
    key ??= newKey();
    const decided = await act(button, outcome,
      () => run(name, { ...variables, idempotencyKey: key }), payloadField, done);
    if (decided) key = null;
  });
  return button;
}

// Sends a write with `button` disabled and says what came of it in `outcome`: the payload's
// userErrors, or what `done(payload)` says. Answers whether the server decided.
export async function act(button, outcome, send, payloadField, done) {
  button.disabled = true;
  replace(outcome, loading('Sending…'));
  try {
    const { data } = await send();
    const payload = data[payloadField];
    const said = done(payload);
    replace(outcome, payload.userErrors.length ? refusals(payload.userErrors) : h('p', { class: 'ok-text' }, said ?? 'Done.'));
    return true;
  } catch (error) {
    replace(outcome, refusal(error));
    return decidedRefusal(error);
  } finally {
    button.disabled = false;
  }
}

// The server said no for good (the same key would answer the same again), or nothing was
// decided: no answer, a system away, or another run under way (the key is released).
function decidedRefusal(error) {
  const code = error.code ?? '';
  const undecided = ['NETWORK', 'RECONCILIATION_RUNNING', 'CIRCUIT_OPEN', 'INTERNAL'];
  return !(undecided.includes(code) || code.startsWith('UPSTREAM_') || code.startsWith('HTTP_5'));
}

function refusals(errors) {
  return h('ul', { class: 'user-errors' }, errors.map((e) => h('li', {}, refusal(e))));
}

// RECONCILIATION_RUNNING is a wait, not a fault: said as such.
export function refusal(error) {
  if (error.code === 'RECONCILIATION_RUNNING') {
    return h('p', { class: 'notice', role: 'alert' }, h('strong', {}, 'A run is under way. '), error.message);
  }
  if (error.code === 'FORBIDDEN') {
    return failed({ code: error.code, message: `${error.message} Your role may not do this.` });
  }
  return failed(error);
}
