// axe-core (npm) on every page of the app, signed out, as a member and as a data steward,
// with the workbench showing a table, a summary, a model, a chart and a diagnostic: no serious or
// critical finding. axe is injected by the test, so the page's policy is bypassed for it only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { launch, BASE_URL } from './browser.mjs';
import { addUser, enrolWithPassword, signIn } from './accounts.mjs';

const PASSWORD = 'correct horse battery staple 42';
const SCRIPT = `require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/INNTEKT_WLONN 2021-12-31 as wage
tabulate sex
summarize wage
regress wage i.sex
histogram wage, bin(10)`;

let browser;
let axeSource;
before(async () => {
  browser = await launch();
  axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
});
after(async () => { await browser?.close(); });

function skjold(...args) {
  return execFileSync(process.env.SKJOLD_BIN, args, { env: process.env, encoding: 'utf8' });
}

/// The serious and critical findings on the page as it is now, one line each.
async function findings(page) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/// Opens `path`, waits for `ready` (a selector), and answers its findings under the path.
async function check(page, path, ready) {
  await page.goto(BASE_URL + path);
  await page.locator(ready).first().waitFor({ timeout: 15_000 });
  return (await findings(page)).map((f) => `${path}: ${f}`);
}

/// The workbench after a run that shows each kind of output.
async function checkWorkbench(page) {
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill(SCRIPT);
  await page.locator('#run').click();
  await page.locator('figure.chart').waitFor({ timeout: 30_000 });
  // A typo added after the run: the diagnostics list shows beside the outputs.
  await editor.fill(SCRIPT + '\ntabluate sex');
  await page.locator('li.diagnostic').waitFor({ timeout: 10_000 });
  return (await findings(page)).map((f) => `/workbench (after a run): ${f}`);
}

test('no page has a serious or critical accessibility finding', async () => {
  const problems = [];
  const guest = await browser.newContext({ bypassCSP: true });
  const page = await guest.newPage();
  problems.push(...await check(page, '/', 'main'));
  problems.push(...await check(page, '/variables/INNTEKT_WLONN', 'h1'));
  problems.push(...await check(page, '/rules/demo', 'h1'));
  problems.push(...await check(page, '/login', '#user'));
  problems.push(...await check(page, '/no-such-page', 'main'));
  problems.push(...await checkWorkbench(page));
  await guest.close();

  for (const [name, role, pages] of [
    ['e2e-axe-member', 'member', [['/account', 'h1'], ['/jobs', 'h1'], ['/terms', '.terms']]],
    ['e2e-axe-steward', 'steward', [['/admin', 'h1']]],
  ]) {
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    const link = addUser(name, 'Ada Axe', process.env, role);
    if (role === 'member') {
      // A member runs scripts in a project granted the datastore.
      skjold('project', 'add', 'e2e-axe-project');
      skjold('project', 'grant', 'e2e-axe-project', 'demo');
      skjold('project', 'member', 'e2e-axe-project', name);
    }
    await page.goto(link);
    await page.locator('#choose-password').waitFor({ timeout: 15_000 });
    problems.push(...(await findings(page)).map((f) => `/enrol (${role}): ${f}`));
    const secret = await enrolWithPassword(page, link, PASSWORD);
    await signIn(page, BASE_URL, name, PASSWORD, secret);
    for (const [path, ready] of pages) problems.push(...await check(page, path, ready));
    if (role === 'member') problems.push(...await checkWorkbench(page));
    await context.close();
  }
  assert.deepEqual(problems, []);
});
