// The caller's credential and chosen project. Kept in sessionStorage only: it lasts as long
// as the tab, is never sent anywhere but in the Authorization header of our own API calls,
// and never goes to localStorage or a cookie. Signing out forgets both.
export interface Credential {
  token: string;
  /** How it was obtained: a pasted API token, or an OIDC sign-in at `issuer`. */
  kind: 'token' | 'oidc';
  issuer?: string;
}

const KEY = 'modelreg.credential';
const PROJECT = 'modelreg.project';
const listeners = new Set<() => void>();

function read<T>(key: string): T | null {
  try {
    const v = sessionStorage.getItem(key);
    return v ? (JSON.parse(v) as T) : null;
  } catch {
    return null;
  }
}

function write(key: string, value: unknown) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage refused (private mode, quota): the credential then lives for this page only.
  }
}

let credential: Credential | null = read<Credential>(KEY);
let project: string | null = read<string>(PROJECT);

export const session = {
  get: () => credential,
  project: () => project,
  signIn(c: Credential) {
    credential = c;
    write(KEY, c);
    listeners.forEach((l) => l());
  },
  setProject(p: string | null) {
    project = p;
    write(PROJECT, p);
    listeners.forEach((l) => l());
  },
  signOut() {
    credential = null;
    project = null;
    write(KEY, null);
    write(PROJECT, null);
    listeners.forEach((l) => l());
  },
  subscribe(l: () => void) {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};
