// Who the caller is, from GET /auth/me: its grants and, per project, what it may do
// (`can`). Buttons follow `can`; the role matrix itself lives only on the server.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface Can {
  read: boolean;
  verify: boolean;
  write: boolean;
  delete: boolean;
  audit: boolean;
  manage_tokens: boolean;
}

export interface Me {
  principal: string;
  organization_id: string;
  credential: 'token' | 'jwt';
  grants: { project: string; role: string }[];
  projects: { id: string; role: string; can: Can }[];
}

export const NOTHING: Can = { read: false, verify: false, write: false, delete: false, audit: false, manage_tokens: false };

/**
 * What the caller may do in `project`: the server's answer for that project; for a project it
 * did not list (typed by a caller whose grant is `*`), the answer it gave for a listed project
 * of the same role, if any. Otherwise nothing is assumed, and read-only controls show: the
 * server refuses anything the role may not do whatever the page shows.
 */
export function canIn(me: Me | null, project: string | null): Can {
  if (!me || !project) return NOTHING;
  const listed = me.projects.find((p) => p.id === project);
  if (listed) return listed.can;
  const star = me.grants.find((g) => g.project === '*');
  const same = star && me.projects.find((p) => p.role === star.role);
  if (same) return same.can;
  return star ? { ...NOTHING, read: true } : NOTHING;
}

export function hasStarGrant(me: Me | null): boolean {
  return !!me?.grants.some((g) => g.project === '*');
}

export interface AppState {
  me: Me | null;
  project: string | null;
  can: Can;
}

export const AppContext = createContext<AppState>({ me: null, project: null, can: NOTHING });
export const useApp = () => useContext(AppContext);
