// The API reference: Swagger UI (swagger-ui-dist, vendored into the console's assets) over
// /openapi.json, with "Try it out" sending the caller's own token and project. Its script and
// stylesheet are loaded only on this page, from this server (the CSP allows nothing else).
import { useEffect, useRef, useState } from 'preact/hooks';
import { session } from '../session';
import { ErrorBanner, Loading } from '../ui/components';

declare global {
  interface Window {
    SwaggerUIBundle?: (options: Record<string, unknown>) => { preauthorizeApiKey: (name: string, value: string) => void };
  }
}

let loading: Promise<void> | null = null;

function loadSwagger(): Promise<void> {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = '/ui/assets/swagger-ui.css';
      document.head.appendChild(css);
      const js = document.createElement('script');
      js.src = '/ui/assets/swagger-ui-bundle.js';
      js.onload = () => resolve();
      js.onerror = () => {
        loading = null;
        reject(new Error('Swagger UI could not be loaded from /ui/assets/swagger-ui-bundle.js.'));
      };
      document.head.appendChild(js);
    });
  }
  return loading;
}

export function ApiReference() {
  const el = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<unknown>(null);
  const [ready, setReady] = useState(false);
  useEffect(() => {
    // What Swagger UI renders without: a name for its enum selects, and keyboard access to
    // its scrollable code blocks (axe-core's select-name and scrollable-region-focusable).
    const fix = new MutationObserver(() => {
      el.current?.querySelectorAll<HTMLElement>('tr[data-param-name] select:not([aria-label])').forEach((s) => {
        s.setAttribute('aria-label', s.closest('tr')!.dataset.paramName!);
      });
      el.current?.querySelectorAll<HTMLElement>('pre.microlight:not([tabindex])').forEach((p) => p.setAttribute('tabindex', '0'));
    });
    fix.observe(el.current!, { subtree: true, childList: true });
    return () => fix.disconnect();
  }, []);
  useEffect(() => {
    let live = true;
    loadSwagger().then(() => {
      if (!live || !el.current || !window.SwaggerUIBundle) return;
      const ui = window.SwaggerUIBundle({
        url: '/openapi.json',
        domNode: el.current,
        deepLinking: false,
        // The schemas also show under each operation; the separate section is left out.
        defaultModelsExpandDepth: -1,
        tryItOutEnabled: false,
        persistAuthorization: false,
        // Each "Try it out" acts in the project chosen in the header.
        requestInterceptor: (req: { headers: Record<string, string> }) => {
          const p = session.project();
          if (p && !req.headers['X-Project-ID']) req.headers['X-Project-ID'] = p;
          return req;
        },
        onComplete: () => {
          const c = session.get();
          if (c) ui.preauthorizeApiKey('bearer', c.token);
          setReady(true);
        },
      });
    }, setError);
    return () => {
      live = false;
    };
  }, []);
  return (
    <main id="main" class="page wide">
      <h1>API reference</h1>
      <p class="muted">
        Every endpoint of <a href="/openapi.json">/openapi.json</a>. "Try it out" calls this server with your token and the project chosen above.
      </p>
      <ErrorBanner error={error} />
      {!ready && !error && <Loading what="the API reference" />}
      <div ref={el} class="swagger" />
    </main>
  );
}
