// Browser tests of the web view: Debian's chromium, driven by playwright-core,
// against a real `daylight log serve` with sample records submitted by
// `daylight agency submit`. Run by scripts/test after cargo has built
// target/debug/daylight; `node --test` in this folder runs it alone.
//
// Environment: DAYLIGHT_BIN (default ../../target/debug/daylight),
// CHROMIUM (default /usr/bin/chromium), SCREENSHOTS=DIR to save a
// screenshot of each page (desktop and phone widths).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { daylight, freePort, harness, hours, iso, rowCount, shot } from "./common.mjs";

const h = harness("daylight-web-e2e-");
const { p, draft, submit, open } = h;
let base;
const idx = {};

before(async () => {
  const agencyKey = daylight("key", "generate", "--name", "agency.example", "--out", p("agency.key"));
  const courtKey = daylight("key", "generate", "--name", "court.example", "--out", p("court.key"));
  const logKey = daylight("log", "init", "--dir", p("log"), "--origin", "log.example/e2e", "--quorum", "1");
  daylight("log", "add-agency", "--dir", p("log"), "--vkey", agencyKey);
  daylight("log", "add-court", "--dir", p("log"), "--vkey", courtKey);
  // One witness (quorum 1), so the page checks a real cosignature.
  const witnessKey = daylight("witness", "init", "--dir", p("witness"), "--name", "witness.example");
  daylight("witness", "add-log", "--dir", p("witness"), "--origin", "log.example/e2e", "--vkey", logKey);
  const wport = await freePort();
  h.spawn(["witness", "serve", "--dir", p("witness"), "--listen", `127.0.0.1:${wport}`], { stdio: "ignore" });
  daylight("log", "add-witness", "--dir", p("log"), "--vkey", witnessKey, "--url", `http://127.0.0.1:${wport}`);
  base = await h.serveLog(p("log"), "--publish-dir", p("public"));
  const window = { valid_from: iso(hours(-24)), valid_until: iso(hours(24 * 30)), sealed_until: iso(hours(24 * 365)) };
  idx.us = await submit(p("agency.key"), draft("request", window));
  idx.de = await submit(p("agency.key"), draft("request", { ...window, jurisdiction: "DE", provider: "cloud.example", data_categories: ["subscriber"] }));
  idx.emergency = await submit(
    p("agency.key"),
    draft("emergency", { valid_from: iso(hours(-1)), valid_until: iso(hours(40)), sealed_until: iso(hours(24 * 90)), ratify_by: iso(hours(40)) }),
  );
  const em = await (await fetch(`${base}/api/v1/entries/${idx.emergency}`)).json();
  idx.ratification = await submit(p("court.key"), draft("ratification", { emergency: { index: idx.emergency, leaf_hash: em.leaf_hash } }));
  // An outcome report on the US request: encryption kept the data out of reach.
  const us = await (await fetch(`${base}/api/v1/entries/${idx.us}`)).json();
  idx.outcome = await submit(
    p("agency.key"),
    draft("outcome", { entry: { index: idx.us, leaf_hash: us.leaf_hash }, data_obtained: false, encryption_encountered: true, encryption_prevented_access: true }),
  );

  await h.launchBrowser();
});

after(() => h.close());

