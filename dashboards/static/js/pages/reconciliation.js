// The reconciliation board: billing against the ERP. Runs and their progress (live while one
// works), the exceptions counted by severity and kind, the ranked exceptions page by page as
// the server keeps them, and a drill-down into one with finance's actions on it. New
// exceptions arrive live (reconciliationExceptionRaised) and are marked as new.
import { run, subscribe, newKey, errorsAt } from '../gql.js';
import { h, replace, panel, fill, loading, failed, badge, field } from '../dom.js';
import { money, time, date, provenance, duration, words, system } from '../format.js';
import { table } from '../table.js';
import * as session from '../session.js';
import { severity } from './customers.js';
import { writeButton, act } from '../writes.js';

const KINDS = [
  'MISSING_IN_TARGET', 'ORPHAN_IN_TARGET', 'DUPLICATE_IN_TARGET', 'AMOUNT_MISMATCH',
  'TAX_MISMATCH', 'CURRENCY_MISMATCH', 'PERIOD_MISMATCH', 'CREDIT_MISMATCH',
];
const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];
const STATUSES = ['OPEN', 'ACKNOWLEDGED', 'RESOLVED', 'AUTO_RESOLVED'];
const PAGE = 20;
// Who may do what (gateway/auth/scopes.py); the server decides anyway, this only hides
// buttons that would be refused.
const MAY_RUN = ['finance_approver', 'integration_admin'];
const MAY_RESOLVE = ['finance_approver'];

export async function render(main, params) {
  const board = {
    filter: filterFrom(params),
    cursors: [null], // the `after` of each page seen, to go back
    rows: [],
    fresh: new Set(), // raised while the page is open: marked new until it is reloaded
    selected: null,
    counts: null,
    panels: {
      runs: panel('runs', 'Reconciliation runs', loading()),
      severity: panel('severity', 'Exceptions by severity', loading()),
      kinds: panel('kinds', 'Exceptions by kind', loading()),
      list: panel('exception-list', 'Exceptions, highest rank first', loading()),
      detail: panel('exception-detail', 'Exception'),
    },
  };
  board.panels.detail.hidden = true;
  const live = h('p', { class: 'live muted', role: 'status' }, 'Connecting to live updates…');
  replace(main,
    h('div', { class: 'recon-heading' }, h('h1', {}, 'Reconciliation'), live),
    h('div', { class: 'grid recon' }, Object.values(board.panels)));
  await Promise.all([runs(board), counts(board), exceptions(board)]);
  board.stopRaised = subscribe('ReconciliationExceptionRaised', { severity: 'LOW' },
    (data) => raised(board, data.reconciliationExceptionRaised, live),
    (errors) => replace(live, failed(errors?.[0] ?? { message: 'Live updates stopped.' })));
  replace(live, 'Live: new exceptions appear as runs find them.');
  return () => board.stopRaised();
}

// -- runs ---------------------------------------------------------------------------------

async function runs(board) {
  const section = board.panels.runs;
  let answer;
  try {
    answer = await run('ReconciliationRuns', { first: 20 });
  } catch (error) {
    fill(section, { body: failed(error) });
    return;
  }
  const connection = answer.data.reconciliationRuns;
  board.runs = connection.edges.map((e) => e.node);
  board.runTotal = connection.totalCount;
  board.runTable = table(runColumns(), board.runs, { pageSize: 5, empty: 'No run yet.', name: 'runs' });
  fill(section, {
    source: runSource(board),
    body: [session.mayAny(...MAY_RUN) ? startForm(board) : null, board.runTable],
  });
  for (const r of board.runs) if (r.status === 'RUNNING') follow(board, r.id);
}

function runColumns() {
  return [
    { label: 'Started', value: (r) => r.startedAt, show: (r) => time(r.startedAt) },
    { label: 'Kind', value: (r) => r.kind, show: (r) => words(r.kind) },
    { label: 'Status', value: (r) => r.status, show: runStatus },
    { label: 'Periods', value: (r) => r.periodFrom, show: (r) => periods(r) },
    { label: 'Entities', show: (r) => (r.entities.length ? r.entities.join(', ') : 'all') },
    { label: 'Requested by', value: (r) => r.requestedBy, show: (r) => r.requestedBy },
    { label: 'Duration', value: (r) => r.durationS, show: (r) => duration(r.durationS), align: 'num' },
    { label: 'Read (billing / ERP)', show: (r) => `${r.stats.source ?? 0} / ${r.stats.target ?? 0}`, align: 'num' },
    { label: 'Compared', value: (r) => r.stats.compared, show: (r) => r.stats.compared ?? 0, align: 'num' },
    { label: 'Found', show: found },
  ];
}

