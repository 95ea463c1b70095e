// Operations: how the systems and their breakers are doing (read every 10 s: `systems` does
// not stream), the events the gateway processes and how late they reach it, workflow runs
// finishing, and the dead letters with what an operator may do about them. The charts are
// fed by subscriptions (eventProcessed, workflowRunUpdated) and keep the last 15 minutes.
import { run, subscribe, newKey } from '../gql.js';
import { h, replace, panel, fill, loading, failed, badge, field } from '../dom.js';
import { time, words, system, ago } from '../format.js';
import { table } from '../table.js';
import * as session from '../session.js';
import { writeButton, act } from '../writes.js';

const SYSTEMS_EVERY_MS = 10_000;
const BUCKET_S = 10;
const WINDOW_S = 15 * 60;
const RECENT = 20;
const FINISHED = ['SUCCEEDED', 'FAILED', 'PARKED'];
const STATUSES = ['RUNNING', 'WAITING', 'PENDING', 'SUCCEEDED', 'FAILED', 'PARKED', 'CANCELLED'];
const COLOURS = { events: '#2456c7', lag: '#9a6200', SUCCEEDED: '#1d7a46', FAILED: '#b3261e', PARKED: '#c98a00' };
const FILLS = { SUCCEEDED: 'rgba(29, 122, 70, 0.55)', FAILED: 'rgba(179, 38, 30, 0.7)', PARKED: 'rgba(201, 138, 0, 0.75)' };
// gateway/auth/scopes.py: workflows:operate, events:replay. The server decides anyway.
const MAY_OPERATE = ['finance_approver', 'integration_admin'];
const MAY_REPLAY = ['integration_admin'];

export async function render(main, params) {
  // In reading order: what is up, what flows, what is stuck, what just happened.
  const panels = {
    systems: panel('systems', 'Systems and breakers', loading()),
    workflows: panel('workflows', 'Workflow completion', loading()),
    throughput: panel('throughput', 'Event throughput and lag', loading()),
    dead: panel('dead-letters', 'Dead letters', loading()),
    events: panel('recent-events', `Last ${RECENT} events`, loading()),
  };
  replace(main, h('h1', {}, 'Operations'), h('div', { class: 'grid ops' }, Object.values(panels)));
  const charts = [];
  const deadLetters = dead(panels.dead);
  const stops = [
    systems(panels.systems),
    events(panels.throughput, panels.events, charts, params.get('type') ?? ''),
    workflows(panels.workflows, charts, deadLetters.refresh),
    resizing(charts),
  ];
  return () => stops.forEach((stop) => stop());
}

// -- systems ------------------------------------------------------------------------------

// The only polling on the page: systems' health is probed by the gateway in the
// background and answered from its memory, and has no subscription.
function systems(section) {
  let shown = null;
  const read = async () => {
    try {
      const { data } = await run('OperationsSystems');
      shown ??= table(systemColumns(), [], { name: 'systems', pageSize: 10, empty: 'No system is configured.' });
      shown.update(data.systems);
      fill(section, { source: `probed by the gateway · read ${time(new Date().toISOString())}`, body: shown });
    } catch (error) {
      // The last answer stays, marked as old, with why it could not be read again; a
      // refusal will not change in 10 s, so the reading stops.
      if (error.code === 'FORBIDDEN') clearInterval(every);
      fill(section, { source: badge('not refreshed', 'warn'), body: [failed(error), shown] });
    }
  };
  const every = setInterval(read, SYSTEMS_EVERY_MS);
  read();
  return () => clearInterval(every);
}

function systemColumns() {
  const breaker = { CLOSED: 'ok', HALF_OPEN: 'warn', OPEN: 'bad' };
  return [
    { label: 'System', value: (s) => s.name, show: (s) => system(s.name) },
    { label: 'Health', value: (s) => s.healthy, show: (s) => (s.healthy ? badge('healthy', 'ok') : badge('unhealthy', 'bad')) },
    { label: 'Latency', value: (s) => s.latencyMs, show: (s) => `${s.latencyMs} ms`, align: 'num' },
    { label: 'Breaker', value: (s) => s.breaker, show: (s) => badge(words(s.breaker), breaker[s.breaker]) },
    { label: 'Detail', show: (s) => s.detail ?? '' },
  ];
}

