// The console: the shell (header, project picker, navigation), the error boundary, and the
// routes to each page (one file per page in pages/).
import { Component, render, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, prefetch } from './api';
import { AppContext, canIn, hasStarGrant, type Me } from './me';
import { navigate, useLocation } from './router';
import { session } from './session';
import { ErrorBanner, Link, Loading } from './ui/components';
import { SignIn } from './pages/SignIn';
import { Callback } from './pages/Callback';
import { Models, firstListPath } from './pages/Models';
import { ModelDetail } from './pages/ModelDetail';
import { AddModel } from './pages/AddModel';
import { Catalog } from './pages/Catalog';
import { Tokens } from './pages/Tokens';
import { Audit } from './pages/Audit';
import { ApiReference } from './pages/ApiReference';

/** Catches what a page throws while rendering, so a bug shows as an error, not a blank page. */
class ErrorBoundary extends Component<{ children: ComponentChildren }, { error: unknown }> {
  state = { error: null as unknown };
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  render() {
    if (this.state.error) {
      return (
        <main id="main" class="page">
          <h1>Something went wrong</h1>
          <ErrorBanner error={this.state.error} />
          <p>
            <button type="button" onClick={() => location.reload()}>
              Reload the page
            </button>
          </p>
        </main>
      );
    }
    return this.props.children;
  }
}

function useSession() {
  const [, bump] = useState(0);
  useEffect(() => session.subscribe(() => bump((n) => n + 1)), []);
  return { credential: session.get(), project: session.project() };
}

function App() {
  const loc = useLocation();
  const { credential } = useSession();
  if (loc.path === '/ui/callback') return <Callback />;
  if (!credential) return <SignIn />;
  return <Shell />;
}

function ProjectPicker({ me, project }: { me: Me; project: string | null }) {
  const star = hasStarGrant(me);
  const [typed, setTyped] = useState(project ?? '');
  useEffect(() => setTyped(project ?? ''), [project]);
  if (!star) {
    return (
      <div class="picker">
        <label for="project">Project</label>
        <select id="project" value={project ?? ''} onChange={(e) => session.setProject(e.currentTarget.value)}>
          {me.projects.map((p) => (
            <option key={p.id} value={p.id}>
              {p.id} ({p.role})
            </option>
          ))}
        </select>
      </div>
    );
  }
  const commit = () => {
    const v = typed.trim();
    if (v && v !== project) session.setProject(v);
  };
  return (
    <form
      class="picker"
      onSubmit={(e) => {
        e.preventDefault();
        commit();
      }}
    >
      <label for="project">Project</label>
      <input id="project" list="project-list" value={typed} autoComplete="off" aria-describedby="project-hint" onInput={(e) => setTyped(e.currentTarget.value)} onChange={commit} />
      <datalist id="project-list">
        {me.projects.map((p) => (
          <option key={p.id} value={p.id} />
        ))}
      </datalist>
      <span id="project-hint" class="sr-only">
        Choose a project or type the name of another one
      </span>
    </form>
  );
}

function Shell() {
  const loc = useLocation();
  const project = session.project();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    call<Me>('GET', '/auth/me', { project: false }).then(
      (r) => {
        setMe(r.data);
        const ids = r.data.projects.map((p) => p.id);
        const current = session.project();
        if (!current || (!ids.includes(current) && !hasStarGrant(r.data))) {
          session.setProject(ids[0] ?? (hasStarGrant(r.data) ? 'default' : null));
        }
      },
      (e) => {
        setError(e);
        if (e instanceof ApiError && e.status === 401) session.signOut();
      },
    );
  }, []);

  useEffect(() => {
    if (loc.path === '/ui' || loc.path === '/ui/') navigate('/ui/models', true);
  }, [loc.path]);

  const can = canIn(me, project);
  const nav = [
    { href: '/ui/models', label: 'Models', show: true },
    { href: '/ui/models/new', label: 'Add model', show: can.write },
    { href: '/ui/catalog', label: 'Catalog', show: true },
    { href: '/ui/tokens', label: 'Tokens', show: can.manage_tokens },
    { href: '/ui/audit', label: 'Audit log', show: can.audit },
    { href: '/ui/api', label: 'API reference', show: true },
  ];
  const active = (href: string) =>
    href === '/ui/models' ? loc.path === href || (loc.path.startsWith('/ui/models/') && loc.path !== '/ui/models/new') : loc.path === href;

  return (
    <AppContext.Provider value={{ me, project, can }}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/ui/models" class="brand">
          modelreg
        </Link>
        <nav aria-label="Main">
          {nav
            .filter((n) => n.show)
            .map((n) => (
              <Link key={n.href} href={n.href} aria-current={active(n.href) ? 'page' : undefined}>
                {n.label}
              </Link>
            ))}
        </nav>
        <div class="spacer" />
        {me && <ProjectPicker me={me} project={project} />}
        {me && (
          <span class="who" title={`organization ${me.organization_id}`}>
            {me.principal}
          </span>
        )}
        <button type="button" class="secondary" onClick={() => session.signOut()}>
          Sign out
        </button>
      </header>
      <ErrorBoundary key={loc.path}>
        {error ? (
          <main id="main" class="page">
            <h1>Cannot load your identity</h1>
            <ErrorBanner error={error} />
          </main>
        ) : !me ? (
          <main id="main" class="page">
            <Loading what="your identity" />
          </main>
        ) : !project ? (
          <main id="main" class="page">
            <h1>No project</h1>
            <p>Your credential reaches no project. Ask an owner of your organization for a grant.</p>
          </main>
        ) : (
          <Route path={loc.path} project={project} />
        )}
      </ErrorBoundary>
    </AppContext.Provider>
  );
}

function Route({ path, project }: { path: string; project: string }) {
  if (path === '/ui/models') return <Models key={project} />;
  if (path === '/ui/models/new') return <AddModel key={project} />;
  const m = path.match(/^\/ui\/models\/([^/]+)$/);
  if (m) return <ModelDetail key={`${project}/${m[1]}`} uri={decodeURIComponent(m[1])} />;
  if (path === '/ui/catalog') return <Catalog key={project} />;
  if (path === '/ui/tokens') return <Tokens />;
  if (path === '/ui/audit') return <Audit />;
  if (path === '/ui/api') return <ApiReference />;
  if (path === '/ui' || path === '/ui/') return null;
  return (
    <main id="main" class="page">
      <h1>Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <Link href="/ui/models">Go to the models</Link>.
      </p>
    </main>
  );
}

addEventListener('unhandledrejection', (e) => console.error('unhandled', e.reason));
// Signed in already (a reload, a new page in this tab): ask for the caller and, on the models
// page, its first page of models at once, side by side, while the app renders.
if (session.get()) {
  prefetch('/auth/me', false);
  if (session.project() && location.pathname === '/ui/models') prefetch(firstListPath(location.search));
}

const root = document.getElementById('app')!;
// The loading line in index.html goes; the app takes the element over.
root.textContent = '';
render(<App />, root);
