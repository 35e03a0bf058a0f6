// What the browser tests share: the daylight binary and scratch folder, a
// log server started and waited for, sample drafts and their submission,
// and a headless chromium with a page opener and screenshots.
//
// Environment: DAYLIGHT_BIN (default ../../target/debug/daylight),
// CHROMIUM (default /usr/bin/chromium), SCREENSHOTS=DIR to save a
// screenshot of each page (desktop and phone widths).

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.DAYLIGHT_BIN || path.resolve(here, "../../target/debug/daylight");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const EXAMPLES = path.resolve(here, "../../schemas/examples");
const SHOTS = process.env.SCREENSHOTS;

export const daylight = (...args) => execFileSync(BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export const iso = (d) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
export const hours = (n) => new Date(Date.now() + n * 3600 * 1000);

export const rowCount = (page) => page.locator("table.entries tbody tr").count();

// One test file's world: its scratch folder (`p(name)` names a file in it),
// the processes it started, its log's address (`base`) and its browser.
export function harness(prefix) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const p = (name) => path.join(tmp, name);
  const children = [];
  const h = { p, base: undefined, browser: undefined };

  // A sample draft from schemas/examples with `changes` over it, written to a file.
  h.draft = (name, changes) => {
    const v = { ...JSON.parse(fs.readFileSync(path.join(EXAMPLES, `${name}.json`), "utf8")), ...changes };
    const file = p(`${name}-${Math.random().toString(16).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(v));
    return file;
  };

  // `daylight agency submit` to this log; the index it printed.
  h.submit = async (key, file) => {
    const out = p(`bundle-${Math.random().toString(16).slice(2)}`);
    const text = daylight("agency", "submit", "--log", h.base, "--key", key, "--draft", file, "--out", out);
    const n = Number(text.split(/\s+/).filter((w) => /^\d+$/.test(w)).pop());
    assert.ok(Number.isInteger(n), `agency submit printed ${text}`);
    return n;
  };

  // A daylight process, stopped (SIGINT, in the order started) by close().
  h.spawn = (args, options) => {
    const child = spawn(BIN, args, options);
    children.push(child);
    return child;
  };

  // `daylight log serve --dir DIR` (and `extra` arguments) on a free port,
  // once it answers; its address is h.base.
  h.serveLog = async (dir, ...extra) => {
    const port = await freePort();
    h.base = `http://127.0.0.1:${port}`;
    const server = h.spawn(["log", "serve", "--dir", dir, "--listen", `127.0.0.1:${port}`, ...extra], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    server.stderr.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 20000;
    for (;;) {
      try {
        if ((await fetch(`${h.base}/api/v1/log`)).ok) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`log did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return h.base;
  };

  h.launchBrowser = async () => {
    // Inside the scratch folder, so that close() removes the profile too.
    const dataDir = fs.mkdtempSync(p("chromium-"));
    h.browser = await chromium.launchPersistentContext(dataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
      viewport: { width: 1200, height: 900 },
    });
    return h.browser;
  };

  h.close = async () => {
    await h.browser?.close();
    for (const child of children) {
      child.kill("SIGINT");
      await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  };

  // A page of this log's web view, which must answer 200; page.errors
  // collects its script errors.
  h.open = async (url) => {
    const page = await h.browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const resp = await page.goto(`${h.base}${url}`);
    assert.equal(resp.status(), 200, url);
    page.errors = errors;
    return page;
  };

  return h;
}

// With SCREENSHOTS set, the page at desktop and phone widths.
export async function shot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(SHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize({ width: 1200, height: 900 });
}
