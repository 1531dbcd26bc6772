// A student writes a script with a typo, sees the diagnostic before running, fixes it, runs it,
// and reads a table and a histogram.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, BASE_URL } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const SCRIPT = `require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/INNTEKT_WLONN 2021-12-31 as wage
tabluate sex
histogram wage, bin(10)`;

test('a typo is flagged as you type; the fixed script gives a table and a histogram', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill(SCRIPT);
  // The shared parser runs in the page: the diagnostic appears with no request to the server.
  const diagnostic = page.locator('li.diagnostic', { hasText: 'did you mean tabulate' });
  await diagnostic.waitFor({ timeout: 10_000 });
  assert.match(await diagnostic.innerText(), /^line 5, column 1: unknown command 'tabluate'/);
  assert.equal(await page.locator('.gutter .bad').innerText(), '5\n');

  await editor.fill(SCRIPT.replace('tabluate', 'tabulate'));
  await page.locator('li.diagnostic').first().waitFor({ state: 'detached', timeout: 10_000 });
  await page.locator('#run').click();

  const table = page.locator('table.result', { hasText: 'sex (count)' });
  await table.waitFor({ timeout: 30_000 });
  const rows = await table.locator('tbody tr').allInnerTexts();
  assert.equal(rows.length, 3, rows.join(' | '));
  assert.match(rows[0], /^1 Mann\t\d+$/);
  assert.match(rows[2], /^Total\t\d+$/);
  const total = Number(rows[2].split('\t')[1]);
  assert.ok(total > 15_000 && total < 25_000, `total ${total}`);

  const bars = page.locator('figure.chart svg rect.bar');
  await bars.first().waitFor({ timeout: 10_000 });
  const count = await bars.count();
  assert.ok(count >= 5 && count <= 10, `${count} bars`);
  assert.match(await page.locator('figure.chart figcaption').innerText(), /Histogram of wage/);
  // No chart ever shows a point or an outlier marker.
  assert.equal(await page.locator('figure.chart circle').count(), 0);
  // The progress streamed while the run went on; its last step stays shown.
  const progress = page.locator('#run-progress');
  await progress.waitFor({ timeout: 10_000 });
  assert.equal((await progress.innerText()).trim(), '6 of 6 commands ran (the last: histogram, line 6)');
  assert.equal(await progress.locator('progress').getAttribute('value'), '6');

  // Downloads are built in the page from the released outputs it shows: the table as CSV with
  // the cells shown, and the histogram as SVG (its bars, styled) and PNG.
  const tableOutput = page.locator('article.output', { has: page.locator('table.result', { hasText: 'sex (count)' }) });
  const [csv] = await Promise.all([page.waitForEvent('download'), tableOutput.locator('button.download-csv').click()]);
  assert.equal(csv.suggestedFilename(), 'line5-tabulate.csv');
  const csvLines = (await readDownload(csv)).trim().split('\r\n');
  assert.equal(csvLines[0], 'sex,count');
  assert.deepEqual(csvLines.slice(1), rows.map((r) => r.replace('\t', ',')));
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
  await tableOutput.locator('button.copy-table').click();
  await tableOutput.locator('button.copy-table', { hasText: 'Copied' }).waitFor({ timeout: 5_000 });
  const pasted = await page.evaluate(() => navigator.clipboard.readText());
  assert.deepEqual(pasted.trim().split('\n'), ['sex\tcount', ...rows]);

  const chartOutput = page.locator('article.output', { has: page.locator('figure.chart') });
  const [svg] = await Promise.all([page.waitForEvent('download'), chartOutput.locator('button.download-svg').click()]);
  assert.equal(svg.suggestedFilename(), 'line6-histogram.svg');
  const svgText = await readDownload(svg);
  assert.match(svgText, /^<\?xml[^>]*>\n<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svgText.match(/<rect[^>]*class="bar/g) ?? []).length, count);
  assert.match(svgText, /class="bar[^"]*"[^>]*style="fill:rgb\(/, 'the bars keep their colour without the style sheet');
  const [png] = await Promise.all([page.waitForEvent('download'), chartOutput.locator('button.download-png').click()]);
  assert.equal(png.suggestedFilename(), 'line6-histogram.png');
  const pngBytes = Buffer.from(await readDownload(png, null));
  assert.deepEqual([...pngBytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // The IHDR chunk: twice the SVG's width.
  const width = pngBytes.readUInt32BE(16);
  const viewBoxWidth = Number(svgText.match(/viewBox="[^"]*?\s[^"\s]+\s([^"\s]+)\s/)[1]);
  assert.equal(width, Math.round(viewBoxWidth * 2));
  assert.deepEqual(problems, []);
});

/// A download's content, as text (or bytes with `encoding` null).
async function readDownload(download, encoding = 'utf8') {
  const { readFile } = await import('node:fs/promises');
  return readFile(await download.path(), encoding ?? undefined);
}

test('Ctrl+Enter runs only the line the caret is on, Ctrl+Shift+Enter the whole script', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill('help\nhelp tabulate');
  await editor.press('Control+End');
  await editor.press('Control+Enter');
  const output = page.locator('article.output').first();
  await output.waitFor({ timeout: 10_000 });
  assert.match(await output.locator('.output-head').innerText(), /^line 2 · help$/);
  assert.match(await output.innerText(), /tabulate <variable>/);
  assert.equal(await page.locator('article.output').count(), 1, 'only the current line ran');
  // Ctrl+Shift+Enter runs the whole script, wherever the caret is.
  await editor.press('Control+Home');
  await editor.press('Control+Shift+Enter');
  await page.locator('article.output').nth(2).waitFor({ timeout: 10_000 });
  // The newest run first: both lines, then the single line run before.
  const heads = await page.locator('article.output .output-head').allInnerTexts();
  assert.deepEqual(heads, ['line 1 · help', 'line 2 · help', 'line 2 · help']);
  assert.deepEqual(problems, []);
});

test('the signature line shows the syntax and options of the command at the caret', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill('create-dataset p\nregress wage age, ro');
  await editor.press('End');
  const signature = page.locator('#signature');
  await signature.filter({ hasText: 'regress' }).waitFor({ timeout: 10_000 });
  assert.match(await signature.innerText(), /^regress <dependent> <term>… .*options: noconstant, level, robust, cluster, vif, standardize$/);
  // The caret moved to the first line: its command's line instead.
  await editor.press('Control+Home');
  await signature.filter({ hasText: 'create-dataset' }).waitFor({ timeout: 10_000 });
  assert.deepEqual(problems, []);
});

test('completion offers command names, then the options of the command; Tab takes one, Esc closes', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill('require demo:1 as db\ntab');
  await editor.press('End');
  const list = page.locator('#completions');
  await list.waitFor({ timeout: 10_000 });
  assert.deepEqual(await list.locator('li').allInnerTexts(), ['tabulate', 'tabulate-panel']);
  await editor.press('Tab');
  assert.equal(await editor.inputValue(), 'require demo:1 as db\ntabulate');
  // The whole name still continues as another command.
  assert.deepEqual(await list.locator('li').allInnerTexts(), ['tabulate-panel']);
  await editor.press('Escape');
  await list.waitFor({ state: 'detached', timeout: 5_000 });
  assert.equal(await editor.inputValue(), 'require demo:1 as db\ntabulate', 'Esc only closes the list');

  await editor.fill('regress wage age, rob');
  await editor.press('End');
  await list.locator('li', { hasText: 'robust' }).waitFor({ timeout: 10_000 });
  assert.deepEqual(await list.locator('li').allInnerTexts(), ['robust']);
  await editor.press('Tab');
  assert.equal(await editor.inputValue(), 'regress wage age, robust');
  await list.waitFor({ state: 'detached', timeout: 5_000 });
  assert.deepEqual(problems, []);
});

test("completion offers the catalogue's variables after db/ and the dataset's after that; arrows choose, Enter takes", async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  const head = 'require demo:1 as db\ncreate-dataset persons\n';
  await editor.fill(head + 'import db/INNTEKT_W');
  await editor.press('End');
  const list = page.locator('#completions');
  // The catalogue's names arrive from the server once; the list follows them.
  await list.locator('li', { hasText: 'INNTEKT_WLONN' }).waitFor({ timeout: 10_000 });
  const offered = await list.locator('li').allInnerTexts();
  assert.ok(offered.length >= 2 && offered.every((n) => n.startsWith('INNTEKT_W')), offered.join());
  const chosen = list.locator('li[aria-selected="true"]');
  assert.equal(await chosen.innerText(), offered[0]);
  // ArrowUp from the first goes round to the last; ArrowDown comes back.
  await editor.press('ArrowUp');
  assert.equal(await chosen.innerText(), offered[offered.length - 1]);
  await editor.press('ArrowDown');
  const wanted = offered.indexOf('INNTEKT_WLONN');
  for (let i = 0; i < wanted; i++) await editor.press('ArrowDown');
  assert.equal(await chosen.innerText(), 'INNTEKT_WLONN');
  assert.equal(await editor.getAttribute('aria-activedescendant'), `completion-${wanted}`);
  await editor.press('Enter');
  assert.equal(await editor.inputValue(), head + 'import db/INNTEKT_WLONN', 'Enter takes the chosen name, no new line');

  // The variables the lines above made, and the functions, in a command's arguments.
  await editor.fill(head + 'import db/INNTEKT_WLONN 2021-12-31 as wage\nimport db/BEFOLKNING_KJOENN as sex\ngenerate wage_k = wage / 1000\nsummarize wa');
  await editor.press('Control+End');
  await list.locator('li', { hasText: 'wage_k' }).waitFor({ timeout: 10_000 });
  assert.deepEqual(await list.locator('li').allInnerTexts(), ['wage', 'wage_k']);
  await editor.press('ArrowDown');
  await editor.press('Tab');
  assert.match(await editor.inputValue(), /\nsummarize wage_k$/);
  assert.deepEqual(problems, []);
});

test("hovering a line shows its command's help and the disclosure rules that apply; F1 shows the caret line's", async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill('require demo:1 as db\nsummarize wage\nrename a b');
  // Where each line lies: the textarea's padding and line height, as the page computes them.
  const { top, lineHeight } = await editor.evaluate((e) => {
    const s = getComputedStyle(e);
    return { top: parseFloat(s.paddingTop), lineHeight: parseFloat(s.lineHeight) };
  });
  const box = await editor.boundingBox();
  const overLine = (n) => page.mouse.move(box.x + 60, box.y + top + lineHeight * (n - 0.5));
  const help = page.locator('#command-help');
  await overLine(2);
  await help.filter({ hasText: 'summarize' }).waitFor({ timeout: 10_000 });
  const text = await help.innerText();
  assert.match(text, /^summarize — N, mean, standard deviation/);
  assert.match(text, /Disclosure rules: 2 \(no rows, no minimum or maximum\), 3 \(population floor\), 7 .*8 \(percentiles\), 11 .*12 \(copies count once\)\./);
  assert.equal(await help.locator('a').getAttribute('href'), '/rules/demo');
  await overLine(3);
  await help.filter({ hasText: 'rename' }).waitFor({ timeout: 10_000 });
  assert.match(await help.innerText(), /Releases no data\./);
  // Leaving the editor closes it; F1 shows the caret line's help until Esc.
  await page.mouse.move(box.x + box.width / 2, box.y + box.height + 200);
  await help.waitFor({ state: 'detached', timeout: 5_000 });
  await editor.press('Control+Home');
  await editor.press('F1');
  await help.filter({ hasText: 'require' }).waitFor({ timeout: 10_000 });
  await editor.press('Escape');
  await help.waitFor({ state: 'detached', timeout: 5_000 });
  assert.deepEqual(problems, []);
});

test("a guest's run history keeps this page's runs and opens one again with its outputs", async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  const first = 'require demo:1 as db\ncreate-dataset persons\nimport db/BEFOLKNING_KJOENN as sex\ntabulate sex';
  await editor.fill(first);
  await page.locator('#run').click();
  await page.locator('table.result', { hasText: 'sex (count)' }).waitFor({ timeout: 30_000 });
  await editor.fill('help summarize');
  await page.locator('#run').click();
  await page.locator('article.output').nth(1).waitFor({ timeout: 30_000 });
  await page.locator('#run-history summary').click();
  const runs = page.locator('#run-history li');
  await runs.nth(1).waitFor({ timeout: 10_000 });
  assert.equal(await runs.count(), 2);
  // Newest first: the help, then the table's script by its first command.
  // The notices of require, create-dataset and import count among a run's outputs.
  assert.match(await runs.nth(0).innerText(), /· help summarize · 1 output Open$/);
  assert.match(await runs.nth(1).innerText(), /· create-dataset persons · 4 outputs Open$/);
  await page.locator('button', { hasText: 'Clear outputs' }).click();
  await runs.nth(1).locator('button.open-run').click();
  assert.equal(await editor.inputValue(), first);
  await page.locator('table.result', { hasText: 'sex (count)' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('article.output').count(), 4);
  assert.deepEqual(problems, []);
});

test('the data order lists what the script uses and downloads as text and JSON', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill(SCRIPT.replace('tabluate', 'tabulate') + '\nkeep if wage > 0');
  await page.locator('#data-order').click();
  const order = page.locator('#order');
  await order.waitFor({ timeout: 10_000 });
  const text = await order.locator('pre.text').innerText();
  assert.match(text, /^Data order\n\nDatastores\n  demo version 1 /);
  assert.match(text, /Variables \(2\)\n  demo:1 BEFOLKNING_KJOENN: .*\n  demo:1 INNTEKT_WLONN: .*\(import, at 2021-12-31; line 4\)/);
  assert.match(text, /  persons: keep if wage > 0 \(line 7\)/);
  const [json] = await Promise.all([page.waitForEvent('download'), order.locator('button.download-order-json').click()]);
  assert.equal(json.suggestedFilename(), 'data-order.json');
  const saved = JSON.parse(await readDownload(json));
  assert.deepEqual(saved.variables.map((v) => v.variable), ['BEFOLKNING_KJOENN', 'INNTEKT_WLONN']);
  const [plain] = await Promise.all([page.waitForEvent('download'), order.locator('button.download-order-text').click()]);
  const written = await readDownload(plain);
  assert.equal(written.trimEnd(), text.trimEnd());
  assert.deepEqual(problems, []);
});

test('a hexbin is drawn as hexagons, and the rules page says how outputs are protected', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill(`require demo:1 as db
create-dataset persons
import db/BEFOLKNING_FOEDSELS_AAR_MND as birth
import db/INNTEKT_WLONN 2021-12-31 as wage
generate age = 2021 - int(birth / 100)
hexbin wage age, gridsize(10)`);
  await page.locator('#run').click();
  const hexes = page.locator('figure.chart svg polygon.hex');
  await hexes.first().waitFor({ timeout: 30_000 });
  assert.ok((await hexes.count()) >= 10, `${await hexes.count()} cells`);
  assert.equal(await page.locator('figure.chart circle').count(), 0);

  await page.getByRole('link', { name: 'Disclosure rules' }).click();
  const rules = page.locator('ol.rules li');
  await rules.first().waitFor({ timeout: 10_000 });
  assert.ok((await rules.count()) >= 10, `${await rules.count()} rules`);
  assert.match(await page.locator('section.rules h1').innerText(), /demo \(version 1\)/);
  assert.deepEqual(problems, []);
});

test('coefplot draws the released estimates of its model with their intervals', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill(`require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/BEFOLKNING_FOEDSELS_AAR_MND as birth
import db/INNTEKT_WLONN 2021-12-31 as wage
generate age = 2021 - int(birth / 100)
coefplot regress wage age i.sex`);
  await page.locator('#run').click();
  const estimates = page.locator('figure.chart g.estimate');
  await estimates.first().waitFor({ timeout: 30_000 });
  // age and sex=2; the constant is on another scale and left out.
  assert.equal(await estimates.count(), 2);
  assert.equal(await page.locator('figure.chart g.estimate circle.point').count(), 2);
  assert.match(await estimates.first().locator('title').textContent(), /^age: -?[\d.,]+ \[-?[\d.,]+, -?[\d.,]+\]$/);
  // The model itself is shown first, as its own output.
  await page.locator('article.output', { hasText: 'Linear regression (OLS)' }).first().waitFor({ timeout: 5_000 });
  assert.deepEqual(problems, []);
});

test('sankey draws the released flows as bands between columns of levels', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  await page.goto(BASE_URL + '/workbench');
  const editor = page.getByLabel('Script');
  await editor.waitFor({ timeout: 10_000 });
  await editor.fill(`require demo:1 as db
create-dataset persons
import db/SIVSTANDFDT_SIVSTAND 2015-01-01 as s2015
import db/SIVSTANDFDT_SIVSTAND 2021-01-01 as s2021
sankey s2015 s2021`);
  await page.locator('#run').click();
  const flows = page.locator('svg.sankey path.flow');
  await flows.first().waitFor({ timeout: 30_000 });
  // Unmarried to unmarried is the largest flow on any demo; every band names its count.
  assert.ok(await flows.count() >= 3);
  const titles = await flows.locator('title').allTextContents();
  assert.ok(titles.some((t) => /^s2015 1 Ugift → s2021 1 Ugift: \d+$/.test(t)), titles.join('\n'));
  // A node per level present, in two columns.
  assert.ok(await page.locator('svg.sankey g.node rect').count() >= 4);
  assert.deepEqual(problems, []);
});