// -- events -------------------------------------------------------------------------------

function events(chartSection, listSection, charts, initialType) {
  const state = { type: initialType, buckets: new Map(), recent: [], since: new Date(), stop: () => {} };
  const host = h('div', { class: 'chart' });
  const status = h('p', { class: 'muted small', role: 'status' });
  const list = table(eventColumns(), [], { name: 'recent-events', pageSize: RECENT, empty: 'No event yet: they appear as the gateway processes them.' });
  fill(chartSection, { source: 'live · eventProcessed', body: [typeForm(state, restart), host, status] });
  fill(listSection, { source: 'live · eventProcessed', body: list });
  const chart = timeChart(host, [
    { label: 'Events / 10 s', scale: 'count', stroke: COLOURS.events, fill: 'rgba(36, 86, 199, 0.25)', bars: true },
    // Points too: a lone busy bucket between quiet ones has no line to draw.
    { label: 'Lag p50', scale: 'lag', stroke: COLOURS.lag, width: 2, points: { show: true, size: 5 }, value: (u, v) => lagText(v) },
    { label: 'Lag max', scale: 'lag', stroke: COLOURS.lag, dash: [4, 4], points: { show: true, size: 4, fill: '#fff' }, value: (u, v) => lagText(v) },
  ], [
    { scale: 'count', label: 'events', values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t : '')) },
    { scale: 'lag', side: 1, label: 'lag', values: (u, ticks) => ticks.map(lagText), grid: { show: false } },
  ]);
  charts.push(chart);
  const draw = frames(() => {
    chart.plot.setData(eventSeries(state.buckets));
    replace(status, `Live since ${time(state.since.toISOString())}${state.type ? `, type ${state.type}*` : ''}: `
      + `${state.count ?? 0} events. Lag is when the gateway processed an event less when its source says it happened.`);
  });

  function restart() {
    state.stop();
    state.buckets.clear();
    state.recent = [];
    state.count = 0;
    state.since = new Date();
    list.update([]);
    draw();
    state.stop = subscribe('OperationsEvents', { type: state.type || null }, (data) => {
      const event = data.eventProcessed;
      count(state.buckets, event);
      state.count += 1;
      state.recent = [event, ...state.recent].slice(0, RECENT);
      list.update(state.recent);
      draw();
    }, (errors) => replace(status, failed(errors?.[0] ?? { message: 'Live events stopped.' })));
  }

  restart();
  // The window slides even when nothing happens.
  const sliding = setInterval(draw, BUCKET_S * 1000);
  return () => { state.stop(); clearInterval(sliding); };
}

function typeForm(state, restart) {
  const input = h('input', { name: 'type', type: 'search', value: state.type, placeholder: 'billing.invoice, support.ticket…', autocomplete: 'off' });
  return h('form', {
    class: 'inline',
    onSubmit: (event) => {
      event.preventDefault();
      state.type = input.value.trim();
      restart();
    },
  }, field('Event type or prefix (empty: every event)', input), h('button', { type: 'submit', class: 'secondary' }, 'Follow'));
}

