// The one way the console speaks to the server: the public API, with the caller's own
// bearer credential and the chosen project in X-Project-ID. Every failure becomes an
// ApiError carrying the server's error code and message (SPEC §4), or a code of our own when
// the server could not be reached or did not answer in that shape.
import type { components } from './schema';
import { session } from './session';

export type Schemas = components['schemas'];
export type Model = Schemas['ModelView'];
export type ModelSummary = Schemas['ModelSummary'];
export type ModelList = Schemas['ModelList'];
export type ModelCreate = Schemas['ModelCreate'];
export type ModelUpdate = Schemas['ModelUpdate'];
export type ProbeOutcome = Schemas['ProbeOutcome'];
export type StoredVerification = Schemas['StoredVerification'];
export type AuditEvent = Schemas['AuditEventView'];
export type AuditEventList = Schemas['AuditEventList'];
export type TokenView = Schemas['TokenView'];
export type CreatedToken = Schemas['CreatedToken'];
export type Status = Schemas['Status'];
export type Mode = Schemas['Mode'];
export type Capability = Schemas['Capability'];
export type CatalogEntry = Schemas['CatalogEntry'];
export type CatalogPage = Schemas['CatalogPage'];
export type CatalogSource = Schemas['CatalogSource'];
export type Provenance = Schemas['Provenance'];
export type UpstreamChanges = Schemas['UpstreamChanges'];
export type ModelUpstream = Schemas['ModelUpstream'];
export type UpstreamChange = Schemas['UpstreamChange'];

export const STATUSES: Status[] = ['PENDING', 'ACTIVE', 'ERROR', 'DEPRECATED', 'DISABLED'];
export const MODES: Mode[] = ['chat', 'completion', 'embedding', 'image_generation', 'audio_transcription'];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
    readonly fields: { loc: string; msg: string }[] = [],
  ) {
    super(message);
  }
}

export interface Reply<T> {
  data: T;
  status: number;
  etag: string | null;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Send X-Project-ID (every model call does; token and audit calls are per organization). */
  project?: boolean;
  signal?: AbortSignal;
}

// Reads started before the app rendered (prefetch), by method, path and project.
const early = new Map<string, Promise<Reply<unknown>>>();
const earlyKey = (path: string, project: boolean) => `${path} ${project ? session.project() : ''}`;

/**
 * Starts `GET path` now, before the page that needs it has rendered; that page's own call
 * for the same path and project then takes this answer instead of asking again. A cold load
 * of a page so waits for one round trip of the API, not two in a row.
 */
export function prefetch(path: string, project = true) {
  const p = send<unknown>('GET', path, { project });
  p.catch(() => undefined);
  early.set(earlyKey(path, project), p);
}

/** Calls the API; resolves with the parsed body and the ETag, or rejects with an ApiError. */
export function call<T>(method: string, path: string, opts: CallOptions = {}): Promise<Reply<T>> {
  if (method === 'GET' && !opts.headers) {
    const key = earlyKey(path, opts.project !== false);
    const p = early.get(key);
    if (p) {
      early.delete(key);
      return p as Promise<Reply<T>>;
    }
  }
  return send<T>(method, path, opts);
}

async function send<T>(method: string, path: string, opts: CallOptions): Promise<Reply<T>> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  const s = session.get();
  if (s) headers.Authorization = `Bearer ${s.token}`;
  const project = session.project();
  if (opts.project !== false && project) headers['X-Project-ID'] = project;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK_ERROR', `The server could not be reached (${(e as Error).message}).`);
  }
  const text = await res.text();
  let body: any = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    const err = body?.error;
    if (err && typeof err.code === 'string') {
      const fields = Array.isArray(body.detail)
        ? body.detail.map((d: any) => ({ loc: (d.loc ?? []).join('.'), msg: String(d.msg ?? '') }))
        : [];
      throw new ApiError(res.status, err.code, String(err.message ?? ''), err.request_id, fields);
    }
    throw new ApiError(res.status, `HTTP_${res.status}`, `The server answered ${res.status} ${res.statusText} without an error body.`);
  }
  if (text && body === null) {
    throw new ApiError(res.status, 'BAD_RESPONSE', 'The server answered with a body that is not JSON.');
  }
  return { data: body as T, status: res.status, etag: res.headers.get('ETag') };
}

export const enc = encodeURIComponent;

/** A query string of the non-empty entries of `q`. */
export function query(q: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
