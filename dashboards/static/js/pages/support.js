// Support console: may this customer use a feature (and the reason, from billing's plan);
// their cases, and a service credit for a breached one, whose status then follows live
// (creditRequestUpdated) as finance decides and the ERP posts it.
import { run, subscribe, newKey } from '../gql.js';
import { h, replace, panel, fill, loading, failed, badge, field } from '../dom.js';
import { money, time, provenance, words } from '../format.js';
import { table } from '../table.js';
import * as session from '../session.js';
import { creditStatus } from './customers.js';

export async function render(main, params) {
  const id = params.get('customer');
  replace(main, h('h1', {}, 'Support console'));
  if (!id) {
    main.append(h('p', { class: 'notice' }, 'Open a customer from ',
      h('a', { href: '/dashboards/customers' }, 'Customer 360'),
      ' (their cases have “Request credit”), or give their opsgraph id:'), pickCustomer());
    return null;
  }
  const check = panel('entitlement', 'Entitlement check', loading());
  const cases = panel('cases', 'Cases', loading());
  const request = panel('request-credit', 'Request a service credit', loading());
  const credits = panel('credits', 'Credits', loading());
  const heading = h('h2', {}, 'Loading customer…');
  main.append(heading, h('div', { class: 'grid' }, check, request, cases, credits));
  let answer;
  try {
    answer = await run('SupportCustomer', { id });
  } catch (error) {
    replace(main, h('h1', {}, 'Support console'), failed(error));
    return null;
  }
  const customer = answer.data.customer;
  replace(heading, h('a', { href: `/dashboards/customers?id=${encodeURIComponent(id)}` }, customer.name));
  drawCheck(check, customer);
  const breached = (customer.cases?.edges ?? []).map((e) => e.node);
  fill(cases, {
    source: provenance(breached[0]?.source),
    body: table([
      { label: 'Subject', value: (c) => c.subject, show: (c) => c.subject },
      { label: 'Priority', value: (c) => c.priority, show: (c) => words(c.priority) },
      { label: 'Status', value: (c) => c.status, show: (c) => words(c.status) },
      { label: 'SLA', value: (c) => c.slaBreached, show: (c) => (c.slaBreached ? badge('breached', 'bad') : badge('within SLA', 'ok')) },
      { label: 'Opened', value: (c) => c.createdAt, show: (c) => time(c.createdAt) },
    ], breached, { empty: 'No cases.', name: 'cases' }),
  });
  const shown = new Map(customer.credits.map((c) => [c.id, c]));
  const creditTable = table(creditColumns(), [...shown.values()], { empty: 'No credits yet.', name: 'credits' });
  fill(credits, { source: 'opsgraph · live', body: creditTable });
  drawRequest(request, customer, breached, params.get('case'), (credit) => {
    shown.set(credit.id, credit);
    creditTable.update([...shown.values()]);
  });
  return subscribe('CreditUpdates', {}, (data) => {
    const credit = data.creditRequestUpdated;
    if (credit.customerId !== customer.id) return;
    shown.set(credit.id, credit);
    creditTable.update([...shown.values()]);
    for (const status of document.querySelectorAll(`[data-credit="${CSS.escape(credit.id)}"]`)) {
      replace(status, creditStatus(credit.status));
    }
  });
}

function pickCustomer() {
  const input = h('input', { name: 'customer', required: true, placeholder: 'cust_0001' });
  return h('form', {
    class: 'inline',
    onSubmit: (event) => {
      event.preventDefault();
      location.assign(`/dashboards/support?customer=${encodeURIComponent(input.value.trim())}`);
    },
  }, field('Customer', input), h('button', { type: 'submit' }, 'Open'));
}

