// Shared pieces: the error banner, the dialog, status badges, times, links.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { ApiError, type Status } from '../api';
import { onLinkClick } from '../router';

export function Link(props: { href: string; class?: string; children: ComponentChildren; 'aria-current'?: 'page' | undefined }) {
  return (
    <a href={props.href} class={props.class} onClick={onLinkClick} aria-current={props['aria-current']}>
      {props.children}
    </a>
  );
}

/** Any error, shown with the API's code and message (and request id), never a blank screen. */
export function ErrorBanner({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  const code = e ? e.code : 'CONSOLE_ERROR';
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div class="error" role="alert">
      <p>
        <strong class="code">{code}</strong>
        {e && e.status ? <span class="muted"> (HTTP {e.status})</span> : null} {message}
      </p>
      {e && e.fields.length > 0 && (
        <ul>
          {e.fields.map((f) => (
            <li key={f.loc}>
              <code>{f.loc}</code>: {f.msg}
            </li>
          ))}
        </ul>
      )}
      {e?.code === 'INVALID_TOKEN' && <p>Your credential was refused: sign out and sign in again.</p>}
      {e?.requestId && <p class="muted small">Request id: <code>{e.requestId}</code></p>}
      {onDismiss && (
        <button type="button" class="link" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

/**
 * A modal dialog: the native <dialog>, which keeps focus inside it and closes on Escape.
 * Focus moves to the first field (or `initialFocus`) when it opens and returns where it was
 * when it closes.
 */
export function Dialog(props: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
  role?: 'dialog' | 'alertdialog';
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  useEffect(() => {
    const d = ref.current!;
    const before = document.activeElement as HTMLElement | null;
    d.showModal();
    const first = d.querySelector<HTMLElement>('[data-autofocus], input, select, textarea, button');
    first?.focus();
    return () => {
      d.close();
      before?.focus?.();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class={props.wide ? 'wide' : ''}
      role={props.role}
      aria-labelledby={id}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      <h2 id={id}>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

export function StatusBadge({ status, message, verifiedAt }: { status: Status; message?: string | null; verifiedAt?: string | null }) {
  const title = [message, verifiedAt ? `last verified ${new Date(verifiedAt).toLocaleString()}` : 'never verified']
    .filter(Boolean)
    .join(' · ');
  return (
    <span class={`badge s-${status.toLowerCase()}`} title={title}>
      {status}
    </span>
  );
}

const units: [number, Intl.RelativeTimeFormatUnit][] = [
  [60, 'second'],
  [60, 'minute'],
  [24, 'hour'],
  [30, 'day'],
  [12, 'month'],
  [Infinity, 'year'],
];
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function ago(at: string): string {
  let v = (new Date(at).getTime() - Date.now()) / 1000;
  for (const [n, unit] of units) {
    if (Math.abs(v) < n) return rtf.format(Math.round(v), unit);
    v /= n;
  }
  return at;
}

export function Time({ at }: { at?: string | null }) {
  if (!at) return <span class="muted">never</span>;
  return (
    <time dateTime={at} title={new Date(at).toLocaleString()}>
      {ago(at)}
    </time>
  );
}

export function Value({ v }: { v: unknown }) {
  if (v === null || v === undefined) return <span class="muted">not set</span>;
  if (Array.isArray(v)) return v.length ? <span>{v.map((x) => <span class="tag" key={String(x)}>{String(x)}</span>)}</span> : <span class="muted">[]</span>;
  if (typeof v === 'object') return <code>{JSON.stringify(v)}</code>;
  return <span>{String(v)}</span>;
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}
