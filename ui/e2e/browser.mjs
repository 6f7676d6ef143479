// The UI's browser test, driven by tests/tests/ui_browser.rs: headless
// Chromium (Debian's, via playwright-core, which downloads no browser)
// against a real scheduler on agent-sim. The Rust test owns the cluster
// and the scheduler; this script owns the browser. They speak by lines:
// the script prints `STEP <name> [json]` on stdout when it wants the test
// to act (or to say how far it got), and the test answers `GO` on stdin.
// Any failure exits 1 with the reason on stderr.
//
// Usage: node browser.mjs <scheduler base URL> <job name> <screenshot dir>

import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import { WAIT, failer, launch, stepper, trackRequests, waitFor } from './chromium.mjs';

const [base, jobName, shots] = process.argv.slice(2);

const step = stepper();

const fail = failer('UI E2E');
const browser = await launch(fail);
let page = null;
let requests = () => '';
const consoleErrors = [];
try {
  page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  requests = trackRequests(page);
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  // Every confirmation (stop, start, restart) is accepted.
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.accept();
  });
  // Counts document loads: the page must never reload.
  let loads = 0;
  page.on('load', () => (loads += 1));

  await page.goto(`${base}/ui/`);
  const placeholder = await page.locator('meta[content="drover-ui-placeholder"]').count();
  if (placeholder) fail('the scheduler serves the placeholder: it was built without npm');
  await live(page, 'the first watch');
  await step('ready', null, true); // the test creates the job now

  // The job list shows the job created after the page opened.
  const row = page.locator('table[data-testid="jobs"] tr', { hasText: jobName });
  await row.waitFor({ timeout: WAIT });
  await step('job-listed', { row: await row.innerText() });

  // Its page, by a link (no load): 2 pods run, the third waits for room.
  await row.getByRole('link', { name: jobName }).click();
  const pods = page.locator('table[data-testid="pods"] tbody tr');
  await waitFor(async () => (await podStates(page)).filter((s) => s.state === 'RUNNING').length === 2, 'two pods RUNNING');
  await waitFor(async () => (await podStates(page)).some((s) => s.state === 'PENDING'), 'a pod PENDING');
  const before = await podStates(page);
  const pending = before.find((p) => p.state === 'PENDING').pod;
  const victim = before.find((p) => p.state === 'RUNNING').pod;
  const other = before.find((p) => p.state === 'RUNNING' && p.pod !== victim).pod;
  const reason = await pods.filter({ hasText: pending }).locator('td.reason').innerText();
  await step('pods', { states: before, pending_reason: reason });

  // Stop a running pod with its button (the confirmation accepted): it
  // ends KILLED, and the pending pod gets its room and goes RUNNING,
  // all seen live.
  await page.locator(`[data-testid="pod-${victim}-stop"]`).click();
  await waitFor(async () => state(await podStates(page), victim) === 'KILLED', `${victim} KILLED after Stop`);
  await waitFor(async () => state(await podStates(page), pending) === 'RUNNING', `${pending} PENDING -> RUNNING live`);
  if (!dialogs.some((d) => d.includes(victim))) fail(`no confirmation asked for stopping ${victim}: ${dialogs}`);
  await step('stopped', { stopped: victim, now_running: pending, dialogs });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, 'ui-job.png'), fullPage: true });

  // A running pod's page: its events and its stdout from the sandbox.
  await page.getByRole('link', { name: other, exact: true }).click();
  const events = page.locator('table[data-testid="events"] tbody tr');
  await waitFor(async () => (await events.filter({ hasText: 'RUNNING' }).count()) > 0, `${other}'s RUNNING event`);
  const log = page.locator('[data-testid="log"]');
  await waitFor(async () => (await log.innerText()).includes('drover-ui-e2e says hello'), `${other}'s stdout text`);
  await step('pod-page', { events: await events.count(), log: (await log.innerText()).slice(0, 200) });
  await page.screenshot({ path: join(shots, 'ui-pod.png'), fullPage: true });

  // The cluster: the agent with its used and free resources (two pods of
  // 1.6 cpus run on its 4).
  await page.getByRole('link', { name: 'Cluster', exact: true }).click();
  const agent = page.locator('table[data-testid="agents"] tbody tr').first();
  await waitFor(async () => {
    const m = /([\d.]+) \/ 4 \(([\d.]+)\)/.exec(await agent.innerText());
    return m && Number(m[1]) >= 3.2 && Math.abs(Number(m[1]) + Number(m[2]) - 4) < 0.01;
  }, 'the agent with 3.2 (and executor overhead) of 4 cpus used, the rest free');
  await step('cluster', { agent: await agent.innerText() });

  // Back to the job; the scheduler restarts under it.
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await page.locator('table[data-testid="jobs"]').getByRole('link', { name: jobName }).click();
  await pods.first().waitFor({ timeout: WAIT });
  const drops = Number(await link(page, 'data-drops'));
  await step('restart', null, true); // the test restarts the scheduler now
  if (process.env.UI_E2E_ALLOW_POLLING !== '1') {
    await waitFor(async () => Number(await link(page, 'data-drops')) > drops, 'the stream seen dropped by the restart');
  }
  await live(page, 'the watch after the restart');
  // The test stops one running pod and starts the stopped one through the
  // API: both changes arrive live on the new scheduler's stream.
  await step('recovered', { stop: other, start: victim }, true);
  await waitFor(async () => state(await podStates(page), other) === 'KILLED', `${other} KILLED after the restart, live`);
  await waitFor(async () => state(await podStates(page), victim) === 'RUNNING', `${victim} RUNNING again after the restart, live`);

  if (loads !== 1) fail(`the page loaded ${loads} times: it must never reload`);
  const bad = consoleErrors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|net::ERR/.test(e));
  if (bad.length) fail(`errors in the page: ${bad.join(' | ')}`);
  await step('done', { loads, drops: await link(page, 'data-drops'), resyncs: await link(page, 'data-resyncs'), pods: await podStates(page) });
} catch (e) {
  // What the page showed, for the failure's reader.
  let shown = '';
  if (page) {
    const out = fileURLToPath(new URL('./out/', import.meta.url));
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: join(out, 'failure.png'), fullPage: true }).catch(() => {});
    shown = await page.locator('body').innerText().catch(() => '');
  }
  fail(`${e.stack ?? e}\n(screenshot: ui/e2e/out/failure.png)\npage errors: ${consoleErrors.join(' | ')}\n${requests()}\npage text:\n${shown.slice(0, 2000)}`);
} finally {
  await browser.close();
}
process.exit(0);

// The watch stream is up. UI_E2E_ALLOW_POLLING=1 takes a scheduler without
// the stream (polled), for working on the UI before it.
async function live(page, what) {
  const ok = process.env.UI_E2E_ALLOW_POLLING === '1' ? ['live', 'polling'] : ['live'];
  await waitFor(async () => ok.includes(await link(page, 'data-link')), `${what} live`);
}

function link(page, attr) {
  return page.locator('[data-testid="link"]').getAttribute(attr);
}

async function podStates(page) {
  return page.$$eval('table[data-testid="pods"] tbody tr', (rows) =>
    rows.map((r) => ({ pod: r.dataset.pod, state: r.dataset.state })),
  );
}

function state(states, pod) {
  return states.find((s) => s.pod === pod)?.state;
}
