// The UI's pipeline runs in a real browser, driven by
// tests/tests/ui_runs_browser.rs: headless Chromium against a real
// scheduler on agent-sim with real agents, which already has three runs
// (made through the Kubeflow face): `ui-pipeline` (make -> use, an output
// parameter passed along), `ui-long` (one step sleeping) and `ui-fails`
// (one step that fails until the test makes a file). A user logs in and
// sees the runs listed and filtered by name and status; the pipeline's page
// with its nodes, their phases, times, output parameter (and metric, where
// served), its Drover pod, whose page shows the step's stdout, and job,
// which links back to the run; terminates the long run with its button;
// retries the failed one after the test fixed its input. A viewer sees a
// run without the buttons. Prints `STEP <name> [json]` as it goes
// and waits for the test's `GO` after `fix`; exits 1 with the reason on
// stderr at the first thing that is not so.
//
// Usage: node runs.mjs <base URL> <user> <password> <viewer> <viewer password>
//        <screenshot dir>
// The test reported the metric accuracy 0.9 of make before it starts.

import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import { WAIT, failer, launch, stepper, trackRequests, waitFor } from './chromium.mjs';

const [base, user, password, viewer, viewerPassword, shots] = process.argv.slice(2);

const step = stepper();

const fail = failer('RUNS E2E');
const browser = await launch(fail);
let page = null;
const errors = [];
// What each page asked that is unanswered or failed, for a failure's reader.
const reports = [];
const track = (p) => reports.push(trackRequests(p));
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  page = await context.newPage();
  track(page);
  page.on('pageerror', (e) => errors.push(String(e)));
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.accept();
  });
  await logIn(page, user, password);

  // The list: the three runs, newest first, in the Default experiment.
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  await waitFor(async () => (await listed(page)).length === 3, 'three runs listed');
  const rows = await listed(page);
  if (rows.map((r) => r.name).join(',') !== 'ui-fails,ui-long,ui-pipeline') {
    fail(`runs not newest first: ${JSON.stringify(rows)}`);
  }
  await waitFor(async () => status(await listed(page), 'ui-pipeline') === 'Succeeded', 'ui-pipeline Succeeded in the list');
  await waitFor(async () => status(await listed(page), 'ui-fails') === 'Failed', 'ui-fails Failed in the list');
  const pipelineRow = await runRow(page, 'ui-pipeline').innerText();
  if (!pipelineRow.includes('Default') || !/\d+s/.test(pipelineRow)) fail(`ui-pipeline's row lacks its experiment or duration: ${pipelineRow}`);
  await step('listed', { rows: await listed(page), pipeline: pipelineRow });

  // Filters: by name (a substring), by status, then none.
  await page.getByTestId('runs-name').fill('long');
  await waitFor(async () => names(await listed(page)) === 'ui-long', 'only ui-long for name "long"');
  await page.getByTestId('runs-name').fill('');
  await page.getByTestId('runs-status').selectOption('Failed');
  await waitFor(async () => names(await listed(page)) === 'ui-fails', 'only ui-fails for status Failed');
  await page.getByTestId('runs-status').selectOption('');
  await waitFor(async () => (await listed(page)).length === 3, 'three runs again without a filter');
  await step('filtered');

  // The pipeline's page: its nodes with phases, times, the output
  // parameter passed along, each step's Drover job and pod.
  await runRow(page, 'ui-pipeline').getByRole('link', { name: 'ui-pipeline' }).click();
  await waitFor(async () => (await nodes(page)).filter((n) => n.phase === 'Succeeded').length === 3, 'the dag and its two steps Succeeded');
  const made = page.locator('table[data-testid="nodes"] tr[data-node="make"]');
  const makeText = await made.innerText();
  if (!makeText.includes('make-Output = hello-ui')) fail(`make's row lacks its output: ${makeText}`);
  const use = await page.locator('table[data-testid="nodes"] tr[data-node="use"]').innerText();
  if (!use.includes('make')) fail(`use's row does not say it waits for make: ${use}`);
  if ((await made.locator('td.mono').first().innerText()) === '—') fail(`make has no start time: ${makeText}`);
  const metricRows = page.locator('table[data-testid="metrics"] tbody tr');
  const accuracy = await metricRows.filter({ hasText: 'accuracy' }).innerText({ timeout: WAIT });
  if (!accuracy.includes('90.00%') || !accuracy.includes('make')) fail(`the accuracy metric shows as: ${accuracy}`);
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, 'ui-run.png'), fullPage: true });
  await step('run-page', { nodes: await nodes(page) });

  // make's pod page, by its link: the step's stdout from the sandbox.
  await made.getByTestId('node-pod').click();
  const log = page.locator('[data-testid="log"]');
  await waitFor(async () => (await log.innerText()).includes('made-by-ui-e2e'), "make's stdout on its pod page");
  await page.goBack();
  await page.locator('table[data-testid="nodes"]').waitFor({ timeout: WAIT });
  await made.getByTestId('node-job').click();
  await page.locator('table[data-testid="pods"] tbody tr').first().waitFor({ timeout: WAIT });
  // The job names its run, and leads back to it.
  await page.getByTestId('job-run').getByRole('link').click({ timeout: WAIT });
  await made.waitFor({ timeout: WAIT });
  await step('pod-page');

  // The long run: Running; Terminate (confirmed) ends it, and Retry is
  // offered then.
  await openRun(page, 'ui-long');
  await waitFor(async () => (await nodes(page)).some((n) => n.type === 'Pod' && n.phase === 'Running'), "ui-long's step Running");
  await page.getByTestId('run-terminate').click();
  await waitFor(async () => ['Failed', 'Error'].includes(await runStatus(page)), 'ui-long ended after Terminate');
  const message = await page.getByTestId('run-error').innerText({ timeout: WAIT });
  if (!message.includes('Terminate')) fail(`ui-long's message after Terminate: ${message}`);
  if (!dialogs.some((d) => d.includes('Terminate') && d.includes('ui-long'))) fail(`no confirmation for Terminate: ${dialogs}`);
  await page.getByTestId('run-retry').waitFor({ timeout: WAIT });
  await step('terminated', { status: await runStatus(page), message, nodes: await nodes(page) });

  // The failed run: its input fixed by the test, then Retry.
  await openRun(page, 'ui-fails');
  await waitFor(async () => (await runStatus(page)) === 'Failed', 'ui-fails Failed');
  await step('fix', null, true);
  await page.getByTestId('run-retry').click();
  await waitFor(async () => (await runStatus(page)) === 'Succeeded', 'ui-fails Succeeded after Retry', 60_000);
  await step('retried', { status: await runStatus(page) });

  // A viewer sees a run that an editor may retry, without the buttons.
  const viewing = await (await browser.newContext()).newPage();
  track(viewing);
  viewing.on('pageerror', (e) => errors.push(String(e)));
  await logIn(viewing, viewer, viewerPassword);
  await openRun(viewing, 'ui-long');
  await waitFor(async () => ['Failed', 'Error'].includes(await runStatus(viewing)), 'the viewer sees ui-long ended');
  const buttons = await viewing.locator('[data-testid="run-retry"], [data-testid="run-terminate"]').count();
  if (buttons !== 0) fail(`a viewer is offered ${buttons} run buttons`);

  if (errors.length) fail(`page errors: ${errors.join(' | ')}`);
  await step('done');
} catch (e) {
  let shown = '';
  if (page) {
    const out = fileURLToPath(new URL('./out/', import.meta.url));
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: join(out, 'runs-failure.png'), fullPage: true }).catch(() => {});
    shown = await page.locator('body').innerText().catch(() => '');
  }
  fail(`${e.stack ?? e}\n(screenshot: ui/e2e/out/runs-failure.png)\npage errors: ${errors.join(' | ')}\n${reports.map((report) => report()).join('\n')}\npage text:\n${shown.slice(0, 2000)}`);
} finally {
  await browser.close();
}
process.exit(0);

