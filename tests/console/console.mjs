// The console in a real browser: Debian's chromium, headless, driven by
// Playwright. Started by scripts/console-browser from the black-box test
// that runs the server (tests/suite/console.rs); every value it needs comes
// in the environment. Screenshots, the downloaded dossier and the tampered
// bundle are kept in $ARTIFACTS. Exits non-zero at the first check that
// does not hold, saying which.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run through scripts/console-browser from the test)`);
  return v;
};
const url = env("CONSOLE_URL");
const caseId = env("CONSOLE_CASE");
const publicKey = env("PUBLIC_KEY");
const artifacts = env("ARTIFACTS");
const purpose = "dispute file 2020-17";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});

const step = (what) => console.log("console: " + what);
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, name + ".png"), fullPage: true });

async function signedIn(token, withPurpose) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url + "/console#/signin");
  await page.fill("#token", token);
  if (withPurpose) await page.fill("#purpose", purpose);
  await page.click("form.signin button[type=submit]");
  await page.waitForSelector("#who .actor");
  // The sign-in page's own 401 (asked who is signed in before anyone was)
  // is expected; from here on, any error counts.
  problems.length = 0;
  return { context, page, problems };
}

try {
  // --- an auditor allowed to read personal data ---
  const { context, page, problems } = await signedIn(env("TOKEN_READER"), true);
  step("signed in as " + (await page.textContent("#who .actor")));

  await page.goto(url + "/console#/case/" + caseId);
  await page.waitForSelector("svg.timeline");
  // The phone-callback demand, answered by SMS three times.
  const smsBreaches = await page.locator('.breach[data-demand-id="d01"][data-channel="CHANNEL_SMS"]').count();
  assert.equal(smsBreaches, 3, "the phone-callback demand shows three SMS answers");
  const d01 = await page.locator('.span.demand[data-demand-id="d01"] title').textContent();
  assert.match(d01, /phone call/, "d01 says it wanted a phone call");
  assert.match(d01, /需要电话回复/, "the reader sees the demand's words");
  // The broken promise, with its reasons.
  const broken = page.locator('.span.promise[data-state="broken"]');
  assert.ok((await broken.count()) >= 1, "a broken promise is drawn");
  assert.match(await page.textContent("#case-promises"), /broken/);
  assert.ok((await page.locator("svg .promise-label-broken").count()) >= 1, "the broken promise is labelled");
  // Contacts on their channels, days shaded, tickets and warnings drawn.
  assert.ok((await page.locator('.contact[data-channel="CHANNEL_HOTLINE"]').count()) >= 10, "ten hotline calls");
  assert.ok((await page.locator("rect.day-weekend").count()) >= 2, "weekends shaded");
  assert.ok((await page.locator(".ticket-rejected").count()) >= 1, "the rejected ticket");
  assert.ok((await page.locator(".mark.warning").count()) >= 1, "early warnings");
  // The events with their envelopes.
  const rows = await page.locator("#events tbody tr").count();
  const version = Number(await page.textContent("#case-version"));
  assert.equal(rows, version, "one row per event");
  assert.match(await page.textContent("#events"), /[0-9a-f]{12}…/, "hashes shown");
  // Clicking a mark selects its event.
  await page.locator('.breach[data-demand-id="d01"]').first().click({ force: true });
  assert.equal(await page.locator("#events tr.selected").count(), 1, "the mark's event is selected");
  step(`case page: ${rows} events, 3 SMS answers to the phone demand, broken promise`);

  // Verification: nothing pinned yet -> not verified; pin -> verified.
  await page.waitForSelector("#proof");
  assert.equal(await page.getAttribute("#proof", "data-ok"), "false", "no key pinned, nothing verified");
  await page.fill("#pinned-key", publicKey);
  await page.click("#pin-key");
  await page.waitForSelector('#proof[data-ok="true"]');
  assert.match(await page.textContent("#proof"), /Verified/);
  assert.match(await page.textContent("#proof"), new RegExp(`${rows} records`));
  await shot(page, "case-" + caseId);
  await page.locator("#picture").screenshot({ path: path.join(artifacts, "timeline-" + caseId + ".png") });
  await page.locator("header.top").screenshot({ path: path.join(artifacts, "header.png") });
  step("the case verifies in the browser against the pinned key");

  // A wrong key fails, in red, saying what failed.
  const otherKey = publicKey.replace(/\+[0-9a-f]{8}\+/, "+00000000+");
  await page.fill("#pinned-key", otherKey);
  await page.click("#pin-key");
  await page.waitForSelector('#proof[data-ok="false"]');
  assert.match(await page.textContent("#proof .failure"), /checkpoint signature/);
  await page.fill("#pinned-key", publicKey);
  await page.click("#pin-key");
  await page.waitForSelector('#proof[data-ok="true"]');

  // As of an earlier version: redrawn as it stood.
  await page.fill("#asof-version", "3");
  await page.click("#asof-apply");
  await page.waitForFunction(() => document.querySelector("#case-version") && document.querySelector("#case-version").textContent === "3");
  await page.waitForSelector("svg.timeline");
  assert.equal(await page.locator("#events tbody tr").count(), 3, "three events as of version 3");
  assert.equal(await page.locator(".breach").count(), 0, "no SMS answers yet at version 3");
  assert.match(await page.textContent("#case-title"), /as of version 3/);
  await shot(page, "case-" + caseId + "-version-3");
  step("as of version 3: redrawn with 3 events");

  // Judged as of a business time: on Saturday 12-05 the "1-2 working
  // days" promise was not yet due, so it stood open.
  await page.goto(url + "/console#/case/" + caseId + "?eval=2020-12-05T12:00");
  await page.waitForFunction(() => (document.querySelector("#judged-at") || {}).textContent === "judged as of 2020-12-05 12:00");
  assert.equal(await page.getAttribute('.span.promise[data-promise-id="p01"]', "data-state"), "open");
  assert.equal(await page.locator("svg line.evaluated").count(), 1, "the evaluation time is drawn");
  await shot(page, "case-" + caseId + "-judged-2020-12-05");
  step("judged as of 2020-12-05: the promise stood open");

  // The dossier: downloaded, opened from disk, verified there.
  await page.goto(url + "/console#/case/" + caseId);
  await page.waitForSelector('#proof[data-ok="true"]');
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#dossier")]);
  const dossierPath = path.join(artifacts, "case-" + caseId + "-dossier.html");
  await download.saveAs(dossierPath);
  const offline = await context.newPage();
  const offlineProblems = [];
  offline.on("pageerror", (e) => offlineProblems.push(String(e)));
  offline.on("console", (m) => {
    if (m.type() === "error") offlineProblems.push(m.text());
  });
  await offline.goto("file://" + dossierPath);
  await offline.waitForSelector("svg.timeline");
  await offline.waitForSelector('#proof[data-ok="true"]');
  assert.equal(await offline.locator('.breach[data-demand-id="d01"][data-channel="CHANNEL_SMS"]').count(), 3);
  assert.deepEqual(offlineProblems, [], "the dossier runs under its own CSP without errors");
  await shot(offline, "dossier-" + caseId);
  step("the dossier opens from disk and verifies itself");

  // A tampered bundle fails, in red, naming the record.
  const bundle = await page.evaluate((c) => CL.api.call("Audit", "ExportCase", { caseId: c }), caseId);
  const rec = Buffer.from(bundle.records[4].record, "base64");
  rec[rec.length - 3] ^= 0x01;
  bundle.records[4].record = rec.toString("base64");
  const tampered = path.join(artifacts, "tampered-bundle.json");
  fs.writeFileSync(tampered, JSON.stringify(bundle));
  await page.goto(url + "/console#/verify");
  await page.setInputFiles("#bundle-file", tampered);
  await page.waitForSelector('#proof[data-ok="false"]');
  const failure = await page.textContent("#proof .failure");
  assert.match(failure, /version 5/, "the failure names the record: " + failure);
  const color = await page.$eval("#proof", (e) => getComputedStyle(e).borderTopColor);
  assert.equal(color, "rgb(198, 40, 40)", "shown in red");
  await shot(page, "tampered-bundle");
  step("a tampered bundle fails: " + failure.trim());

  // The boards, each row linking to its case.
  await page.goto(url + "/console#/board/promises?state=PROMISE_STATE_BROKEN&dueBy=2020-12-31&evaluate=2020-12-31");
  await page.waitForSelector("#board-promises table.rows");
  assert.ok((await page.locator("#board-promises tbody tr").count()) >= 1, "broken promises listed");
  await page.locator(`#board-promises a.case-link`).first().click();
  await page.waitForSelector("svg.timeline");
  await page.goto(url + "/console#/board/warnings?unanswered=0");
  await page.waitForSelector("#board-warnings table.rows");
  assert.ok((await page.locator("#board-warnings tbody tr").count()) >= 1, "warnings listed");
  await page.goto(url + "/console#/board/cases");
  await page.waitForSelector("#board-cases table.rows");
  await page.goto(url + "/console#/board/customer?customer=cust-5c1e9a");
  await page.waitForSelector("#board-customer table.rows");
  assert.match(await page.textContent("#board-customer"), new RegExp(caseId));
  await page.goto(url + "/console#/board/queues?kind=QUEUE_KIND_CALLBACK&date=2020-12-10");
  await page.waitForSelector("#board-queues .caption");
  await page.goto(url + "/console#/board/scorecard?agent=8030&month=2020-12");
  await page.waitForSelector("#board-scorecard .caption");
  await shot(page, "board-scorecard");
  step("boards: promises, warnings, cases, customer, queues, scorecard");
  assert.deepEqual(problems, [], "no errors in the page");
  await context.close();

  // --- an auditor without pii:read: masked, nothing revealed ---
  const masked = await signedIn(env("TOKEN_MASKED"), false);
  assert.match(await masked.page.textContent("#who"), /personal data masked/);
  await masked.page.goto(url + "/console#/case/" + caseId);
  await masked.page.waitForSelector("svg.timeline");
  const table = await masked.page.textContent("#events");
  assert.match(table, /\[personal data masked\]/);
  assert.doesNotMatch(table, /需要电话回复/);
  assert.doesNotMatch(await masked.page.locator('.span.demand[data-demand-id="d01"] title').textContent(), /需要电话回复/);
  await shot(masked.page, "case-" + caseId + "-masked");
  step("an auditor without pii:read sees masked data");
  assert.deepEqual(masked.problems, [], "no errors in the masked page");
  await masked.context.close();

  // --- a caller whose role may not read cases ---
  const ops = await signedIn(env("TOKEN_OPS"), false);
  await ops.page.goto(url + "/console#/board/warnings");
  await ops.page.waitForSelector("#board-warnings table.rows, #board-warnings .hint.empty");
  await ops.context.close();

  console.log("console: all checks passed");
} catch (e) {
  console.error("console: FAILED: " + (e && e.stack ? e.stack : e));
  for (const c of browser.contexts()) {
    for (const p of c.pages()) {
      const proof = await p.$("#proof");
      if (proof) console.error("console: the page's proof says: " + (await proof.textContent()));
      await p.screenshot({ path: path.join(artifacts, "failed-" + c.pages().indexOf(p) + ".png"), fullPage: true }).catch(() => {});
    }
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
