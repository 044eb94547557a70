// The organization's audit log (owners and admins), with its filters.
import { useEffect, useState } from 'preact/hooks';
import { call, query, type AuditEventList } from '../api';
import { ErrorBanner, Loading, Time } from '../ui/components';
import { Changes } from './History';

const ACTIONS = ['model.create', 'model.update', 'model.credentials', 'model.delete', 'model.verify'];

export function Audit() {
  const [f, setF] = useState({ action: '', resource_uri: '', actor: '', since: '', until: '' });
  const [applied, setApplied] = useState(f);
  const [page, setPage] = useState(1);
  const [list, setList] = useState<AuditEventList | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const iso = (v: string) => (v ? new Date(v).toISOString() : '');
    setList(null);
    call<AuditEventList>('GET', `/assets/audit${query({ ...applied, since: iso(applied.since), until: iso(applied.until), page, limit: 25 })}`, { project: false }).then(
      (r) => {
        setList(r.data);
        setError(null);
      },
      (e) => {
        setError(e);
        setList(null);
      },
    );
  }, [applied, page]);

  const set = (k: keyof typeof f) => (e: { currentTarget: HTMLInputElement }) => setF({ ...f, [k]: e.currentTarget.value });
  const text = (k: keyof typeof f, label: string, placeholder = '') => (
    <div class="field">
      <label for={`a-${k}`}>{label}</label>
      <input id={`a-${k}`} type="text" value={f[k]} placeholder={placeholder} onInput={set(k)} />
    </div>
  );
  const time = (k: keyof typeof f, label: string) => (
    <div class="field">
      <label for={`a-${k}`}>{label}</label>
      <input id={`a-${k}`} type="datetime-local" value={f[k]} onInput={set(k)} />
    </div>
  );
  const p = list?.pagination;
  return (
    <main id="main" class="page">
      <h1>Audit log</h1>
      <p class="muted">Every change in the organization, newest first.</p>
      <form
        class="filters"
        role="search"
        aria-label="Filter events"
        onSubmit={(e) => {
          e.preventDefault();
          setPage(1);
          setApplied(f);
        }}
      >
        <div class="field">
          <label for="a-action">Action</label>
          <select id="a-action" value={f.action} onChange={(e) => setF({ ...f, action: e.currentTarget.value })}>
            <option value="">Any</option>
            {ACTIONS.map((a) => (
              <option key={a}>{a}</option>
            ))}
          </select>
        </div>
        {text('resource_uri', 'Resource URI')}
        {text('actor', 'Actor', 'user:alice')}
        {time('since', 'Since')}
        {time('until', 'Until')}
        <button type="submit">Apply</button>
      </form>
      <ErrorBanner error={error} />
      {!list && !error && <Loading what="events" />}
      {list && (
        <>
          <p class="summary">{p!.total_items.toLocaleString()} events</p>
          <div class="table-wrap">
            <table>
              <caption class="sr-only">Audit events</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">Project</th>
                  <th scope="col">Model</th>
                  <th scope="col">Changes</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((e) => (
                  <tr key={e.id}>
                    <td>
                      <Time at={e.at} />
                    </td>
                    <td class="mono small">
                      {e.principal}
                      {e.on_behalf_of && <div>for {e.on_behalf_of}</div>}
                    </td>
                    <td>{e.action}</td>
                    <td>{e.project_id}</td>
                    <td class="mono small">{e.resource_uri}</td>
                    <td>
                      <Changes changes={e.changes} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Audit pages">
            <button type="button" class="secondary" disabled={!p!.prev_page} onClick={() => setPage(page - 1)}>
              Newer
            </button>
            <span class="muted">
              page {p!.page} of {Math.max(1, p!.total_pages)}
            </span>
            <button type="button" class="secondary" disabled={!p!.next_page} onClick={() => setPage(page + 1)}>
              Older
            </button>
          </nav>
        </>
      )}
    </main>
  );
}