function periods(r) {
  return r.periodFrom === r.periodTo ? r.periodFrom : `${r.periodFrom} – ${r.periodTo}`;
}

function runStatus(r) {
  const tone = { RUNNING: 'info', COMPLETED: 'ok', FAILED: 'bad' }[r.status];
  if (r.status !== 'RUNNING') {
    return h('span', {}, badge(words(r.status), tone), r.error ? h('div', { class: 'muted small' }, r.error) : null);
  }
  const share = progress(r);
  return h('div', { class: 'run-progress' },
    badge(`${words(r.phase)}`, tone),
    // No value while reading: how much there is to read is not known until it is read.
    h('progress', { class: 'progress', max: 1, value: share ?? false, 'aria-label': 'Run progress' }),
    h('span', { class: 'muted small' }, progressText(r)));
}

// How far a running run is. It knows no total while it reads; comparing goes as keys
// compared over the larger side read (a key that agrees holds one record of each side).
function progress(r) {
  const s = r.stats ?? {};
  if (r.phase === 'READING') return null;
  if (r.phase === 'RESOLVING' || r.phase === 'DONE') return 0.95;
  const total = Math.max(s.source ?? 0, s.target ?? 0, 1);
  return 0.1 + 0.85 * Math.min(1, (s.compared ?? 0) / total);
}

function progressText(r) {
  const s = r.stats ?? {};
  if (r.phase === 'READING') return `read ${(s.source ?? 0) + (s.target ?? 0)} records`;
  if (r.phase === 'COMPARING') return `${s.compared ?? 0} of ~${Math.max(s.source ?? 0, s.target ?? 0)} keys`;
  return 'marking what was not found again';
}

function found(r) {
  const kinds = r.stats.kinds ?? {};
  const total = Object.values(kinds).reduce((a, b) => a + b, 0);
  const parts = [`${total} exceptions`];
  if (r.stats.new) parts.push(`${r.stats.new} new`);
  if (r.stats.reopened) parts.push(`${r.stats.reopened} reopened`);
  if (r.stats.autoResolved) parts.push(`${r.stats.autoResolved} auto-resolved`);
  const title = Object.entries(kinds).map(([k, n]) => `${words(k.toUpperCase())}: ${n}`).join('\n');
  return h('span', { title: title || null }, parts.join(', '),
    r.stats.crmUnavailable ? badge('CRM unavailable: severities without account data', 'warn') : null);
}

// A running run streams its progress; when it ends the counts and the list are read again
// (what it found new also arrives through reconciliationExceptionRaised).
function follow(board, id) {
  board.following ??= new Set();
  if (board.following.has(id)) return;
  board.following.add(id);
  const stop = subscribe('ReconciliationRunProgress', { id }, (data) => {
    const updated = data.reconciliationRunUpdated;
    upsertRun(board, updated);
    if (updated.status !== 'RUNNING') {
      stop();
      board.following.delete(id);
      counts(board);
      exceptions(board);
    }
  }, () => board.following.delete(id));
}

function upsertRun(board, r) {
  const at = board.runs.findIndex((x) => x.id === r.id);
  if (at >= 0) board.runs[at] = r;
  else {
    board.runs.unshift(r);
    board.runTotal += 1;
    replace(board.panels.runs.querySelector('.source'), runSource(board));
  }
  board.runTable.update(board.runs);
}

function runSource(board) {
  return `${system('OPSGRAPH')} · ${board.runTotal} ${board.runTotal === 1 ? 'run' : 'runs'}`;
}