function eventColumns() {
  return [
    { label: 'Happened', value: (e) => e.time, show: (e) => clock(e.time) },
    { label: 'Type', value: (e) => e.type, show: (e) => h('code', {}, e.type) },
    { label: 'Subject', value: (e) => e.subject, show: (e) => e.subject ?? '—' },
    { label: 'Event id', show: (e) => h('code', { class: 'muted' }, e.id) },
  ];
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

// Today's events by the second; older ones (a vendor's late delivery) with their day.
function clock(iso) {
  const at = new Date(iso);
  return at.toDateString() === new Date().toDateString() ? timeOfDay.format(at) : time(iso);
}

// One event into its 10 s bucket: how many, and each one's lag (now less its time).
function count(buckets, event) {
  const now = Date.now() / 1000;
  const at = bucketOf(now);
  const bucket = buckets.get(at) ?? { n: 0, lags: [] };
  bucket.n += 1;
  bucket.lags.push(Math.max(0, now - Date.parse(event.time) / 1000));
  buckets.set(at, bucket);
  forgetOld(buckets, now);
}

function eventSeries(buckets) {
  const xs = window_();
  const of = (x) => buckets.get(x);
  return [
    xs,
    xs.map((x) => of(x)?.n ?? null), // no bar for an empty bucket
    xs.map((x) => (of(x) ? quantile(of(x).lags, 0.5) : null)),
    xs.map((x) => (of(x) ? Math.max(...of(x).lags) : null)),
  ];
}

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function lagText(seconds) {
  if (seconds == null) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

// -- workflows ----------------------------------------------------------------------------

function workflows(section, charts, onDeadLetter) {
  const counts = h('div', { class: 'counts' });
  const host = h('div', { class: 'chart' });
  const status = h('p', { class: 'muted small', role: 'status' });
  fill(section, { source: 'live · workflowRunUpdated', body: [counts, host, status] });
  // Stacked bars: each series is drawn as itself plus those after it, over the one before;
  // the legend says each one's own count.
  let counted = [];
  const chart = timeChart(host, FINISHED.map((s) => ({
    label: words(s), scale: 'count', stroke: COLOURS[s], fill: FILLS[s], bars: true,
    value: (u, v, si, i) => (i == null ? '—' : counted[si - 1]?.[i] ?? 0),
  })), [{ scale: 'count', label: 'runs finished / 10 s', values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t : '')) }]);
  charts.push(chart);
  // Each run counts once per status it finishes in, whenever it is heard of.
  const finished = new Map();
  const draw = frames(() => {
    const [xs, ...own] = finishedSeries(finished);
    counted = own;
    chart.plot.setData([xs, ...stacked(own)]);
  });
  const recount = debounced(() => readCounts(counts, finished, draw), 1000);
  readCounts(counts, finished, draw).then(draw);
  const stop = subscribe('OperationsWorkflowRuns', {}, (data) => {
    const r = data.workflowRunUpdated;
    if (FINISHED.includes(r.status)) finished.set(`${r.id}:${r.status}`, Date.parse(r.updatedAt) / 1000);
    replace(status, `Last: ${r.workflow} ${words(r.status)} (${r.subjectKind} ${r.subjectId}), ${ago(r.updatedAt)}.`);
    recount();
    if (r.status === 'FAILED' || r.status === 'PARKED' || r.status === 'RUNNING') onDeadLetter();
    draw();
  }, (errors) => replace(status, failed(errors?.[0] ?? { message: 'Live updates stopped.' })));
  const sliding = setInterval(draw, BUCKET_S * 1000);
  return () => { stop(); clearInterval(sliding); };
}

// The counts per status, read again (debounced) when a run moves: an update does not say
// which status the run left.
async function readCounts(host, finished, draw) {
  let data;
  try {
    ({ data } = await run('WorkflowRunCounts'));
  } catch (error) {
    replace(host, failed(error));
    return;
  }
  const n = Object.fromEntries(STATUSES.map((s) => [s, data[s.toLowerCase()].totalCount]));
  // The runs that finished lately seed the chart: it need not start empty.
  for (const { node: r } of data.recent.edges) {
    if (FINISHED.includes(r.status)) finished.set(`${r.id}:${r.status}`, Date.parse(r.updatedAt) / 1000);
  }
  const ended = n.SUCCEEDED + n.FAILED + n.PARKED + n.CANCELLED;
  const tone = { SUCCEEDED: 'ok', FAILED: 'bad', PARKED: 'warn', WAITING: 'info', RUNNING: 'info' };
  replace(host,
    STATUSES.map((s) => h('div', { class: `count ${tone[s] ?? ''}` }, h('strong', {}, n[s]), words(s))),
    h('div', { class: 'count' }, h('strong', {}, ended ? `${Math.round((100 * n.SUCCEEDED) / ended)}%` : '—'), 'of finished runs succeeded'));
  draw();
}

