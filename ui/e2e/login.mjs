// The UI's login in a real browser, driven by tests/tests/ui_browser.rs
// (`a_viewer_logs_in_and_is_refused_a_stop`): headless Chromium against a
// scheduler with a credentials file. The login page comes first; a wrong
// password is refused; the viewer's login shows the jobs and who is
// logged in; the viewer's Stop is refused with the scheduler's reason;
// logging out brings the login page back. Exits 1 with the reason on
// stderr at the first thing that is not so.
//
// Usage: node login.mjs <scheduler base URL> <job name> <user> <password>

import { WAIT, failer, launch, trackRequests } from './chromium.mjs';

const [base, jobName, user, password] = process.argv.slice(2);
const fail = failer('LOGIN E2E');
const browser = await launch(fail);
let page;
let requests = () => '';
try {
  const context = await browser.newContext();
  page = await context.newPage();
  requests = trackRequests(page);
  page.on('dialog', (d) => d.accept());
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto(`${base}/ui/`);
  await page.getByTestId('login-form').waitFor({ timeout: WAIT });

  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill('not-the-password');
  await page.getByTestId('login-submit').click();
  const refused = await page.getByTestId('login-error').textContent({ timeout: WAIT });
  if (!refused.includes('UNAUTHENTICATED')) fail(`a wrong password said: ${refused}`);

  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  const who = await page.getByTestId('who').textContent({ timeout: WAIT });
  if (!who.includes(`${user} (viewer)`)) fail(`logged in as: ${who}`);
  // The session is an HttpOnly cookie: the page's scripts cannot read it.
  const visible = await page.evaluate(() => document.cookie);
  if (visible.includes('drover_session')) fail(`the session cookie is readable: ${visible}`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'drover_session');
  if (!session || !session.httpOnly || session.sameSite !== 'Strict') {
    fail(`session cookie: ${JSON.stringify(session)}`);
  }

  await page.getByRole('link', { name: jobName }).first().click({ timeout: WAIT });
  await page.getByTestId('job-stop').click({ timeout: WAIT });
  const error = page.locator('.action .error').first();
  await error.waitFor({ timeout: WAIT });
  const reason = await error.textContent();
  if (!reason.includes('PERMISSION_DENIED') || !reason.includes(`${user} (viewer) may not stop`)) {
    fail(`the viewer's stop said: ${reason}`);
  }

  await page.getByTestId('logout').click();
  await page.getByTestId('login-form').waitFor({ timeout: WAIT });
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);
  process.stdout.write('LOGIN E2E OK\n');
} catch (e) {
  const text = await page?.innerText('body').catch(() => '?');
  fail(`${e.stack ?? String(e)}\n${requests()}\npage text:\n${text}`);
} finally {
  await browser.close();
}
