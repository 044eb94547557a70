// A model's history: its audit events, newest first, each change as a per-field diff.
import { useEffect, useState } from 'preact/hooks';
import { call, query, type AuditEvent, type AuditEventList } from '../api';
import { ErrorBanner, Loading, Time } from '../ui/components';
import { FIELD_LABEL, FieldValue, same } from '../ui/modelForm';

type Link = { key?: string | null; values?: Record<string, unknown>; kept?: Record<string, unknown> } | null;

/** A change of the model's catalog link, in words: its entry, and which values became whose. */
function LinkChange({ from, to }: { from: Link; to: Link }) {
  const before = from?.values ?? {};
  const after = to?.values ?? {};
  const names = (fs: string[]) => fs.map((f) => FIELD_LABEL[f] ?? f).join(', ');
  const taken = Object.keys(after).filter((f) => !(f in before) || !same(before[f], after[f]));
  const own = Object.keys(before).filter((f) => !(f in after));
  const parts: string[] = [];
  if ((from?.key ?? null) !== (to?.key ?? null)) parts.push(`entry ${from?.key ?? 'none'} → ${to?.key ?? 'none'}`);
  if (taken.length) parts.push(`the catalog's: ${names(taken)}`);
  if (own.length) parts.push(`now the model's own: ${names(own)}`);
  return <>{parts.length ? parts.join('; ') : 'unchanged'}</>;
}

export function Changes({ changes }: { changes: AuditEvent['changes'] }) {
  const entries = Object.entries(changes ?? {});
  if (!entries.length) return <span class="muted">no field changed</span>;
  return (
    <table class="diff compact">
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">Before</th>
          <th scope="col">After</th>
        </tr>
      </thead>
      <tbody>
        {entries.map(([k, c]) => {
          const label = FIELD_LABEL[k] ?? k;
          if (typeof c === 'boolean') {
            return (
              <tr key={k}>
                <th scope="row">{label}</th>
                <td colSpan={2}>{String(c)}</td>
              </tr>
            );
          }
          if (c && typeof c === 'object' && 'changed' in c) {
            return (
              <tr key={k}>
                <th scope="row">{label}</th>
                <td colSpan={2}>changed (values are never recorded)</td>
              </tr>
            );
          }
          const fc = c as { from: unknown; to: unknown };
          if (k === 'catalog') {
            return (
              <tr key={k}>
                <th scope="row">Catalog link</th>
                <td colSpan={2}>
                  <LinkChange from={fc.from as Link} to={fc.to as Link} />
                </td>
              </tr>
            );
          }
          return (
            <tr key={k}>
              <th scope="row">{label}</th>
              <td class="from">
                <FieldValue name={k} v={fc.from} />
              </td>
              <td class="to">
                <FieldValue name={k} v={fc.to} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function History({ path }: { path: string }) {
  const [page, setPage] = useState(1);
  const [list, setList] = useState<AuditEventList | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    call<AuditEventList>('GET', `${path}/history${query({ page, limit: 10 })}`).then(
      (r) => {
        setList(r.data);
        setError(null);
      },
      setError,
    );
  }, [path, page]);
  const p = list?.pagination;
  return (
    <section class="card" aria-labelledby="history-h">
      <h2 id="history-h">History</h2>
      <ErrorBanner error={error} />
      {!list && !error && <Loading what="the history" />}
      {list && (
        <ol class="events">
          {list.data.map((e) => (
            <li key={e.id}>
              <p>
                <strong>{e.action}</strong> by <span class="mono">{e.principal}</span>
                {e.on_behalf_of && <> for {e.on_behalf_of}</>} <Time at={e.at} />
              </p>
              <Changes changes={e.changes} />
            </li>
          ))}
        </ol>
      )}
      {p && p.total_pages > 1 && (
        <nav class="pager" aria-label="History pages">
          <button type="button" class="secondary" disabled={!p.prev_page} onClick={() => setPage(page - 1)}>
            Newer
          </button>
          <span class="muted">
            page {p.page} of {p.total_pages}
          </span>
          <button type="button" class="secondary" disabled={!p.next_page} onClick={() => setPage(page + 1)}>
            Older
          </button>
        </nav>
      )}
    </section>
  );
}