function finishedSeries(finished) {
  const xs = window_();
  for (const [id, at] of finished) if (at < xs[0]) finished.delete(id);
  const per = Object.fromEntries(FINISHED.map((s) => [s, new Map()]));
  for (const [id, at] of finished) {
    const status = id.slice(id.lastIndexOf(':') + 1);
    const bucket = bucketOf(at);
    per[status].set(bucket, (per[status].get(bucket) ?? 0) + 1);
  }
  return [xs, ...FINISHED.map((s) => xs.map((x) => per[s].get(x) ?? 0))];
}

// Each series as itself plus the ones after it; nothing (no bar) where that is 0.
function stacked(series) {
  return series.map((_, k) => series[0].map((__, i) => {
    const sum = series.slice(k).reduce((total, values) => total + values[i], 0);
    return sum || null;
  }));
}

// -- dead letters -------------------------------------------------------------------------

function dead(section) {
  const outcome = h('div', { class: 'outcome', role: 'status' });
  const mayOperate = session.mayAny(...MAY_OPERATE);
  const list = table(deadColumns(mayOperate, outcome, () => refresh()), [], {
    name: 'dead-letters', pageSize: 10, empty: 'No dead letter: every event route ran through.',
  });
  const replay = session.mayAny(...MAY_REPLAY)
    ? replayForm()
    : h('p', { class: 'muted small' }, 'Replaying events needs events:replay (integration admin).');
  const read = async () => {
    try {
      const { data } = await run('DeadLetters', { first: 50 });
      list.update(data.deadLetters.edges.map((e) => e.node));
      fill(section, { source: `${system('OPSGRAPH')} · ${data.deadLetters.totalCount} dead ${data.deadLetters.totalCount === 1 ? 'letter' : 'letters'} · read ${time(new Date().toISOString())}`, body: [outcome, list, replay] });
    } catch (error) {
      const body = error.code === 'FORBIDDEN'
        ? h('p', { class: 'notice' }, 'Dead letters need workflows:operate (finance approver, integration admin). ', h('span', { class: 'muted' }, error.message))
        : failed(error);
      fill(section, { body: [body, replay] });
    }
  };
  // Read again when a run fails, parks or runs again: the subscription says when.
  const refresh = debounced(read, 1000);
  read();
  return { refresh };
}

function deadColumns(mayOperate, outcome, refresh) {
  const columns = [
    { label: 'Workflow', value: (r) => r.workflow, show: (r) => h('code', {}, r.workflow) },
    { label: 'Subject', value: (r) => r.subjectId, show: (r) => `${r.subjectKind} ${r.subjectId}` },
    { label: 'Status', value: (r) => r.status, show: (r) => badge(words(r.status), r.status === 'FAILED' ? 'bad' : 'warn') },
    { label: 'Error', show: (r) => h('span', {}, r.errorCode ? h('code', {}, r.errorCode) : null, ' ', r.error ?? '') },
    { label: 'Updated', value: (r) => r.updatedAt, show: (r) => time(r.updatedAt) },
  ];
  if (!mayOperate) return columns;
  return [...columns, {
    label: '',
    show: (r) => (r.status === 'FAILED' || r.status === 'PARKED'
      ? writeButton('Retry', {
        tone: 'secondary', outcome, field: 'retryWorkflowRun',
        prepare: () => ['RetryDeadLetter', { id: r.id }],
        done: (payload) => {
          refresh();
          return payload.workflowRun ? `${r.workflow} for ${r.subjectId}: now ${words(payload.workflowRun.status)}.` : null;
        },
      })
      : ''),
  }];
}

