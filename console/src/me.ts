// Who the caller is, from GET /auth/me: its grants and, per project, what it may do
// (`can`). Buttons follow `can`; the role matrix itself lives only on the server.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

import type { Schemas } from './api';

export type Can = Schemas['Permissions'];
export type Me = Schemas['Me'];

export const NOTHING: Can = { read: false, verify: false, write: false, delete: false, audit: false, manage_tokens: false };

const EVERYTHING: Can = { read: true, verify: true, write: true, delete: true, audit: true, manage_tokens: true };

/**
 * What the caller may do in `project`: the server's answer for that project. A project it did
 * not list (one without models yet, typed by a caller whose grant is `*`) takes the answer
 * for a listed project of the same role. With none listed (a new installation) the console
 * cannot know, so it shows the controls and the server decides: it refuses what the role may
 * not do, and the page shows that refusal.
 */
export function canIn(me: Me | null, project: string | null): Can {
  if (!me || !project) return NOTHING;
  const listed = me.projects.find((p) => p.id === project);
  if (listed) return listed.can;
  const star = me.grants.find((g) => g.project === '*');
  const same = star && me.projects.find((p) => p.role === star.role);
  if (same) return same.can;
  return star ? EVERYTHING : NOTHING;
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
