// The in-browser verifier against a C2SP tlog-mirror: a log with one
// witness and one mirror (mirror quorum 1) pushing to `daylight mirror
// serve`; the page reads the checkpoint from the log and the entry bundle
// and hash tiles from the mirror's prefix, with the log's own tiles blocked.
//
// Environment: as web.test.mjs (DAYLIGHT_BIN, CHROMIUM).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { daylight, freePort, harness, hours, iso } from "./common.mjs";

const ORIGIN = "log.example/mirror-e2e";
const h = harness("daylight-mirror-e2e-");
const { p, draft, submit, open } = h;
let base;
let mirrorPrefix;
let mirrorKey;
let index;

async function waitFor(what, check) {
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  const agencyKey = daylight("key", "generate", "--name", "agency.example", "--out", p("agency.key"));
  const logKey = daylight("log", "init", "--dir", p("log"), "--origin", ORIGIN, "--quorum", "1");
  daylight("log", "add-agency", "--dir", p("log"), "--vkey", agencyKey);
  const witnessKey = daylight("witness", "init", "--dir", p("witness"), "--name", "witness.example");
  daylight("witness", "add-log", "--dir", p("witness"), "--origin", ORIGIN, "--vkey", logKey);
  const wport = await freePort();
  h.spawn(["witness", "serve", "--dir", p("witness"), "--listen", `127.0.0.1:${wport}`], { stdio: "ignore" });
  daylight("log", "add-witness", "--dir", p("log"), "--vkey", witnessKey, "--url", `http://127.0.0.1:${wport}`);

  mirrorKey = daylight("mirror", "init", "--dir", p("mirror"), "--name", "mirror.example");
  daylight("mirror", "add-log", "--dir", p("mirror"), "--origin", ORIGIN, "--vkey", logKey);
  const mport = await freePort();
  const mirrorUrl = `http://127.0.0.1:${mport}`;
  h.spawn(["mirror", "serve", "--dir", p("mirror"), "--listen", `127.0.0.1:${mport}`], { stdio: "ignore" });
  await waitFor("the mirror to start", async () => (await fetch(`${mirrorUrl}/logs`)).ok);
  daylight("log", "add-mirror", "--dir", p("log"), "--vkey", mirrorKey, "--url", mirrorUrl);
  daylight("log", "set-mirror-quorum", "--dir", p("log"), "1");
  mirrorPrefix = `${mirrorUrl}/${crypto.createHash("sha256").update(ORIGIN).digest("hex")}`;

  base = await h.serveLog(p("log"));
  const window = { valid_from: iso(hours(-24)), valid_until: iso(hours(24 * 30)), sealed_until: iso(hours(24 * 365)) };
  index = await submit(p("agency.key"), draft("request", window));
  // The log publishes a checkpoint holding the entry once the mirror cosigned it.
  await waitFor("a published checkpoint holding the entry", async () => {
    const text = await (await fetch(`${base}/checkpoint`)).text();
    return Number(text.split("\n")[1]) > index && text.includes("\u2014 mirror.example ");
  });
  await h.launchBrowser();
});

after(() => h.close());

describe("verify in the browser against a mirror", () => {
  // The entry page with the mirror's prefix and `key` filled in and the log's
  // own tiles blocked; `setup` adds more routes.
  async function verify(key, setup) {
    const page = await open(`/entries/${index}`);
    const requests = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.route(`${base}/tile/**`, (route) => route.abort());
    await page.fill("#mirror-prefix", mirrorPrefix);
    await page.fill("#mirror-key", key);
    if (setup) await setup(page);
    await page.click("#verify-button");
    await page.waitForSelector("#verify-result[data-state=ok], #verify-result[data-state=fail]", { timeout: 15000 });
    const state = await page.getAttribute("#verify-result", "data-state");
    const text = await page.textContent("#verify-result");
    assert.deepEqual(page.errors, []);
    return { page, state, text, requests };
  }

  test("turns green reading the entry and tiles from the mirror", async () => {
    const { page, state, text, requests } = await verify(mirrorKey);
    assert.equal(state, "ok", text);
    assert.match(text, /Log signature on the checkpoint verifies/);
    assert.match(text, /1 witness cosignature\(s\) verify; 1 required/);
    assert.match(text, /Mirror mirror\.example cosigned: it holds these entries/);
    assert.match(text, /equals the signed root, so the entry is in the log, and readable at the mirror/);
    assert.ok(text.includes(`mirror: ${mirrorKey}`), "shows the mirror key it checked against");
    assert.deepEqual(
      requests.filter((u) => u.startsWith(`${base}/tile/`)),
      [],
      "no tiles asked of the log",
    );
    assert.ok(requests.some((u) => u.startsWith(`${mirrorPrefix}/tile/entries/`)), "the bundle came from the mirror");
    assert.ok(requests.some((u) => u.startsWith(`${mirrorPrefix}/tile/0/`)), "the hash tiles came from the mirror");
    await page.close();
  });

  test("turns red on a tampered mirror tile", async () => {
    const { page, state, text } = await verify(mirrorKey, (page) =>
      page.route(`${mirrorPrefix}/tile/0/**`, async (route) => {
        const resp = await route.fetch();
        const body = Buffer.from(await resp.body());
        body[0] ^= 1; // the first leaf's hash: a sibling on the entry's path
        await route.fulfill({ response: resp, body });
      }),
    );
    assert.equal(state, "fail", text);
    assert.match(text, /not the signed root .*: the mirror's bytes differ from the log's/);
    await page.close();
  });

  test("turns red on a tampered mirror entry bundle", async () => {
    const { page, state, text } = await verify(mirrorKey, (page) =>
      page.route(`${mirrorPrefix}/tile/entries/**`, async (route) => {
        const resp = await route.fetch();
        const body = Buffer.from((await resp.body()).toString("latin1").replace("US-NY", "US-CA"), "latin1");
        await route.fulfill({ response: resp, body });
      }),
    );
    assert.equal(state, "fail", text);
    assert.match(text, /the mirror's bytes for entry \d+ hash to .* but this page shows/);
    await page.close();
  });

  test("turns red with a wrong mirror key", async () => {
    const other = daylight("mirror", "init", "--dir", p("other-mirror"), "--name", "mirror.example");
    const { page, state, text } = await verify(other);
    assert.equal(state, "fail", text);
    assert.match(text, /no cosignature by the mirror mirror\.example\+[0-9a-f]{8}, so that mirror has not confirmed it holds these entries/);
    await page.close();
  });

  test("turns red on a forged mirror cosignature", async () => {
    const { page, state, text } = await verify(mirrorKey, (page) =>
      page.route(`${base}/checkpoint`, async (route) => {
        const resp = await route.fetch();
        const lines = (await resp.text()).split("\n");
        const i = lines.findIndex((l) => l.startsWith("\u2014 mirror.example "));
        const sig = Buffer.from(lines[i].split(" ")[2], "base64");
        sig[sig.length - 1] ^= 1;
        lines[i] = `\u2014 mirror.example ${sig.toString("base64")}`;
        await route.fulfill({ response: resp, body: lines.join("\n") });
      }),
    );
    assert.equal(state, "fail", text);
    assert.match(text, /mirror mirror\.example's cosignature does not verify/);
    await page.close();
  });

  test("turns red when the mirror is unreachable", async () => {
    const { page, state, text } = await verify(mirrorKey, (page) => page.route(`${mirrorPrefix}/**`, (route) => route.abort()));
    assert.equal(state, "fail", text);
    assert.match(text, /could not fetch entry bundle .* from the mirror .*unreachable/);
    await page.close();
  });
});
