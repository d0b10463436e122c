// The Cohort console: a hash-routed single page (#/, #/jobs, #/jobs/ID, #/executors,
// #/schedules, #/sign-in) over cohort-console's API, acting with the signed-in token.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, session, UNAUTHORIZED_EVENT, type Config, type Whoami } from './api';
import { SessionContext } from './ui';
import { SignIn } from './pages/SignIn';
import { Overview } from './pages/Overview';
import { Jobs } from './pages/Jobs';
import { JobPage } from './pages/JobPage';
import { Executors } from './pages/Executors';
import { Schedules } from './pages/Schedules';
import './style.css';

interface Location { path: string; params: URLSearchParams }

function readLocation(): Location {
  const hash = window.location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?', 2);
  return { path: path || '/', params: new URLSearchParams(query ?? '') };
}

const NAV: { href: string; label: string; match: (p: string) => boolean }[] = [
  { href: '#/', label: 'Overview', match: (p) => p === '/' },
  { href: '#/jobs', label: 'Jobs', match: (p) => p.startsWith('/jobs') },
  { href: '#/executors', label: 'Executors', match: (p) => p === '/executors' },
  { href: '#/schedules', label: 'Schedules', match: (p) => p === '/schedules' },
];

function Page({ location }: { location: Location }) {
  const { path, params } = location;
  if (path === '/') return <Overview />;
  if (path === '/jobs') return <Jobs params={params} />;
  const job = /^\/jobs\/([0-9a-f]{24})$/.exec(path);
  if (job) return <JobPage id={job[1]} />;
  if (path === '/executors') return <Executors />;
  if (path === '/schedules') return <Schedules />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <a href="#/">Back to the overview</a>.
      </p>
    </section>
  );
}

function App() {
  const [location, setLocation] = useState(readLocation);
  const [config, setConfig] = useState<Config | null>(null);
  const [whoami, setWhoami] = useState<Whoami | null>(null);
  // Why the sign-in form is shown ('' when it is not forced).
  const [needSignIn, setNeedSignIn] = useState('');
  const [configError, setConfigError] = useState('');
  useEffect(() => {
    const onHash = () => {
      setLocation(readLocation());
      // Move focus to the new page's heading, as a page load would for a screen reader.
      window.setTimeout(() => document.querySelector<HTMLElement>('main h1')?.focus(), 0);
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const loadSession = async () => {
    try {
      const [c, w] = await Promise.all([api.config(), api.whoami()]);
      setConfig(c);
      setWhoami(w);
      setNeedSignIn('');
      setConfigError('');
    } catch (e) {
      const err = e as Error & { status?: number };
      if (err.status === 401) {
        setNeedSignIn(session.token() ? `The broker refused this token: ${err.message}` : 'The broker needs a token.');
      } else {
        setConfigError(err.message);
      }
    }
  };
  useEffect(() => {
    void loadSession();
    const onUnauthorized = () =>
      setNeedSignIn(session.token() ? 'The broker no longer accepts this token.' : 'The broker needs a token.');
    window.addEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
  }, []);
  const signOut = () => {
    session.signOut();
    setWhoami(null);
    window.location.hash = '#/sign-in';
    void loadSession();
  };
  const showSignIn = needSignIn !== '' || location.path === '/sign-in';
  const ready = config && whoami;
  return (
    <SessionContext.Provider value={ready ? { config, whoami } : null}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Cohort</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.href}>
                <a href={n.href} aria-current={n.match(location.path) ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {config?.readOnly && (
          <span class="badge readonly" role="status">
            Read-only
          </span>
        )}
        <span class="who" data-testid="who">
          {whoami?.signedIn ? (
            <>
              Signed in{whoami.scopes.length ? ` (${whoami.scopes.join(', ')})` : ' (no scopes)'}{' '}
              <button type="button" onClick={signOut}>Sign out</button>
            </>
          ) : (
            <a href="#/sign-in">Sign in</a>
          )}
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {configError && (
          <p role="alert" class="error">
            Cannot reach the console's API: {configError}
          </p>
        )}
        {showSignIn ? (
          <SignIn reason={needSignIn} tls={config?.tls ?? window.location.protocol === 'https:'}
            onSignedIn={async () => {
              await loadSession();
              window.location.hash = '#/';
            }} />
        ) : (
          ready && <Page location={location} />
        )}
      </main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
