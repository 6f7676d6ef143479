import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Link, useRoute } from './router.jsx';
import { follow, subscribe, state } from './store.js';
import { JobsPage } from './pages/jobs.jsx';
import { JobPage } from './pages/job.jsx';
import { PodPage } from './pages/pod.jsx';
import { ClusterPage } from './pages/cluster.jsx';
import './style.css';

function LinkState() {
  const [, setGen] = useState(0);
  useEffect(() => subscribe(setGen), []);
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

function App() {
  const path = useRoute();
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts.length === 0 || (parts[0] === 'jobs' && parts.length === 1)) page = <JobsPage />;
  else if (parts[0] === 'jobs' && parts.length === 2) page = <JobPage id={parts[1]} />;
  else if (parts[0] === 'pods' && parts.length === 2) page = <PodPage name={parts[1]} />;
  else if (parts[0] === 'cluster') page = <ClusterPage />;
  else page = <p class="error">No page {path}.</p>;
  const tab = parts[0] === 'cluster' ? 'cluster' : 'jobs';
  return (
    <>
      <header>
        <span class="brand">Drover</span>
        <nav>
          <Link to="/" class={tab === 'jobs' ? 'active' : ''}>Jobs</Link>
          <Link to="/cluster" class={tab === 'cluster' ? 'active' : ''}>Cluster</Link>
        </nav>
        <LinkState />
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app'));
follow();
