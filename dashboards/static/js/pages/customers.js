// Customer 360: find a customer by name or by any system's id, then everything the four
// systems hold about them, each panel saying where its data came from and how fresh it is;
// a system that did not answer leaves its panels saying so, the rest still shows. The page
// redraws itself when an event or a credit changes the customer (customerUpdated).
import { run, subscribe, errorsAt } from '../gql.js';
import { h, replace, panel, fill, loading, failed, badge, field } from '../dom.js';
import { money, time, date, provenance, system, words } from '../format.js';
import { table } from '../table.js';

const SYSTEMS = ['BILLING', 'ERP', 'CRM', 'SUPPORT', 'OPSGRAPH'];

export async function render(main, params) {
  const results = h('div', { class: 'results' });
  const view = h('div', { class: 'customer' });
  replace(main, h('h1', {}, 'Customer 360'), searchForm(params, results), results, view);
  const id = params.get('id');
  if (id) return show(view, id);
  return null;
}

function searchForm(params, results) {
  const input = h('input', {
    name: 'q', type: 'search', required: true, value: params.get('q') ?? '',
    placeholder: 'Acme, cus_…, 1042, 001…', autocomplete: 'off',
  });
  const where = h('select', { name: 'system' },
    h('option', { value: '' }, 'Name or any id'),
    SYSTEMS.map((s) => h('option', { value: s }, `${system(s)} id`)));
  return h('form', {
    class: 'search', role: 'search',
    onSubmit: (event) => {
      event.preventDefault();
      search(input.value.trim(), where.value, results);
    },
  }, field('Find a customer', input), field('By', where), h('button', { type: 'submit' }, 'Search'));
}

async function search(text, only, results) {
  if (!text) return;
  replace(results, loading('Searching…'));
  const systems = only ? [only] : SYSTEMS;
  const byId = systems.map((s) =>
    run('FindCustomerByExternalId', { system: s, externalId: text })
      .then(({ data }) => [{ ...data.customerByExternalId, matched: `${system(s)} id` }])
      .catch((error) => (error.code === 'NOT_FOUND' || error.code === 'BAD_USER_INPUT' ? [] : Promise.reject(error))));
  const byName = only ? [] : [run('FindCustomersByName', { name: text })
    .then(({ data }) => data.customers.edges.map(({ node }) => ({ ...node, matched: 'name' })))];
  const settled = await Promise.allSettled([...byName, ...byId]);
  const found = new Map();
  for (const outcome of settled) {
    if (outcome.status === 'fulfilled') for (const c of outcome.value) if (!found.has(c.id)) found.set(c.id, c);
  }
  const refused = settled.find((o) => o.status === 'rejected');
  if (found.size === 1 && !refused) {
    location.assign(`/dashboards/customers?id=${encodeURIComponent([...found.keys()][0])}`);
    return;
  }
  replace(results,
    refused && !found.size ? failed(refused.reason) : null,
    table(
      [
        { label: 'Customer', value: (c) => c.name, show: (c) => h('a', { href: `/dashboards/customers?id=${encodeURIComponent(c.id)}` }, c.name) },
        { label: 'Matched by', value: (c) => c.matched, show: (c) => c.matched },
        { label: 'Ids', show: (c) => c.externalIds.map((x) => `${system(x.system)}: ${x.id}`).join(', ') },
      ],
      [...found.values()],
      { empty: `No customer has the name or id “${text}”.`, name: 'search-results' },
    ));
}

const PANELS = [
  ['account', 'Account'],
  ['subscriptions', 'Plans'],
  ['entitlements', 'Entitlements'],
  ['balance', 'Receivable balance'],
  ['invoices', 'Invoices'],
  ['cases', 'Support cases'],
  ['credits', 'Service credits'],
  ['exceptions', 'Open reconciliation exceptions'],
];

