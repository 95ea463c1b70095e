// A table that sorts (click a heading) and pages, over the rows it is given.
import { h, replace } from './dom.js';

// columns: [{label, value: row => sortable value, show: row => node|string, align}]
export function table(columns, rows, { pageSize = 10, empty = 'Nothing here.', onRow = null, name = '' } = {}) {
  const state = { sortBy: null, descending: false, page: 0 };
  const root = h('div', { class: 'table', dataset: { table: name } });

  function sorted() {
    if (state.sortBy == null) return rows;
    const { value } = columns[state.sortBy];
    const order = state.descending ? -1 : 1;
    return [...rows].sort((a, b) => {
      const [x, y] = [value(a), value(b)];
      if (x === y) return 0;
      if (x == null) return 1;
      if (y == null) return -1;
      return (x < y ? -1 : 1) * order;
    });
  }

  function draw() {
    const all = sorted();
    const pages = Math.max(1, Math.ceil(all.length / pageSize));
    state.page = Math.min(state.page, pages - 1);
    const shown = all.slice(state.page * pageSize, (state.page + 1) * pageSize);
    const heads = columns.map((column, i) => {
      const sort = state.sortBy === i ? (state.descending ? 'descending' : 'ascending') : 'none';
      const sortable = Boolean(column.value);
      return h(
        'th',
        { scope: 'col', 'aria-sort': sortable ? sort : null, class: column.align ?? null },
        sortable
          ? h('button', { type: 'button', onClick: () => by(i) }, column.label)
          : column.label,
      );
    });
    const body = shown.length
      ? shown.map((row) =>
          h(
            'tr',
            { class: onRow ? 'clickable' : null, onClick: onRow ? () => onRow(row) : null },
            columns.map((column) =>
              h('td', { class: column.align ?? null, 'data-label': column.label }, column.show(row)),
            ),
          ),
        )
      : [h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty))];
    replace(
      root,
      h('table', {}, h('thead', {}, h('tr', {}, heads)), h('tbody', {}, body)),
      all.length > pageSize
        ? h(
            'div',
            { class: 'pager' },
            h('button', { type: 'button', disabled: state.page === 0, onClick: () => turn(-1) }, 'Previous'),
            h('span', {}, `${state.page * pageSize + 1}–${state.page * pageSize + shown.length} of ${all.length}`),
            h('button', { type: 'button', disabled: state.page >= pages - 1, onClick: () => turn(1) }, 'Next'),
          )
        : null,
    );
  }

  function by(i) {
    state.descending = state.sortBy === i ? !state.descending : false;
    state.sortBy = i;
    draw();
  }

  function turn(step) {
    state.page += step;
    draw();
  }

  root.update = (next) => {
    rows = next;
    draw();
  };
  draw();
  return root;
}
