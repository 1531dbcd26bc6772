// A visitor searches the public catalog and reads a variable's page, by mouse and by keyboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, BASE_URL } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('typing inntekt shows INNTEKT_WLONN, and its page shows the description', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/');
  const search = page.getByLabel('Search variables');
  await search.fill('inntekt');
  const hit = page.locator('a.result', { hasText: 'INNTEKT_WLONN' });
  await hit.waitFor({ timeout: 10_000 });
  assert.match(await page.url(), /\?q=inntekt$/);
  await hit.click();
  await page.locator('h1', { hasText: 'INNTEKT_WLONN' }).waitFor({ timeout: 10_000 });
  const description = await page.locator('.description').innerText();
  assert.match(description, /Total wage income in the calendar year/);
  assert.match(description, /Sum lønnsinntekter i kalenderåret/);
  const importLines = await page.locator('#import-lines').innerText();
  assert.match(importLines, /^require demo:1 as db\nimport db\/INNTEKT_WLONN 2024-12-31$/);
  assert.deepEqual(problems, []);
});

test('a misspelt search still finds the variable, and the keyboard alone reaches it', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/');
  // The search box takes focus when the app has started; type only then, as a person would.
  await page.waitForFunction(() => document.activeElement?.id === 'search', null, { timeout: 10_000 });
  await page.keyboard.type('bostd');
  await page.locator('a.result', { hasText: 'BOSATTEFDT_BOSTED' }).waitFor({ timeout: 10_000 });
  await page.keyboard.press('ArrowDown');
  const focused = await page.evaluate(() => document.activeElement?.textContent ?? '');
  assert.match(focused, /BOSATTEFDT_BOSTED/);
  await page.keyboard.press('Enter');
  await page.locator('h1', { hasText: 'BOSATTEFDT_BOSTED' }).waitFor({ timeout: 10_000 });
  // Municipality codes carry their validity: Bergen's code changed in the 2020 reform.
  const codes = await page.locator('table.codes').innerText();
  assert.match(codes, /1201\tBergen\tBergen\t1838-01-01 – 2019-12-31/);
  assert.match(codes, /4601\tBergen\tBergen\tfrom 2020-01-01/);
  assert.deepEqual(problems, []);
});

test('filters narrow the results and an unknown variable suggests the right one', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/');
  await page.locator('p.status', { hasText: 'variables' }).waitFor({ timeout: 10_000 });
  await page.getByLabel('Temporality').selectOption('EVENT');
  await page.waitForURL(/\?temporality=EVENT$/, { timeout: 10_000 });
  await page.locator('a.result .facts', { hasText: ' · EVENT · ' }).first().waitFor({ timeout: 10_000 });
  const facts = await page.locator('a.result .facts').allInnerTexts();
  assert.ok(facts.length >= 5, `only ${facts.length} EVENT variables listed`);
  for (const f of facts) assert.match(f, / · EVENT · /);
  // The choice survives a reload, because it lives in the URL.
  await page.reload();
  await page.locator('a.result').first().waitFor({ timeout: 10_000 });
  assert.equal(await page.getByLabel('Temporality').inputValue(), 'EVENT');

  await page.goto(BASE_URL + '/variables/INNTEKT_WLON');
  await page.locator('[role=alert]', { hasText: "unknown variable 'INNTEKT_WLON'" }).waitFor({ timeout: 10_000 });
  await page.locator('a', { hasText: 'INNTEKT_WLONN' }).click();
  await page.locator('h1', { hasText: 'INNTEKT_WLONN' }).waitFor({ timeout: 10_000 });
  // The 404 for the misspelt name is expected; nothing else may fail.
  assert.deepEqual(problems.filter((p) => !p.includes('404')), []);
});
