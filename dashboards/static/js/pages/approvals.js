// Approvals queue: the credits waiting for finance, each with the policy rule it is
// decided by and how much the customer has been credited this period; approve or reject.
// Four eyes: the server refuses anyone approving their own request; the page says so
// before anyone tries. The queue follows creditRequestUpdated live.
import { run, subscribe, newKey } from '../gql.js';
import { h, replace, panel, fill, loading, failed, badge } from '../dom.js';
import { money, time, words } from '../format.js';
import { table } from '../table.js';
import * as session from '../session.js';
import { creditStatus } from './customers.js';

export async function render(main) {
  const queue = panel('queue', 'Waiting for approval', loading());
  const decided = panel('decided', 'Decided here', h('p', { class: 'muted' }, 'Nothing yet.'));
  replace(main, h('h1', {}, 'Approvals'), queue, decided);
  const pending = new Map();
  const done = [];
  const me = session.current()?.subject;
  const approver = session.mayAny('finance_approver');
  const doneTable = table([
    { label: 'Customer', value: (c) => c.customer?.name, show: (c) => c.customer?.name ?? c.id },
    { label: 'Amount', value: (c) => Number(c.amount.amount), show: (c) => money(c.amount), align: 'num' },
    { label: 'Status', value: (c) => c.status, show: (c) => creditStatus(c.status) },
    { label: 'Decided by', show: (c) => c.decidedBy ?? '—' },
  ], done, { name: 'decided', empty: 'Nothing yet.' });
  const queueTable = table(columns(me, approver, decide), [], { name: 'queue', empty: 'No credit is waiting for approval.', pageSize: 20 });

  // One key per intended decision, kept while it is retried after no answer: a retry is
  // the same write, never a second one.
  const keys = new Map();

  async function decide(credit, approve) {
    const reason = approve ? null : window.prompt(`Why reject the credit of ${money(credit.amount)} for ${credit.customer?.name}?`);
    if (!approve && !reason) return;
    const row = document.querySelector(`[data-actions="${CSS.escape(credit.id)}"]`);
    const buttons = [...(row?.querySelectorAll('button') ?? [])];
    for (const button of buttons) button.disabled = true;
    const intent = approve ? `${credit.id} approve` : `${credit.id} reject ${reason}`;
    if (!keys.has(intent)) keys.set(intent, newKey());
    const idempotencyKey = keys.get(intent);
    try {
      const { data } = approve
        ? await run('ApproveCredit', { id: credit.id, idempotencyKey })
        : await run('RejectCredit', { id: credit.id, reason, idempotencyKey });
      keys.delete(intent);
      const payload = approve ? data.approveCredit : data.rejectCredit;
      if (payload.userErrors.length) {
        row?.replaceChildren(...payload.userErrors.map((e) => failed(e)));
        return;
      }
      moved(payload.credit);
    } catch (error) {
      // No decided answer: the buttons stay, for the same decision again.
      row?.querySelector('.error')?.remove();
      row?.append(failed(error));
      for (const button of buttons) button.disabled = false;
    }
  }

  function moved(credit) {
    if (credit.status === 'REQUESTED') {
      pending.set(credit.id, credit);
    } else if (pending.delete(credit.id) || done.some((c) => c.id === credit.id)) {
      const at = done.findIndex((c) => c.id === credit.id);
      if (at >= 0) done[at] = credit;
      else done.unshift(credit);
      fill(decided, { source: 'opsgraph · live', body: doneTable });
      doneTable.update(done);
    }
    draw();
  }

  function draw() {
    queueTable.update([...pending.values()]);
    replace(queue.querySelector('h2'), `Waiting for approval (${pending.size})`);
  }

  try {
    const { data } = await run('ApprovalsQueue', {});
    for (const { node } of data.creditRequests.edges) pending.set(node.id, node);
  } catch (error) {
    fill(queue, { body: failed(error) });
    return null;
  }
  fill(queue, {
    source: 'opsgraph · live',
    body: [approver ? null : h('p', { class: 'notice' }, 'Only finance approves credits: your role can see the queue.'), queueTable],
  });
  draw();
  return subscribe('ApprovalsUpdates', {}, (data) => moved(data.creditRequestUpdated));
}

function columns(me, approver, decide) {
  return [
    { label: 'Customer', value: (c) => c.customer?.name, show: (c) => c.customer
      ? h('a', { href: `/dashboards/customers?id=${encodeURIComponent(c.customer.id)}` }, c.customer.name) : '—' },
    { label: 'Amount', value: (c) => Number(c.amount.amount), show: (c) => money(c.amount), align: 'num' },
    { label: 'Reason', show: (c) => c.reason },
    { label: 'Requested', value: (c) => c.createdAt, show: (c) => [time(c.createdAt), h('br'), h('span', { class: 'muted' }, c.requestedBy)] },
    { label: 'Policy', show: policy },
    { label: '', show: (c) => h('div', { class: 'actions', dataset: { actions: c.id } }, actions(c, me, approver, decide)) },
  ];
}

function policy(c) {
  const p = c.policy;
  if (!p) return h('span', { class: 'muted' }, 'No rule covers this currency.');
  const after = p.creditedInPeriod;
  const over = Number(after.amount) > Number(p.maxPerCustomer.amount);
  return h('div', { class: 'policy' },
    h('div', {}, h('code', {}, p.rule)),
    h('div', { class: 'muted' }, `auto below ${money(p.autoApproveBelow)}, at most ${money(p.maxPerRequest)} a request`),
    h('div', { class: over ? 'bad' : 'muted' },
      `${money(after)} of ${money(p.maxPerCustomer)} this ${words(p.period)}`),
    h('div', { class: 'muted' }, `approvers: ${p.approvers.map(words).join(', ')}`));
}

function actions(credit, me, approver, decide) {
  if (!approver) return badge(words(credit.status), 'warn');
  if (credit.requestedBy === me) {
    return h('span', { class: 'muted', title: 'Four eyes: someone else must approve your own request.' },
      badge('your request', 'muted'), ' another approver decides');
  }
  return [
    h('button', { type: 'button', dataset: { approve: credit.id }, onClick: () => decide(credit, true) }, 'Approve'),
    ' ',
    h('button', { type: 'button', class: 'danger', dataset: { reject: credit.id }, onClick: () => decide(credit, false) }, 'Reject'),
  ];
}