describe("web view in chromium", () => {
  test("every page renders", async () => {
    const home = await open("/");
    assert.match(await home.textContent("h1"), /Lawful-access requests/);
    assert.ok((await home.locator("figure.chart svg").count()) >= 2, "charts");
    // Three registry entries (agency, court, witness) and five submissions.
    assert.equal(await home.textContent("dl.facts div:first-child dd"), "8");
    await shot(home, "home");
    for (const [url, h1] of [
      ["/entries", "Entries"],
      ["/keys", "Keys"],
      ["/witnesses", "Witnesses"],
      ["/findings", "Auditor findings"],
      ["/going-dark", "Going dark: what the log's outcome reports say"],
      ["/agencies/agency.example", "Agency agency.example"],
      [`/entries/${idx.emergency}`, `Entry ${idx.emergency}: Emergency request`],
    ]) {
      const page = await open(url);
      assert.equal((await page.textContent("h1")).trim(), h1, url);
      await shot(page, url.replace(/\W+/g, "_").replace(/^_$/, "home") || "home");
      assert.deepEqual(page.errors, [], url);
      await page.close();
    }
    await home.close();
  });

  test("the keys page shows each identity's key history and the log's keys", async () => {
    const page = await open("/keys");
    const agency = page.locator('table.key-history[data-identity="agency.example"] tbody tr');
    assert.equal(await agency.count(), 1);
    assert.match(await agency.first().textContent(), /in use/);
    assert.equal(await page.locator('table.key-history[data-identity="court.example"] tbody tr').count(), 1);
    assert.equal(await page.locator("table.log-keys tbody tr").count(), 1);
    assert.match(await page.locator("table.log-keys tbody tr").textContent(), /current/);
    // The identity's own page, from its heading.
    await Promise.all([page.waitForNavigation(), page.click('a[href="/keys/agency.example"]')]);
    assert.equal((await page.textContent("h1")).trim(), "Keys of agency.example");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("filters narrow the list and give a linkable URL", async () => {
    const page = await open("/entries");
    assert.equal(await rowCount(page), 8);
    await page.click("details.filters summary");
    await page.check("input[name=kind][value=request]");
    await page.selectOption("#f-jurisdiction", "DE");
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
    assert.match(page.url(), /\/entries\?kind=request&.*jurisdiction=DE/);
    assert.equal(await rowCount(page), 1);
    assert.equal(await page.textContent("#match-count"), "1");
    assert.equal(await page.getAttribute("table.entries tbody tr td a", "href"), `/entries/${idx.de}`);
    // The same URL, opened fresh, shows the same list.
    const again = await open(new URL(page.url()).pathname + new URL(page.url()).search);
    assert.equal(await rowCount(again), 1);
    const status = await open("/entries?status=ratified");
    assert.equal(await rowCount(status), 1);
    await Promise.all([page.close(), again.close(), status.close()]);
  });

  test("every list offers its Atom feed, with its filters", async () => {
    const page = await open("/entries?kind=request");
    const feed = "/entries.atom?kind=request";
    assert.equal(await page.getAttribute('head link[rel=alternate][type="application/atom+xml"]', "href"), feed);
    const link = page.locator("#feed-link");
    assert.ok(await link.isVisible(), "the feed link is visible");
    assert.equal(await link.getAttribute("href"), feed);
    const resp = await page.request.get(`${base}${feed}`);
    assert.equal(resp.status(), 200);
    assert.equal(resp.headers()["content-type"], "application/atom+xml; charset=utf-8");
    const xml = await resp.text();
    // The browser's own XML parser reads it as Atom: two requests, newest first.
    const entries = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, "application/xml");
      if (doc.querySelector("parsererror")) return null;
      const ns = "http://www.w3.org/2005/Atom";
      return [...doc.getElementsByTagNameNS(ns, "entry")].map((e) => e.getElementsByTagNameNS(ns, "link")[0].getAttribute("href"));
    }, xml);
    assert.deepEqual(entries, [`${base}/entries/${idx.de}`, `${base}/entries/${idx.us}`]);
    await page.close();
  });

  test("the going-dark page renders its table, and the home headline links to it", async () => {
    const home = await open("/");
    const headline = home.locator("#going-dark-headline");
    assert.match(await headline.textContent(), /Of 1 outcomes reported in this log, 1 say encryption prevented access/);
    await Promise.all([home.waitForNavigation(), headline.locator('a[href="/going-dark"]').click()]);
    assert.equal(new URL(home.url()).pathname, "/going-dark");
    assert.match(await home.textContent("h1"), /Going dark/);
    const table = home.locator("#going-dark-table");
    assert.ok(await table.isVisible());
    // A row for the jurisdiction, one for the year, one for all years.
    const year = String(new Date().getUTCFullYear());
    assert.equal(await table.locator(`tbody tr[data-year="${year}"][data-jurisdiction="US"]`).count(), 1);
    const total = table.locator('tbody tr[data-year="all"][data-jurisdiction="all"]');
    assert.equal(await total.locator('a[data-metric="requests"]').textContent(), "3");
    const prevented = total.locator('a[data-metric="encryption_prevented_access"]');
    assert.equal(await prevented.textContent(), "1");
    // Others' figures stand beside, marked as claims.
    assert.ok((await home.locator("#claims-table tbody tr").count()) >= 5);
    assert.match(await home.textContent("#claims-h"), /claims this log cannot check/);
    await shot(home, "going-dark");
    // The number leads to the entry it counts.
    await Promise.all([home.waitForNavigation(), prevented.click()]);
    assert.equal(await rowCount(home), 1);
    assert.equal(await home.textContent("#match-count"), "1");
    assert.equal(await home.getAttribute("table.entries tbody tr td a", "href"), `/entries/${idx.outcome}`);
    assert.deepEqual(home.errors, []);
    await home.close();
  });

  test("an agency's page, from the list, counts its requests and ratifications", async () => {
    const page = await open("/entries?kind=emergency");
    await Promise.all([page.waitForNavigation(), page.click('table.entries a[href="/agencies/agency.example"]')]);
    assert.equal((await page.textContent("h1")).trim(), "Agency agency.example");
    const figure = (key) => page.textContent(`#agency-figures tr[data-figure="${key}"] a`);
    assert.equal(await figure("requests"), "2");
    assert.equal(await figure("emergencies"), "1");
    assert.equal(await figure("ratified"), "1");
    assert.equal(await figure("encryption_prevented_access"), "1");
    assert.match(await page.textContent("#ratification-rate"), /ratified 1 of its 1 emergency requests \(100%\)/);
    assert.equal(
      await page.getAttribute('head link[rel=alternate][type="application/atom+xml"]', "href"),
      "/entries.atom?agency=agency.example",
    );
    await shot(page, "agency");
    await page.close();
  });

  async function verify(url, setup) {
    const page = await open(url);
    if (setup) await setup(page);
    await page.click("#verify-button");
    await page.waitForSelector("#verify-result[data-state=ok], #verify-result[data-state=fail]", { timeout: 15000 });
    const state = await page.getAttribute("#verify-result", "data-state");
    const text = await page.textContent("#verify-result");
    return { page, state, text };
  }

  test("verify turns green for a real entry", async () => {
    for (const i of [idx.us, idx.ratification, 0]) {
      const { page, state, text } = await verify(`/entries/${i}`);
      assert.equal(state, "ok", text);
      assert.match(text, /Verified/);
      assert.match(text, /Log signature on the checkpoint verifies/);
      assert.match(text, /equals the signed root/);
      assert.match(text, /Witness witness\.example cosigned it/);
      assert.match(text, /1 witness cosignature\(s\) verify; 1 required/);
      assert.match(text, /log\.example\/e2e\+[0-9a-f]{8}\+/, "shows the key it checked against");
      if (i === idx.us) await shot(page, "verified");
      await page.close();
    }
  });

  test("verify turns red on a tampered hash tile", async () => {
    const { page, state, text } = await verify(`/entries/${idx.us}`, (page) =>
      page.route("**/tile/0/**", async (route) => {
        const resp = await route.fetch();
        const body = Buffer.from(await resp.body());
        body[body.length - 1] ^= 1;
        await route.fulfill({ response: resp, body });
      }),
    );
    assert.equal(state, "fail", text);
    assert.match(text, /not the signed root/);
    await shot(page, "tampered-tile");
    await page.close();
  });

  test("verify turns red on a tampered checkpoint", async () => {
    const { page, state, text } = await verify(`/entries/${idx.us}`, (page) =>
      page.route("**/checkpoint", async (route) => {
        const resp = await route.fetch();
        const lines = (await resp.text()).split("\n");
        lines[1] = String(Number(lines[1]) + 1); // claim one more entry
        await route.fulfill({ response: resp, body: lines.join("\n") });
      }),
    );
    assert.equal(state, "fail", text);
    assert.match(text, /signature on the checkpoint does not verify/);
    await page.close();
  });

  test("verify turns red on a forged witness cosignature", async () => {
    const { page, state, text } = await verify(`/entries/${idx.us}`, (page) =>
      page.route("**/checkpoint", async (route) => {
        const resp = await route.fetch();
        const lines = (await resp.text()).split("\n");
        const i = lines.findIndex((l) => l.startsWith("\u2014 witness.example "));
        const sig = Buffer.from(lines[i].split(" ")[2], "base64");
        sig[sig.length - 1] ^= 1;
        lines[i] = `\u2014 witness.example ${sig.toString("base64")}`;
        await route.fulfill({ response: resp, body: lines.join("\n") });
      }),
    );
    assert.equal(state, "fail", text);
    assert.match(text, /witness witness\.example's cosignature does not verify/);
    await page.close();
  });

  test("verify turns red when the witness quorum is not met", async () => {
    const { page, state, text } = await verify(`/entries/${idx.us}`, (page) => page.fill("#witness-keys", ""));
    assert.equal(state, "fail", text);
    assert.match(text, /only 0 of the 1 required witness cosignatures verify/);
    await page.close();
  });

  test("verify turns red on a tampered entry bundle", async () => {
    const { page, state, text } = await verify(`/entries/${idx.us}`, (page) =>
      page.route("**/tile/entries/**", async (route) => {
        const resp = await route.fetch();
        // Rewrite the US request's jurisdiction, keeping every length.
        const body = Buffer.from((await resp.body()).toString("latin1").replace("US-NY", "US-CA"), "latin1");
        await route.fulfill({ response: resp, body });
      }),
    );
    assert.equal(state, "fail", text);
    assert.match(text, /hash to .* but this page shows/);
    await page.close();
  });

  // The directory `log serve --publish-dir` writes, served by a plain static
  // server on another origin (allowing this page's origin, as a public bucket
  // does); `tamper` rewrites one hash tile on the way out.
  async function publishedCopy(tamper) {
    const root = p("public");
    const srv = http.createServer((req, res) => {
      const file = path.join(root, decodeURIComponent(new URL(req.url, "http://x").pathname));
      if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        res.writeHead(404, { "access-control-allow-origin": "*" });
        return res.end("not found");
      }
      let body = fs.readFileSync(file);
      if (tamper && req.url.startsWith("/tile/0/")) {
        body = Buffer.from(body);
        body[body.length - 1] ^= 1;
      }
      res.writeHead(200, { "access-control-allow-origin": "*", "content-type": "application/octet-stream" });
      res.end(body);
    });
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    return { srv, url: `http://127.0.0.1:${srv.address().port}` };
  }

  async function published(size) {
    // The directory's checkpoint is written last, after its tiles.
    const deadline = Date.now() + 20000;
    for (;;) {
      try {
        const text = fs.readFileSync(p("public/checkpoint"), "utf8");
        if (Number(text.split("\n")[1]) >= size) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`the published directory never reached size ${size}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test("verify reads a published copy elsewhere, needing nothing from this server", async () => {
    await published(idx.ratification + 1);
    const { srv, url } = await publishedCopy(false);
    try {
      const requests = [];
      const { page, state, text } = await verify(`/entries/${idx.us}`, async (page) => {
        await page.fill("#read-from", url);
        page.on("request", (r) => requests.push(r.url()));
      });
      assert.equal(state, "ok", text);
      assert.match(text, new RegExp(`Reading the log from ${url}`));
      assert.match(text, /equals the signed root/);
      const fromPage = requests.filter((u) => u.startsWith(base) && /\/(checkpoint|tile\/)/.test(u));
      assert.deepEqual(fromPage, [], "no log data from the page's own server");
      assert.ok(requests.some((u) => u.startsWith(`${url}/tile/`)), "tiles came from the copy");
      await page.close();
    } finally {
      srv.close();
    }
    const bad = await publishedCopy(true);
    try {
      const { page, state, text } = await verify(`/entries/${idx.us}`, (page) => page.fill("#read-from", bad.url));
      assert.equal(state, "fail", text);
      assert.match(text, /not the signed root/);
      await page.close();
    } finally {
      bad.srv.close();
    }
  });

  test("verify turns red against a key obtained elsewhere that does not match", async () => {
    const other = daylight("key", "generate", "--name", "log.example/e2e", "--out", p("other.key"));
    const { page, state, text } = await verify(`/entries/${idx.us}`, (page) => page.fill("#log-key", other));
    assert.equal(state, "fail", text);
    assert.match(text, /no signature by the log key/);
    await page.close();
  });
});
