// History routing under /ui/: the server answers index.html for every path there, and the
// app reads location.pathname. Links are real <a href>s, so they open in new tabs too.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set<() => void>();
addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(to: string, replace = false) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  listeners.forEach((l) => l());
  scrollTo(0, 0);
}

export interface Location {
  path: string;
  search: string;
}

export function useLocation(): Location {
  const [loc, setLoc] = useState<Location>({ path: location.pathname, search: location.search });
  useEffect(() => {
    const l = () => setLoc({ path: location.pathname, search: location.search });
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return loc;
}

/** A click on an in-app link moves without a reload (unless a modifier asks for a new tab). */
export function onLinkClick(e: MouseEvent) {
  const a = (e.currentTarget as HTMLAnchorElement) ?? null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href')!);
}
