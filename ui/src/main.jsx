import { render } from 'preact';
import { Link, useRoute } from './router.jsx';
import { follow, state } from './store.js';
import { useLive, useNotices } from './pages/common.jsx';
import { JobsPage } from './pages/jobs.jsx';
import { JobPage } from './pages/job.jsx';
import { PodPage } from './pages/pod.jsx';
import { ClusterPage } from './pages/cluster.jsx';
import { RunsPage } from './pages/runs.jsx';
import { RunPage } from './pages/run.jsx';
import { LoginPage } from './pages/login.jsx';
import { auth, checkLogin, logout, subscribeAuth } from './auth.js';
import './style.css';

function LinkState() {
  useLive();
  const label =
    state.link === 'live'
      ? `live · revision ${state.revision}`
      : state.link === 'polling'
        ? 'polling (no watch stream)'
        : state.link;
  return (
    <span class={`link link-${state.link}`} data-testid="link" data-link={state.link} data-drops={state.drops} data-resyncs={state.resyncs} title={state.linkError ?? ''}>
      ● {label}
    </span>
  );
}

// Who the UI acts as, and the way out (none for anonymous access).
function Who() {
  const who = auth.who;
  if (!who) return null;
  return (
    <span class="who" data-testid="who">
      {who.name} ({who.role})
      {who.via !== 'anonymous' && (
        <button class="logout" onClick={() => logout()} data-testid="logout">
          Log out
        </button>
      )}
    </span>
  );
}

function App() {
  useNotices(subscribeAuth);
  if (auth.status === 'checking') return <main class="muted">Loading…</main>;
  if (auth.status === 'error') return <main class="error">{auth.error}</main>;
  if (auth.status === 'out') return <LoginPage />;
  return <Pages />;
}

function Pages() {
  const path = useRoute();
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts.length === 0 || (parts[0] === 'jobs' && parts.length === 1)) page = <JobsPage />;
  else if (parts[0] === 'jobs' && parts.length === 2) page = <JobPage id={parts[1]} />;
  else if (parts[0] === 'pods' && parts.length === 2) page = <PodPage name={parts[1]} />;
  else if (parts[0] === 'runs' && parts.length === 1) page = <RunsPage />;
  else if (parts[0] === 'runs' && parts.length === 2) page = <RunPage id={parts[1]} />;
  else if (parts[0] === 'cluster') page = <ClusterPage />;
  else page = <p class="error">No page {path}.</p>;
  const tab = parts[0] === 'cluster' || parts[0] === 'runs' ? parts[0] : 'jobs';
  return (
    <>
      <header>
        <span class="brand">Drover</span>
        <nav>
          <Link to="/" class={tab === 'jobs' ? 'active' : ''}>Jobs</Link>
          <Link to="/runs" class={tab === 'runs' ? 'active' : ''}>Runs</Link>
          <Link to="/cluster" class={tab === 'cluster' ? 'active' : ''}>Cluster</Link>
        </nav>
        <LinkState />
        <Who />
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app'));
checkLogin();
follow();
