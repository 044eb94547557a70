// /ui/callback: where the identity provider sends the browser back with a code.
import { useEffect, useState } from 'preact/hooks';
import { completeSignIn } from '../oidc';
import { navigate } from '../router';
import { ErrorBanner, Link, Loading } from '../ui/components';

export function Callback() {
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    completeSignIn(location.search).then((to) => navigate(to, true), setError);
  }, []);
  return (
    <main id="main" class="signin">
      <h1>Signing in</h1>
      {error ? (
        <>
          <ErrorBanner error={error} />
          <p>
            <Link href="/ui/">Back to sign-in</Link>
          </p>
        </>
      ) : (
        <Loading what="your session" />
      )}
    </main>
  );
}