function drawCheck(section, customer) {
  const features = [...new Set((customer.entitlements ?? []).map((e) => e.feature))];
  const input = h('input', { name: 'feature', required: true, list: 'features', autocomplete: 'off', placeholder: 'sso' });
  const answer = h('div', { class: 'answer', 'aria-live': 'polite' });
  const form = h('form', {
    class: 'inline',
    onSubmit: async (event) => {
      event.preventDefault();
      replace(answer, loading('Checking…'));
      try {
        const { data } = await run('CheckEntitlement', { customerId: customer.id, feature: input.value.trim() });
        const d = data.entitlementCheck;
        replace(answer,
          h('p', { class: 'decision', dataset: { allowed: String(d.allowed) } },
            d.allowed ? badge('allowed', 'ok') : badge('not allowed', 'bad'), ' ', d.reason),
          h('p', { class: 'muted' }, [
            d.plan ? `Plan ${d.plan.name}` : 'No plan',
            d.supportTier ? ` · ${d.supportTier} support, ${d.slaHours} h SLA` : '',
            ` · checked ${time(d.checkedAt)}`,
          ]));
        fill(section, { source: provenance(d.source), body: [form, answer] });
      } catch (error) {
        replace(answer, failed(error));
      }
    },
  }, field('Feature', input), h('datalist', { id: 'features' }, features.map((f) => h('option', { value: f }))),
  h('button', { type: 'submit' }, 'Check'));
  fill(section, { source: '', body: [form, answer] });
}

function drawRequest(section, customer, cases, wanted, onCredit) {
  if (!session.mayAny('support_lead')) {
    fill(section, { body: h('p', { class: 'muted' }, 'Your role cannot request credits: a support lead can.') });
    return;
  }
  const breached = cases.filter((c) => c.slaBreached);
  if (!breached.length) {
    fill(section, { body: h('p', { class: 'muted' }, 'No breached case: a credit needs one.') });
    return;
  }
  const currency = customer.subscriptions?.find((s) => s.plan)?.plan.price.currency ?? 'USD';
  const which = h('select', { name: 'case', required: true },
    breached.map((c) => h('option', { value: c.id, selected: c.id === wanted }, `${c.subject} (${words(c.priority)})`)));
  const amount = h('input', { name: 'amount', required: true, inputmode: 'decimal', pattern: '\\d+(\\.\\d+)?', placeholder: '40.00' });
  const reason = h('input', { name: 'reason', required: true, placeholder: 'SLA breach on the case' });
  const outcome = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, 'Request credit');
  // One key per intended credit: a retry after a network error is the same request.
  let key = newKey();
  const form = h('form', {
    class: 'inline', dataset: { form: 'request-credit' },
    onInput: () => { key = newKey(); },
    onSubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      replace(outcome, loading('Requesting…'));
      try {
        const input = { customerId: customer.id, caseId: which.value, amount: { amount: amount.value.trim(), currency }, reason: reason.value.trim() };
        const { data } = await run('RequestCredit', { input, idempotencyKey: key });
        const { credit, userErrors } = data.requestCredit;
        if (userErrors.length) {
          replace(outcome, userErrors.map((e) => failed(e)));
        } else {
          onCredit(credit);
          replace(outcome, h('p', { class: 'notice', dataset: { requested: credit.id } },
            `Credit of ${money(credit.amount)} requested: `,
            h('span', { dataset: { credit: credit.id } }, creditStatus(credit.status)),
            ' (it follows finance and the ERP live).'));
          key = newKey();
        }
      } catch (error) {
        replace(outcome, failed(error));
      } finally {
        submit.disabled = false;
      }
    },
  }, field('Breached case', which), field(`Amount (${currency})`, amount), field('Reason', reason), submit);
  fill(section, { source: 'opsgraph · policy decides', body: [form, outcome] });
}

function creditColumns() {
  return [
    { label: 'Amount', value: (c) => Number(c.amount.amount), show: (c) => money(c.amount), align: 'num' },
    { label: 'Status', value: (c) => c.status, show: (c) => h('span', { dataset: { credit: c.id } }, creditStatus(c.status)) },
    { label: 'Reason', show: (c) => c.reason },
    { label: 'Requested', value: (c) => c.createdAt, show: (c) => `${time(c.createdAt)} by ${c.requestedBy}` },
    { label: 'Decided by', show: (c) => c.decidedBy ?? '—' },
    { label: 'ERP memo', show: (c) => c.postingId ?? '—' },
  ];
}