// Replay: the range is typed in the viewer's zone (datetime-local) and sent as UTC.
function replayForm() {
  const now = new Date();
  const from = h('input', { type: 'datetime-local', name: 'from', required: true, value: local(new Date(now - 3600_000)) });
  const to = h('input', { type: 'datetime-local', name: 'to', required: true, value: local(now) });
  const type = h('input', { name: 'type', placeholder: 'every type', autocomplete: 'off' });
  const button = h('button', { type: 'submit' }, 'Replay');
  const outcome = h('div', { class: 'outcome', role: 'status' });
  let key = null;
  const form = h('form', {
    class: 'inline replay',
    onInput: () => { key = null; },
    onSubmit: async (event) => {
      event.preventDefault();
      const [start, end] = [new Date(from.value), new Date(to.value)];
      if (!(start < end)) {
        replace(outcome, failed({ code: 'BAD_USER_INPUT', message: '“From” must come before “to”.' }));
        return;
      }
      key ??= newKey();
      const variables = { from: start.toISOString(), to: end.toISOString(), type: type.value.trim() || null, idempotencyKey: key };
      const decided = await act(button, outcome, () => run('ReplayEvents', variables), 'replayEvents', (p) =>
        h('span', { class: 'counts' }, [['events', p.events], ['runs started', p.started], ['retried', p.retried], ['left alone', p.unchanged]]
          .map(([label, n]) => h('span', { class: 'count' }, h('strong', {}, n), label))));
      if (decided) key = null;
    },
  }, field('From (your time)', from), field('To', to), field('Event type', type), button);
  return h('div', { class: 'replay-part' }, h('h3', {}, 'Replay events'),
    h('p', { class: 'muted small' }, 'Routes again the events received in the range: no run that succeeded is repeated.'), form, outcome);
}

function local(at) {
  const shifted = new Date(at.getTime() - at.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

// -- charts -------------------------------------------------------------------------------

// A uPlot time series sized to its panel; `series` on the scales `axes` name.
function timeChart(host, series, axes) {
  const plot = new window.uPlot({
    width: widthOf(host),
    height: heightOf(),
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, count: { range: (u, min, max) => [0, Math.max(4, max)] }, lag: { range: (u, min, max) => [0, Math.max(1, max ?? 1)] } },
    series: [{}, ...series.map(seriesOf)],
    axes: [{ stroke: '#5d6b7a', grid: { stroke: '#eef1f5' } }, ...axes.map((a) => ({ stroke: '#5d6b7a', grid: { stroke: '#eef1f5' }, size: 56, ...a }))],
  }, [window_(), ...series.map(() => window_().map(() => null))], host);
  return { plot, host };
}

function seriesOf({ bars, ...rest }) {
  return {
    spanGaps: false,
    points: { show: false },
    ...rest,
    ...(bars ? { paths: window.uPlot.paths.bars({ size: [0.8, 24] }), points: { show: false } } : {}),
  };
}

function widthOf(host) {
  return Math.max(240, host.clientWidth || host.parentElement.clientWidth - 4);
}

function heightOf() {
  return window.innerWidth < 700 ? 200 : 240;
}

function resizing(charts) {
  const resize = debounced(() => {
    for (const { plot, host } of charts) plot.setSize({ width: widthOf(host), height: heightOf() });
  }, 150);
  window.addEventListener('resize', resize);
  return () => window.removeEventListener('resize', resize);
}

// The bucket starts of the last 15 minutes, oldest first (unix seconds, as uPlot takes).
function window_() {
  const last = bucketOf(Date.now() / 1000);
  const xs = [];
  for (let x = last - WINDOW_S + BUCKET_S; x <= last; x += BUCKET_S) xs.push(x);
  return xs;
}

function bucketOf(seconds) {
  return Math.floor(seconds / BUCKET_S) * BUCKET_S;
}

function forgetOld(buckets, now) {
  for (const at of buckets.keys()) if (at < now - WINDOW_S - BUCKET_S) buckets.delete(at);
}

// Redraws at most once a frame, however many events arrive in it.
function frames(draw) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  };
}

function debounced(action, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(action, ms);
  };
}
