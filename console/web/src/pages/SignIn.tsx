// Sign in with a bearer token (cohortctl token create prints one). The token is kept in
// this tab's sessionStorage only and sent with each API call; the console forwards it
// to the broker and scheduler, which decide what it may do.
import { useState } from 'preact/hooks';
import { api, ApiError, session } from '../api';
import { ErrorNote, Heading } from '../ui';

export function SignIn({ reason, tls, onSignedIn }: { reason: string; tls: boolean; onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    session.signIn(token.trim());
    try {
      await api.whoami();
      setToken('');
      onSignedIn();
    } catch (err) {
      session.signOut();
      setError(err instanceof ApiError && err.status === 401 ? `Not signed in: ${err.message}` : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <Heading>Sign in</Heading>
      {reason && <p role="status">{reason}</p>}
      <form class="signin" onSubmit={submit} aria-describedby="signin-note">
        <label for="signin-token">Access token</label>
        <input id="signin-token" type="password" autocomplete="off" spellcheck={false} required maxLength={512}
          value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <button type="submit" disabled={busy || token.trim() === ''}>Sign in</button>
      </form>
      <ErrorNote error={error} />
      <p id="signin-note" class="note">
        A token from <code>cohortctl token create</code>. It stays in this browser tab only (gone when the tab closes)
        and acts with its own scopes: actions it may not take are not shown.
        {!tls && window.location.hostname !== '127.0.0.1' && window.location.hostname !== 'localhost' && (
          <strong> This page is not served over HTTPS: start cohort-console with --tls-cert and --tls-key.</strong>
        )}
      </p>
    </section>
  );
}