function startForm(board) {
  const month = thisMonth();
  const from = h('input', { type: 'month', name: 'periodFrom', required: true, value: monthsBefore(month, 2) });
  const to = h('input', { type: 'month', name: 'periodTo', required: true, value: month });
  const kind = h('select', { name: 'kind' },
    h('option', { value: 'FULL' }, 'Full: read both systems'),
    h('option', { value: 'INCREMENTAL' }, 'Incremental: what changed since the last run'));
  const button = h('button', { type: 'submit' }, 'Start run');
  const outcome = h('div', { class: 'outcome', role: 'status' });
  // One key per intended run: kept while the same run is retried (a dropped answer, a
  // refusal because another run was under way), new once the inputs change or it started.
  let key = null;
  const form = h('form', {
    class: 'inline start-run',
    onInput: () => { key = null; },
    onSubmit: async (event) => {
      event.preventDefault();
      key ??= newKey();
      const scope = { periodFrom: from.value, periodTo: to.value };
      const decided = await act(button, outcome, () => run('StartReconciliationRun',
        { scope, kind: kind.value, idempotencyKey: key }), 'runReconciliation', (payload) => {
        const started = payload.reconciliationRun;
        if (!started) return null;
        upsertRun(board, started);
        follow(board, started.id);
        return `Started run ${started.id}: its progress shows below.`;
      });
      if (decided) key = null;
    },
  }, field('From period', from), field('To period', to), field('Kind', kind), button);
  return h('div', { class: 'start' }, form, outcome);
}

