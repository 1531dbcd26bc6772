// A researcher submits a batch job from the workbench, signs out, signs in again later and
// opens the finished job's released outputs on the Jobs page; makes and revokes an access token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { launch, openPage, BASE_URL } from './browser.mjs';
import { addUser, enrolWithPassword, signIn, totp } from './accounts.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const PASSWORD = 'Batch jobs run 4 hours';
const SCRIPT = `require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/INNTEKT_WLONN 2021-12-31 as wage
tabulate sex
summarize wage`;

function skjold(...args) {
  return execFileSync(process.env.SKJOLD_BIN, args, { env: process.env, encoding: 'utf8' });
}

const step = () => Math.floor(Date.now() / 1000 / 30);

test('a batch job outlives sign-out and its outputs open on the Jobs page', async () => {
  const problems = [];
  const link = addUser('e2e-batch', 'Bente Batch');
  skjold('project', 'add', 'e2e-batch-project');
  skjold('project', 'grant', 'e2e-batch-project', 'demo');
  skjold('project', 'member', 'e2e-batch-project', 'e2e-batch');
  const page = await openPage(browser, problems);
  const secret = await enrolWithPassword(page, link, PASSWORD);
  await signIn(page, BASE_URL, 'e2e-batch', PASSWORD, secret);
  // signIn sent the code of the step after the one it read, which may have been this step's
  // (it flaked when it crossed a 30 s boundary and the second code below was the same one).
  const signedInAt = step();

  await page.getByLabel('Script').fill(SCRIPT);
  await page.locator('#submit-batch').click();
  const message = page.locator('#batch-message');
  await message.waitFor({ timeout: 10_000 });
  const id = (await message.innerText()).match(/^Batch job (\d+) is queued/)[1];

  await page.locator('#sign-out').click();
  await page.waitForURL(/\/login\?ended=signout$/, { timeout: 10_000 });

  // A code is good once: sign in again with the code of a later step than the last one used.
  while (step() <= signedInAt) await new Promise((r) => setTimeout(r, 500));
  await page.locator('#user').fill('e2e-batch');
  await page.locator('#password').fill(PASSWORD);
  await page.locator('#sign-in').click();
  await page.locator('#code').fill(totp(secret, 1));
  await page.locator('#send-code').click();
  await page.waitForURL(/\/workbench$/, { timeout: 15_000 });

  await page.locator('nav a', { hasText: 'Jobs' }).click();
  const row = page.locator(`#job-${id}`);
  await row.locator('td.state', { hasText: /^done$/ }).waitFor({ timeout: 60_000 });
  assert.match(await row.innerText(), /batch\tdone/);
  await row.locator('button.open-job').click();
  const outputs = page.locator('#job-outputs');
  await outputs.locator('h2', { hasText: `Job ${id} (done)` }).waitFor({ timeout: 10_000 });
  assert.equal(await outputs.locator('pre.text').innerText(), SCRIPT);
  const rows = await outputs.locator('table.result', { hasText: 'sex (count)' }).locator('tbody tr').allInnerTexts();
  assert.equal(rows.length, 3, rows.join(' | '));
  assert.match(rows[2], /^Total\t\d+$/);
  await outputs.locator('table.result th', { hasText: 'wage' }).first().waitFor({ timeout: 10_000 });

  // Run again: a new batch job of the same script, listed above the first.
  await row.locator('button', { hasText: 'Run again' }).click();
  const again = page.locator(`#job-${Number(id) + 1}`);
  await again.waitFor({ timeout: 10_000 });
  // The page reads the list once; the new row goes on to done by its progress stream alone.
  await again.locator('td.state', { hasText: /^done$/ }).waitFor({ timeout: 60_000 });
  const bar = again.locator('progress');
  assert.equal(await bar.getAttribute('value'), '6');
  assert.equal(await bar.getAttribute('max'), '6');
  assert.equal((await again.locator('.hint').innerText()).trim(), '6 of 6: summarize');

  // The workbench's run history lists the same records; Open puts a job's script back into
  // the editor with its released outputs.
  await page.locator('nav a', { hasText: 'Workbench' }).click();
  await page.locator('#run-history summary').click();
  const listedJob = page.locator(`#history-job-${id}`);
  await listedJob.waitFor({ timeout: 10_000 });
  assert.match(await listedJob.innerText(), new RegExp(`^batch job ${id} · done · 6 commands · `));
  await listedJob.locator('button.open-run').click();
  await page.locator('table.result', { hasText: 'sex (count)' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByLabel('Script').inputValue(), SCRIPT);

  // A token for the batch client: shown once, listed, revoked.
  await page.goto(BASE_URL + '/account');
  await page.locator('#token-name').fill('laptop');
  await page.locator('#create-token').click();
  const token = (await page.locator('#new-token').innerText({ timeout: 10_000 })).trim();
  assert.match(token, /^skj_[0-9a-f]{64}$/);
  const listed = page.locator('#tokens li', { hasText: 'laptop' });
  await listed.waitFor({ timeout: 10_000 });
  assert.match(await listed.innerText(), /never used/);
  const list = execFileSync(process.env.SKJOLD_BIN, ['batch', 'list', '--server', BASE_URL], {
    env: { ...process.env, SKJOLD_TOKEN: token },
    encoding: 'utf8',
  });
  assert.match(list, new RegExp(`job ${id}\\tbatch\\tdone`));
  await listed.locator('button', { hasText: 'Revoke' }).click();
  await listed.waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(problems.filter((p) => !p.includes('401') && !p.includes('status of 4')), []);
});