async function logIn(p, name, secret) {
  await p.goto(`${base}/ui/`);
  await p.getByTestId('login-user').fill(name, { timeout: WAIT });
  await p.getByTestId('login-password').fill(secret);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('who').waitFor({ timeout: WAIT });
}

// A run's page by the links a user follows: Runs, then its name.
async function openRun(p, name) {
  await p.locator('header nav').getByRole('link', { name: 'Runs', exact: true }).click();
  await runRow(p, name).getByRole('link', { name }).click({ timeout: WAIT });
}

function runRow(p, name) {
  return p.locator('table[data-testid="runs"] tbody tr', { has: p.getByRole('link', { name, exact: true }) });
}

async function listed(p) {
  return p.$$eval('table[data-testid="runs"] tbody tr', (rows) =>
    rows.map((r) => ({ id: r.dataset.run, name: r.querySelector('a')?.textContent, status: r.dataset.status })),
  );
}

function names(rows) {
  return rows.map((r) => r.name).join(',');
}

function status(rows, name) {
  return rows.find((r) => r.name === name)?.status;
}

async function nodes(p) {
  return p.$$eval('table[data-testid="nodes"] tbody tr', (rows) =>
    rows.map((r) => ({ node: r.dataset.node, type: r.dataset.type, phase: r.dataset.phase })),
  );
}

async function runStatus(p) {
  return p.locator('h1 [data-state]').getAttribute('data-state', { timeout: WAIT });
}