function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}`;
}

function monthsBefore(month, count) {
  const [y, m] = month.split('-').map(Number);
  const at = new Date(y, m - 1 - count, 1);
  return `${at.getFullYear()}-${String(at.getMonth() + 1).padStart(2, '0')}`;
}

// -- the counts ---------------------------------------------------------------------------

async function counts(board) {
  const { status, period } = board.filter;
  let answer;
  try {
    answer = await run('ReconciliationExceptionCounts', { status: status || null, period: period || null });
  } catch (error) {
    fill(board.panels.severity, { body: failed(error) });
    fill(board.panels.kinds, { body: failed(error) });
    return;
  }
  const d = answer.data;
  // `severity` filters "at least": each level is its own count less the next one's.
  const bySeverity = {
    CRITICAL: d.critical.totalCount,
    HIGH: d.atLeastHigh.totalCount - d.critical.totalCount,
    MEDIUM: d.atLeastMedium.totalCount - d.atLeastHigh.totalCount,
    LOW: d.atLeastLow.totalCount - d.atLeastMedium.totalCount,
  };
  const byKind = Object.fromEntries(KINDS.map((k) => [k, d[camel(k)].totalCount]));
  board.counts = { bySeverity, byKind, bumped: new Set() };
  drawCounts(board);
}

function camel(kind) {
  return kind.toLowerCase().replace(/_(\w)/g, (_, c) => c.toUpperCase());
}

function drawCounts(board) {
  const { bySeverity, byKind, bumped } = board.counts;
  const scope = countScope(board.filter);
  const card = (label, n, tone, onClick, mark) => h('button', {
    type: 'button', class: `count ${tone}${n ? '' : ' zero'}`, onClick, title: `Show these in the list`,
  }, h('strong', {}, n), label, mark ? badge('new', 'info') : null);
  fill(board.panels.severity, {
    source: scope,
    body: h('div', { class: 'counts' }, SEVERITIES.map((s) => card(words(s), bySeverity[s],
      { CRITICAL: 'bad', HIGH: 'bad', MEDIUM: 'warn', LOW: 'muted' }[s],
      () => refilter(board, { severity: s }), bumped.has(s)))),
  });
  fill(board.panels.kinds, {
    source: scope,
    body: h('div', { class: 'counts' }, KINDS.map((k) => card(words(k), byKind[k], '',
      () => refilter(board, { kind: k }), bumped.has(k)))),
  });
}

function countScope({ status, period }) {
  return [status ? words(status) : 'every status', period || 'every period'].join(' · ');
}

// -- the list -----------------------------------------------------------------------------

function filterFrom(params) {
  return {
    kind: params.get('kind') ?? '',
    severity: params.get('severity') ?? '',
    status: params.has('status') ? params.get('status') : 'OPEN',
    period: params.get('period') ?? '',
  };
}

function refilter(board, change) {
  Object.assign(board.filter, change);
  const query = new URLSearchParams(Object.entries(board.filter).filter(([, v]) => v));
  if (!board.filter.status) query.set('status', '');
  history.replaceState(null, '', `${location.pathname}?${query}`);
  board.cursors = [null];
  exceptions(board);
  // The counts follow the status and period alone: a kind or a severity changes none.
  if ('status' in change || 'period' in change) counts(board);
}

async function exceptions(board) {
  const section = board.panels.list;
  const after = board.cursors.at(-1);
  const { kind, severity: least, status, period } = board.filter;
  const filter = { kind: kind || null, severity: least || null, status: status || null, period: period || null };
  let answer;
  try {
    answer = await run('ReconciliationExceptions', { filter, first: PAGE, after });
  } catch (error) {
    fill(section, { body: [filterForm(board), failed(error)] });
    return;
  }
  const connection = answer.data.reconciliationExceptions;
  board.rows = connection.edges.map((e, i) => ({
    ...e.node,
    fresh: board.fresh.has(e.node.id),
    errors: errorsAt(answer.errors, 'reconciliationExceptions', 'edges', i, 'node'),
  }));
  board.page = { total: connection.totalCount, next: connection.pageInfo };
  board.table = table(exceptionColumns(), board.rows, {
    pageSize: PAGE, name: 'exceptions', onRow: (x) => select(board, x.id),
    empty: 'No exception matches: billing and the ERP agree here.',
  });
  new MutationObserver(() => markSelected(board)).observe(board.table, { childList: true });
  board.pager = h('div', { class: 'server-pager' });
  fill(section, {
    source: answer.errors.length ? badge('partial: a system did not answer', 'warn') : `${system('OPSGRAPH')} · ranked by severity, then impact`,
    body: [filterForm(board), board.table, board.pager],
  });
  drawPager(board);
  markSelected(board);
}

function exceptionColumns() {
  return [
    { label: 'Severity', value: (x) => x.rank, show: (x) => h('span', { dataset: { exception: x.id } }, severity(x.severity), x.fresh ? badge('new', 'info') : null) },
    { label: 'Kind', value: (x) => x.kind, show: (x) => words(x.kind) },
    { label: 'Customer', value: (x) => x.customer?.name, show: (x) => x.customer?.name ?? h('span', { class: 'muted' }, 'not in the crosswalk') },
    { label: 'Invoice', value: (x) => x.key, show: (x) => h('code', {}, x.invoice?.number ?? x.key) },
    { label: 'Period', value: (x) => x.period, show: (x) => x.period },
    { label: 'Impact', value: (x) => Number(x.impact.amount), show: (x) => money(x.impact), align: 'num' },
    { label: 'Status', value: (x) => x.status, show: (x) => exceptionStatus(x.status) },
    { label: 'Detail', show: (x) => h('span', { class: 'detail-text' }, x.detail) },
  ];
}

function exceptionStatus(status) {
  const tone = { OPEN: 'bad', ACKNOWLEDGED: 'warn', RESOLVED: 'ok', AUTO_RESOLVED: 'ok' }[status];
  return badge(words(status), tone);
}

function filterForm(board) {
  const { kind, severity: least, status, period } = board.filter;
  const choose = (name, value, options, none) => h('select', {
    name, onChange: (event) => refilter(board, { [name]: event.target.value }),
  }, h('option', { value: '' }, none), options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
  return h('form', { class: 'inline filters', onSubmit: (event) => event.preventDefault() },
    field('Kind', choose('kind', kind, KINDS.map((k) => [k, words(k)]), 'Every kind')),
    field('Severity', choose('severity', least, SEVERITIES.map((s) => [s, `${words(s)} or worse`]), 'Any severity')),
    field('Status', choose('status', status, STATUSES.map((s) => [s, words(s)]), 'Any status')),
    field('Period', h('input', {
      type: 'month', name: 'period', value: period,
      onChange: (event) => refilter(board, { period: event.target.value }),
    })),
    h('button', {
      type: 'button', class: 'secondary',
      onClick: () => refilter(board, { kind: '', severity: '', status: 'OPEN', period: '' }),
    }, 'Reset to all open'));
}

// The server's pages (first/after): the table only sorts the page it holds.
function drawPager(board) {
  const { total, next } = board.page;
  const index = board.cursors.length - 1;
  const start = index * PAGE;
  replace(board.pager, h('div', { class: 'pager' },
    h('button', {
      type: 'button', class: 'secondary', disabled: index === 0,
      onClick: () => { board.cursors.pop(); exceptions(board); },
    }, 'Previous'),
    h('span', {}, total ? `${start + 1}–${Math.min(start + board.rows.length, total)} of ${total}` : '0'),
    h('button', {
      type: 'button', class: 'secondary', disabled: !next.hasNextPage,
      onClick: () => { board.cursors.push(next.endCursor); exceptions(board); },
    }, 'Next')));
}

// A new (or reopened) exception: counted, and at the top of the list when the list would
// hold it (its first page, its filter).
function raised(board, x, live) {
  const { kind, severity: least, status, period } = board.filter;
  if (board.counts && (!status || status === x.status) && (!period || period === x.period)) {
    board.counts.bySeverity[x.severity] += 1;
    board.counts.byKind[x.kind] += 1;
    board.counts.bumped.add(x.severity).add(x.kind);
    drawCounts(board);
  }
  board.fresh.add(x.id);
  board.newCount = (board.newCount ?? 0) + 1;
  replace(live, badge(`${board.newCount} new`, 'info'), ` Last: ${words(x.kind)} for ${x.customer?.name ?? x.key}, ${time(x.updatedAt)}.`);
  const shown = (!kind || kind === x.kind) && (!status || status === x.status) && (!period || period === x.period)
    && (!least || SEVERITIES.indexOf(x.severity) <= SEVERITIES.indexOf(least));
  if (!shown || board.cursors.length > 1 || !board.table) return;
  const replacing = board.rows.some((r) => r.id === x.id);
  board.rows = [{ ...x, fresh: true, errors: [] }, ...board.rows.filter((r) => r.id !== x.id)];
  if (!replacing) board.page.total += 1;
  board.table.update(board.rows);
  drawPager(board);
}

// -- one exception ------------------------------------------------------------------------

function select(board, id) {
  board.selected = id;
  markSelected(board);
  const x = board.rows.find((r) => r.id === id);
  if (!x) return;
  // What the last action on this exception came to: kept while the detail is redrawn with
  // the exception as the server answered, new for another exception.
  board.outcome = h('div', { class: 'outcome', role: 'status' });
  drawDetail(board, x);
  board.panels.detail.hidden = false;
  board.panels.detail.scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function close(board) {
  board.selected = null;
  board.panels.detail.hidden = true;
  markSelected(board);
}

// The table redraws its rows itself (sorting): the selected one is found by the id its
// first cell carries.
function markSelected(board) {
  if (!board.table) return;
  for (const tr of board.table.querySelectorAll('tbody tr')) {
    const id = tr.querySelector('[data-exception]')?.dataset.exception;
    tr.classList.toggle('selected', id != null && id === board.selected);
  }
}

function drawDetail(board, x) {
  const section = board.panels.detail;
  section.querySelector('h2').textContent = `${words(x.kind)} · ${x.invoice?.number ?? x.key}`;
  fill(section, {
    source: x.invoice ? provenance(x.invoice.source) : provenance(x.postings[0]?.source),
    body: h('div', { class: 'exception' },
      h('button', { type: 'button', class: 'link close', onClick: () => close(board) }, 'Close'),
      h('p', { class: 'lead' }, severity(x.severity), ' ', exceptionStatus(x.status), ' ', x.detail),
      h('div', { class: 'sides' },
        h('div', {}, h('h3', {}, 'Customer'), customerPart(x)),
        h('div', {}, h('h3', {}, `Invoice in ${system(x.source)}`), invoicePart(x)),
        h('div', {}, h('h3', {}, 'History'), historyPart(x))),
      h('h3', {}, `Postings in ${system(x.target)}`), postingsPart(x),
      actions(board, x)),
  });
}

function customerPart(x) {
  if (!x.customer) return h('p', { class: 'muted' }, 'The crosswalk knows no customer for this record.');
  return facts([
    ['Name', h('a', { href: `/dashboards/customers?id=${encodeURIComponent(x.customer.id)}` }, x.customer.name)],
    ['Legal entity', x.entity],
    ['Period', x.period],
    ['Impact', money(x.impact)],
  ]);
}

function invoicePart(x) {
  const missing = x.errors.filter((e) => e.path.includes('invoice'));
  if (missing.length) return missing.map((e) => failed({ code: e.extensions?.code, message: e.message }));
  const i = x.invoice;
  if (!i) return h('p', { class: 'muted' }, `${system(x.source)} has no invoice ${x.key}.`);
  return facts([
    ['Number', i.number ?? i.id],
    ['Total', money(i.total)],
    ['Issued', time(i.issuedAt)],
    ['Status', words(i.status)],
    ['Source', provenance(i.source)],
  ]);
}

function postingsPart(x) {
  const missing = x.errors.filter((e) => e.path.includes('postings'));
  if (missing.length) return missing.map((e) => failed({ code: e.extensions?.code, message: e.message }));
  const kept = x.postingIds[0];
  return table([
    { label: 'Posting', value: (p) => p.id, show: (p) => h('span', {}, h('code', {}, p.id), p.id === kept && x.postings.length > 1 ? [' ', badge('kept', 'muted')] : null) },
    { label: 'Amount', value: (p) => Number(p.amount.amount), show: (p) => money(p.amount), align: 'num' },
    { label: 'Tax', value: (p) => Number(p.tax.amount), show: (p) => money(p.tax), align: 'num' },
    { label: 'Date', value: (p) => p.tranDate, show: (p) => date(p.tranDate) },
    { label: 'Status', value: (p) => p.status, show: (p) => badge(words(p.status), p.status === 'VOIDED' ? 'muted' : 'info') },
    { label: 'Source', show: (p) => provenance(p.source) },
  ], x.postings, { empty: `${system(x.target)} holds no posting for ${x.key}.`, name: 'postings' });
}

function historyPart(x) {
  return facts([
    ['Status', exceptionStatus(x.status)],
    ['By', x.statusBy ?? '—'],
    ['Note', x.note ?? '—'],
    ['First found', h('span', {}, time(x.createdAt), ' ', h('code', { class: 'small' }, x.firstRunId))],
    ['Last found', h('span', {}, time(x.updatedAt), ' ', h('code', { class: 'small' }, x.lastRunId))],
  ]);
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// -- actions ------------------------------------------------------------------------------

function actions(board, x) {
  if (!session.mayAny(...MAY_RESOLVE)) {
    return h('p', { class: 'notice' }, 'Acknowledging and resolving needs reconciliation:resolve (finance approver).');
  }
  const outcome = board.outcome;
  if (x.status === 'RESOLVED' || x.status === 'AUTO_RESOLVED') {
    return h('div', { class: 'exception-actions' }, outcome,
      h('p', { class: 'notice' }, 'Resolved. A later run that finds the difference again reopens it.'));
  }
  const note = h('textarea', { name: 'note', rows: 2, placeholder: 'What was done, or why (required to resolve)' });
  const done = (payload) => {
    if (payload.reconciliationException) updated(board, payload.reconciliationException);
    if (payload.postingId) return `Done: ERP posting ${payload.postingId}.`;
    return `Now ${words(payload.reconciliationException?.status)}.`;
  };
  const buttons = [];
  if (x.status === 'OPEN') {
    buttons.push(writeButton('Acknowledge', {
      tone: 'secondary', outcome, field: 'acknowledgeReconciliationException', done,
      prepare: () => ['AcknowledgeReconciliationException', { id: x.id, note: note.value.trim() || null }],
    }));
  }
  buttons.push(writeButton('Resolve', {
    outcome, field: 'resolveReconciliationException', done,
    prepare: () => {
      if (!note.value.trim()) throw new Error('Say how it was resolved in the note.');
      return ['ResolveReconciliationException', { id: x.id, note: note.value.trim() }];
    },
  }));
  if (x.kind === 'MISSING_IN_TARGET') {
    buttons.push(writeButton('Post the invoice to the ERP', {
      outcome, field: 'repostInvoice', done,
      prepare: () => ['RepostInvoice', { exceptionId: x.id }],
    }));
  }
  // Another note is another write: a new key.
  note.addEventListener('input', () => buttons.forEach((b) => b.forget()));
  return h('div', { class: 'exception-actions' },
    h('h3', {}, 'Actions'), field('Note', note), h('div', { class: 'buttons' }, buttons),
    x.kind === 'DUPLICATE_IN_TARGET' ? voidPart(x, outcome, done) : null, outcome);
}

// Voiding: one of the extra postings, never the first (the one the ERP keeps).
function voidPart(x, outcome, done) {
  const extra = x.postingIds.slice(1).filter((id) => x.postings.find((p) => p.id === id)?.status !== 'VOIDED');
  if (!extra.length) return h('p', { class: 'muted' }, 'No extra posting left to void.');
  const which = h('select', { name: 'postingId' }, extra.map((id) => h('option', { value: id }, id)));
  const button = writeButton('Void this posting', {
    tone: 'danger', outcome, field: 'voidDuplicatePosting', done,
    prepare: () => ['VoidDuplicatePosting', { exceptionId: x.id, postingId: which.value }],
  });
  which.addEventListener('change', () => button.forget());
  return h('div', { class: 'void' },
    field(`Extra posting to void (${x.postingIds[0]} is kept)`, which), button);
}

// An exception the server answered with: in the list and the drill-down as it is now.
function updated(board, x) {
  const at = board.rows.findIndex((r) => r.id === x.id);
  const row = { ...x, fresh: at >= 0 && board.rows[at].fresh, errors: [] };
  if (at >= 0) board.rows[at] = row;
  board.table.update(board.rows);
  if (board.selected === x.id) drawDetail(board, row);
  counts(board);
}
