// How values are shown: money in its currency with that currency's decimals (exact: the
// amount is a decimal string, never a float), times in the viewer's own zone.
import { h, badge } from './dom.js';

const SYSTEMS = {
  BILLING: 'Billing (Stripe)',
  ERP: 'ERP (NetSuite)',
  ERP_SHADOW: 'Shadow ERP',
  CRM: 'CRM (Salesforce)',
  SUPPORT: 'Support (Zendesk)',
  OPSGRAPH: 'opsgraph',
};

export function system(name) {
  return SYSTEMS[name] ?? name;
}

const moneyFormats = new Map();

export function money(value) {
  if (!value) return '—';
  let format = moneyFormats.get(value.currency);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { style: 'currency', currency: value.currency });
    moneyFormats.set(value.currency, format);
  }
  // Intl formats a decimal string exactly (no binary float in between).
  return format.format(value.amount);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });

export function time(iso) {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

// A calendar date (renewal, posting date) is a day, not an instant: shown as that day.
export function date(iso) {
  return iso ? dateOnly.format(new Date(`${iso}T00:00:00Z`)) : '—';
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const steps = [
    [60, 'second'],
    [60, 'minute'],
    [24, 'hour'],
    [Infinity, 'day'],
  ];
  let amount = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(amount) < size) return relative.format(amount, unit);
    amount = Math.round(amount / size);
  }
  return time(iso);
}

// "Billing (Stripe) · cus_123 · read 2 minutes ago · cached": provenance on a panel.
export function provenance(source) {
  if (!source) return '';
  return h(
    'span',
    { class: 'provenance', title: `Read from ${system(source.system)} at ${time(source.fetchedAt)}` },
    system(source.system),
    source.fetchedAt ? ` · read ${ago(source.fetchedAt)}` : '',
    source.cached ? badge('cached', 'muted') : '',
    source.stale ? badge('stale', 'warn') : '',
  );
}

export function duration(seconds) {
  if (seconds == null) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

export function words(enumValue) {
  return enumValue ? enumValue.toLowerCase().replace(/_/g, ' ') : '—';
}
