// Browser tests of the web view's refusals and provider pages: Debian's
// chromium, driven by playwright-core, against a real `daylight log serve`
// (its own log, apart from web.test.mjs's) holding requests from three
// jurisdictions, refusals by two providers for three reasons, and two
// published policies. `node --test` in this folder runs it with the others.
//
// Environment: DAYLIGHT_BIN (default ../../target/debug/daylight),
// CHROMIUM (default /usr/bin/chromium), SCREENSHOTS=DIR.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { daylight, harness, hours, iso, rowCount, shot } from "./common.mjs";

const h = harness("daylight-web-refusals-");
const { p, draft, submit, open } = h;
let base;
const idx = {};
const year = String(new Date().getUTCFullYear());

async function ref(i) {
  const e = await (await fetch(`${base}/api/v1/entries/${i}`)).json();
  return { index: i, leaf_hash: e.leaf_hash };
}

before(async () => {
  const agencyKey = daylight("key", "generate", "--name", "agency.example", "--out", p("agency.key"));
  const cloudKey = daylight("key", "generate", "--name", "cloud.example", "--out", p("cloud.key"));
  const mailKey = daylight("key", "generate", "--name", "mail.example", "--out", p("mail.key"));
  daylight("log", "init", "--dir", p("log"), "--origin", "log.example/refusals", "--quorum", "0");
  daylight("log", "add-agency", "--dir", p("log"), "--vkey", agencyKey);
  daylight("log", "add-provider", "--dir", p("log"), "--vkey", cloudKey);
  daylight("log", "add-provider", "--dir", p("log"), "--vkey", mailKey);
  base = await h.serveLog(p("log"));
  const window = { valid_from: iso(hours(-24)), valid_until: iso(hours(24 * 30)), sealed_until: iso(hours(24 * 365)) };
  const request = (jurisdiction, provider) => submit(p("agency.key"), draft("request", { ...window, jurisdiction, provider }));
  idx.de1 = await request("DE", "cloud.example");
  idx.de2 = await request("DE", "cloud.example");
  idx.us = await request("US-NY", "cloud.example");
  idx.gb = await request("GB", "mail.example");
  const refused_at = iso(hours(-0.05));
  const refuse = async (key, entry, reason) => submit(p(key), draft("refusal", { entry: await ref(entry), reason, refused_at }));
  idx.refusal_de1 = await refuse("cloud.key", idx.de1, "jurisdiction_denied");
  idx.refusal_de2 = await refuse("cloud.key", idx.de2, "issuer_not_allowed");
  idx.refusal_us = await refuse("cloud.key", idx.us, "too_many_targets");
  idx.refusal_gb = await refuse("mail.key", idx.gb, "jurisdiction_denied");
  idx.policy_old = await submit(p("cloud.key"), draft("policy", { lines: ["daylight-max-targets 5"] }));
  idx.policy_new = await submit(
    p("cloud.key"),
    draft("policy", { lines: ["daylight-issuers allow court", "daylight-jurisdictions deny DE", "daylight-max-targets 1"] }),
  );

  await h.launchBrowser();
});

after(() => h.close());

describe("refusals and provider pages in chromium", () => {
  test("home → refusals per year and jurisdiction → the refusals, in two clicks", async () => {
    const page = await open("/");
    const headline = page.locator("#refusals-headline");
    assert.match(await headline.textContent(), new RegExp(`Providers logged 4 refusals of requests, 4 of them in ${year}`));
    assert.equal(await page.textContent('#refusals-by-jurisdiction tr[data-value="DE"] a'), "2");
    assert.equal(await page.textContent('#refusals-by-reason tr[data-value="jurisdiction_denied"] a'), "2");
    await shot(page, "home-refusals");
    // Click 1: the refusals page.
    await Promise.all([page.waitForNavigation(), headline.locator('a[href="/refusals"]').click()]);
    assert.equal((await page.textContent("h1")).trim(), "Refusals by providers");
    const row = page.locator(`#refusals-table tbody tr[data-year="${year}"][data-jurisdiction="DE"]`);
    assert.equal(await row.locator('a[data-count="all"]').textContent(), "2");
    const denied = row.locator('a[data-count="jurisdiction_denied"]');
    assert.equal(await denied.textContent(), "1");
    assert.equal(await row.locator('a[data-count="issuer_not_allowed"]').textContent(), "1");
    assert.equal(await row.locator('a[data-count="too_many_targets"]').textContent(), "0");
    await shot(page, "refusals");
    // Click 2: the refusals that number counts.
    await Promise.all([page.waitForNavigation(), denied.click()]);
    const url = new URL(page.url());
    assert.equal(url.pathname, "/entries");
    assert.equal(url.searchParams.get("reason"), "jurisdiction_denied");
    assert.equal(url.searchParams.get("jurisdiction"), "DE");
    assert.equal(await page.textContent("#match-count"), "1");
    assert.equal(await rowCount(page), 1);
    assert.equal(await page.getAttribute("table.entries tbody tr td a", "href"), `/entries/${idx.refusal_de1}`);
    assert.match(await page.textContent("table.entries tbody tr"), /refused: jurisdiction refused/);
    // The filter form shows the filters it was opened with.
    assert.equal(await page.inputValue("#f-reason"), "jurisdiction_denied");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("a refused request says so, with who refused it and why", async () => {
    const page = await open(`/entries/${idx.de1}`);
    assert.match(await page.textContent("main"), /Status: .*refused by the provider/s);
    const item = page.locator("ol.timeline li", { has: page.locator(`a[href="/entries/${idx.refusal_de1}"]`) });
    const text = await item.textContent();
    assert.match(text, /Refusal by provider/);
    assert.match(text, /by cloud\.example/);
    assert.match(text, /jurisdiction refused/);
    // The provider's name leads to its page.
    await Promise.all([page.waitForNavigation(), item.locator('a[href="/providers/cloud.example"]').click()]);
    assert.equal((await page.textContent("h1")).trim(), "Provider cloud.example");
    await page.close();
  });

  test("a provider's page, from the keys page, shows its standards now and over time", async () => {
    const page = await open("/keys");
    await Promise.all([page.waitForNavigation(), page.click('a.provider-page[href="/providers/cloud.example"]')]);
    assert.equal((await page.textContent("h1")).trim(), "Provider cloud.example");
    const current = page.locator("#current-policy");
    assert.equal(await current.getAttribute("data-entry"), String(idx.policy_new));
    assert.equal(await current.locator("ol.policy-lines li").count(), 3);
    const words = await current.textContent();
    assert.match(words, /Only orders issued by a judge or court/);
    assert.match(words, /Never requests from these jurisdictions: DE/);
    assert.match(words, /At most 1 target per request/);
    const history = page.locator("#policy-history > li");
    assert.equal(await history.count(), 2);
    assert.equal(await history.nth(0).getAttribute("data-entry"), String(idx.policy_new));
    assert.equal(await history.nth(1).getAttribute("data-entry"), String(idx.policy_old));
    assert.match(await history.nth(0).textContent(), /removed daylight-max-targets 5/);
    assert.equal(await page.textContent('#provider-figures a[data-count="refusals"]'), "3");
    await shot(page, "provider");
    // A history entry leads to the policy entry.
    await Promise.all([page.waitForNavigation(), history.nth(1).locator(`a[href="/entries/${idx.policy_old}"]`).click()]);
    assert.match(await page.textContent("h1"), new RegExp(`Entry ${idx.policy_old}: Provider's published standards`));
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
