// Client routes under /ui/ (history API): the scheduler answers each of
// them with index.html, so a route can be reloaded or shared.
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/ui';

export function navigate(path) {
  history.pushState(null, '', BASE + path);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function Link({ to, children, ...rest }) {
  return (
    <a
      href={BASE + to}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
        e.preventDefault();
        navigate(to);
      }}
      {...rest}
    >
      {children}
    </a>
  );
}

// The path below /ui.
export function useRoute() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return path.startsWith(BASE) ? path.slice(BASE.length) || '/' : path;
}
