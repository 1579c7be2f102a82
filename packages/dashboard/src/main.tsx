// The dashboard shell: top bar with the main navigation, the live-feed state, the API key form
// (shown on any 401), and the routed page.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getApiKey, isAuthNeeded, onAuthChange, setApiKey } from './api.ts';
import { EndpointPage, EndpointsPage } from './endpoints-page.tsx';
import { useFeedState } from './hooks.ts';
import { JobPage } from './job-page.tsx';
import { JobsPage } from './jobs-page.tsx';
import { ModelsPage } from './models-page.tsx';
import { RunPage } from './run-page.tsx';
import { useRoute } from './router.ts';
import type { Route } from './router.ts';
import './styles.css';

function KeyForm({ retry }: { retry: boolean }) {
  const [key, setKey] = useState('');
  return (
    <section class="card key-card">
      <h1>API key required</h1>
      <p>
        This gateway requires an API key (one of <code>gateway.apiKeys</code> in its config, or <code>KILN_API_KEY</code>).
        {retry ? ' The key given was refused.' : ''} It is kept in this tab's session storage only.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim() !== '') setApiKey(key.trim());
        }}
      >
        <div class="field">
          <label for="api-key">API key</label>
          <input id="api-key" type="password" autocomplete="current-password" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        </div>
        <button type="submit" class="primary">
          Continue
        </button>
      </form>
    </section>
  );
}

function Page({ route }: { route: Route }) {
  const [first, second] = route.parts;
  switch (first) {
    case undefined:
    case 'endpoints':
      return second ? <EndpointPage name={second} /> : <EndpointsPage />;
    case 'jobs':
      // Keyed by job: another job (back/forward between two jobs) starts from nothing, not from the last job's record and cursors.
      return second ? <JobPage key={`${second}|${route.query.get('endpoint') ?? ''}`} id={second} endpointHint={route.query.get('endpoint')} /> : <JobsPage query={route.query} />;
    case 'run':
      return <RunPage query={route.query} />;
    case 'models':
      return <ModelsPage />;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            No page at <code>#/{route.parts.join('/')}</code>. <a href="#/endpoints">Go to the endpoints</a>.
          </p>
        </>
      );
  }
}

const NAV = [
  { label: 'Endpoints', href: '#/endpoints', section: 'endpoints' },
  { label: 'Jobs', href: '#/jobs', section: 'jobs' },
  { label: 'Run', href: '#/run', section: 'run' },
  { label: 'Models', href: '#/models', section: 'models' },
];

const FEED_TEXT = { connecting: 'Connecting…', live: 'Live', offline: 'Reconnecting…', unauthorized: 'Needs a key' } as const;

function App() {
  const route = useRoute();
  const feed = useFeedState();
  const [auth, setAuth] = useState({ needed: isAuthNeeded(), version: 0 });
  useEffect(
    () =>
      onAuthChange(() =>
        setAuth((a) => {
          const needed = isAuthNeeded();
          // A key entered: remount the page so it loads again with it.
          return { needed, version: needed ? a.version : a.version + 1 };
        }),
      ),
    [],
  );
  const section = route.parts[0] ?? 'endpoints';
  useEffect(() => {
    const title = NAV.find((n) => n.section === section)?.label ?? 'kiln';
    document.title = `${title} · kiln`;
  }, [section]);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById('main')?.focus();
      }}>
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="#/endpoints">
          <span class="logo" aria-hidden="true">
            ▲
          </span>{' '}
          kiln
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.section}>
                <a href={n.href} aria-current={section === n.section ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class={`feed feed-${feed}`} role="status" title="Live updates from the gateway's event feed">
          <span class="dot" aria-hidden="true" />
          {FEED_TEXT[feed]}
        </span>
        {getApiKey() && (
          <button type="button" class="small ghost" onClick={() => setApiKey('')}>
            Forget key
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1} key={auth.version}>
        {auth.needed ? <KeyForm retry={getApiKey() !== null} /> : <Page route={route} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