async function show(view, id) {
  const sections = Object.fromEntries(PANELS.map(([name, title]) => [name, panel(name, title, loading())]));
  const heading = h('div', { class: 'customer-heading' }, h('h2', {}, 'Loading customer…'));
  const live = h('p', { class: 'live muted', role: 'status' });
  replace(view, heading, live, h('div', { class: 'grid' }, Object.values(sections)));
  let answers;
  try {
    answers = await Promise.all([run('CustomerPage', { id }), finance(id)]);
  } catch (error) {
    replace(view, failed(error));
    return null;
  }
  draw(heading, sections, ...answers);
  return subscribe('CustomerPageUpdated', { id }, async (data) => {
    draw(heading, sections, { data: { customer: data.customerUpdated }, errors: [] }, await finance(id));
    replace(live, `Updated live ${time(new Date().toISOString())}`);
  }, (errors) => replace(live, failed(errors?.[0] ?? { message: 'Live updates stopped.' })));
}

// Balances, ERP postings and reconciliation, for those who may read them: a role that may
// not gets its refusal, which those panels show.
async function finance(id) {
  try {
    return await run('CustomerFinance', { id });
  } catch (error) {
    if (error.code !== 'FORBIDDEN') throw error;
    return { refused: error };
  }
}

function draw(heading, sections, { data: { customer }, errors }, money_) {
  replace(heading,
    h('h2', {}, customer.name),
    h('p', { class: 'ids' }, customer.externalIds.map((x) => h('span', { class: 'id' }, `${system(x.system)} `, h('code', {}, x.id)))),
    customer.account?.strategic ? badge('strategic account', 'info') : null);
  const financeErrors = money_.errors ?? [];
  const restricted = (field) => money_.refused
    ? [{ extensions: { code: 'FORBIDDEN' }, message: 'Your role cannot see this.' }]
    : errorsAt(financeErrors, 'customer', field);
  const part = (name, errs, source, body) => {
    fill(sections[name], {
      source: errs.length ? badge(errs[0].extensions?.code === 'FORBIDDEN' ? 'not for your role' : 'partial', 'warn') : source,
      body: errs.length ? errs.map((e) => failed({ code: e.extensions?.code, message: e.message })) : body(),
    });
  };
  const missing = (field) => errorsAt(errors, 'customer', field);
  const a = customer.account;
  part('account', missing('account'), provenance(a?.source), () => a ? dl([
    ['Segment', a.segment ?? '—'], ['Owner', a.owner ?? '—'], ['Renewal', date(a.renewalDate)],
    ['Health score', a.healthScore ?? '—'],
  ]) : h('p', { class: 'muted' }, 'No CRM account is linked.'));
  const subs = customer.subscriptions ?? [];
  part('subscriptions', missing('subscriptions'), provenance(subs[0]?.source), () => table([
    { label: 'Plan', value: (s) => s.plan?.name, show: (s) => s.plan?.name ?? '—' },
    { label: 'Status', value: (s) => s.status, show: (s) => badge(words(s.status), s.status === 'ACTIVE' ? 'ok' : 'muted') },
    { label: 'Price', value: (s) => Number(s.plan?.price.amount), show: (s) => s.plan ? `${money(s.plan.price)} / ${words(s.plan.interval)}` : '—', align: 'num' },
    { label: 'Seats', value: (s) => s.quantity, show: (s) => s.quantity, align: 'num' },
    { label: 'Support', show: (s) => s.plan ? `${s.plan.supportTier}, ${s.plan.slaHours} h SLA` : '—' },
    { label: 'Renews', value: (s) => s.currentPeriodEnd, show: (s) => date(s.currentPeriodEnd.slice(0, 10)) },
  ], subs, { empty: 'No subscriptions.', name: 'subscriptions' }));
  const ents = customer.entitlements ?? [];
  part('entitlements', missing('entitlements'), provenance(ents[0]?.source), () => ents.length
    ? h('ul', { class: 'chips' }, ents.map((e) => h('li', {}, e.feature)))
    : h('p', { class: 'muted' }, 'No entitlements.'));
  const b = money_.data?.customer.balance;
  part('balance', restricted('balance'), provenance(b?.source), () => b
    ? h('p', { class: 'figure' }, money(b.receivable))
    : h('p', { class: 'muted' }, 'No ERP customer is linked.'));
  const postings = new Map((money_.data?.customer.invoices?.edges ?? []).map(({ node }) => [node.id, node.postingStatus]));
  const postingErrors = restricted('invoices');
  const invoices = customer.invoices?.edges.map((e) => e.node) ?? [];
  part('invoices', missing('invoices'), provenance(invoices[0]?.source), () => [
    postingErrors.length ? h('p', { class: 'muted' }, `ERP posting status: ${postingErrors[0].message}`) : null,
    table([
      { label: 'Number', value: (i) => i.number, show: (i) => i.number ?? i.id },
      { label: 'Issued', value: (i) => i.issuedAt, show: (i) => time(i.issuedAt) },
      { label: 'Status', value: (i) => i.status, show: (i) => words(i.status) },
      { label: 'Total', value: (i) => Number(i.total.amount), show: (i) => money(i.total), align: 'num' },
      { label: 'ERP posting', value: (i) => postings.get(i.id), show: (i) => posting(postings.get(i.id)) },
    ], invoices, { empty: 'No invoices.', name: 'invoices' }),
  ]);
  const cases = customer.cases?.edges.map((e) => e.node) ?? [];
  part('cases', missing('cases'), provenance(cases[0]?.source), () => table([
    { label: 'Subject', value: (c) => c.subject, show: (c) => c.subject },
    { label: 'Priority', value: (c) => c.priority, show: (c) => words(c.priority) },
    { label: 'Status', value: (c) => c.status, show: (c) => words(c.status) },
    { label: 'SLA', value: (c) => c.slaBreached, show: (c) => c.slaBreached ? badge('breached', 'bad') : badge('within SLA', 'ok') },
    { label: 'Opened', value: (c) => c.createdAt, show: (c) => time(c.createdAt) },
    { label: '', show: (c) => c.slaBreached
      ? h('a', { class: 'action', href: `/dashboards/support?customer=${encodeURIComponent(customer.id)}&case=${encodeURIComponent(c.id)}` }, 'Request credit')
      : '' },
  ], cases, { empty: 'No cases.', name: 'cases' }));
  part('credits', missing('credits'), system('OPSGRAPH'), () => table([
    { label: 'Amount', value: (c) => Number(c.amount.amount), show: (c) => money(c.amount), align: 'num' },
    { label: 'Status', value: (c) => c.status, show: (c) => creditStatus(c.status) },
    { label: 'Reason', show: (c) => c.reason },
    { label: 'Requested', value: (c) => c.createdAt, show: (c) => `${time(c.createdAt)} by ${c.requestedBy}` },
    { label: 'Decided by', show: (c) => c.decidedBy ?? '—' },
  ], customer.credits, { empty: 'No credits.', name: 'credits' }));
  part('exceptions', restricted('openExceptions'), system('OPSGRAPH'), () => table([
    { label: 'Kind', value: (x) => x.kind, show: (x) => words(x.kind) },
    { label: 'Severity', value: (x) => x.severity, show: (x) => severity(x.severity) },
    { label: 'Period', value: (x) => x.period, show: (x) => x.period },
    { label: 'Impact', value: (x) => Number(x.impact.amount), show: (x) => money(x.impact), align: 'num' },
    { label: 'Detail', show: (x) => x.detail },
  ], money_.data?.customer.openExceptions ?? [], { empty: 'Billing and the ERP agree for this customer.', name: 'exceptions' }));
}

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function posting(status) {
  if (!status) return '—';
  return badge(words(status), status === 'POSTED' ? 'ok' : 'bad');
}

export function creditStatus(status) {
  const tone = { REQUESTED: 'warn', APPROVED: 'info', POSTED: 'ok', REJECTED: 'muted', FAILED: 'bad' }[status];
  return h('span', { class: `badge ${tone ?? ''}`, dataset: { status } }, words(status));
}

export function severity(level) {
  const tone = { CRITICAL: 'bad', HIGH: 'bad', MEDIUM: 'warn', LOW: 'muted' }[level];
  return badge(words(level), tone);
}
