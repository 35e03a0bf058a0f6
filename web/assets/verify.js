// Daylight: check an entry in the browser, trusting only the keys in the form.
//
// Everything is read from this server, or from the address given in the
// form: a copy published elsewhere (a bucket, a static site, a mirror) that
// serves the same C2SP tlog-tiles paths (and allows this page's origin).
//
// 1. GET /checkpoint; check the log's Ed25519 signature (C2SP signed-note)
//    and the witnesses' cosignatures (C2SP tlog-cosignature, cosignature/v1)
//    with WebCrypto, against the keys typed in the form.
// 2. GET the entry bundle (C2SP tlog-tiles /tile/entries/N) holding the
//    entry; hash its bytes as an RFC 6962 leaf: SHA-256(0x00 || entry).
// 3. GET the hash tiles (/tile/L/N) needed, and recompute the tree's root
//    (RFC 6962 MTH) from that leaf and the sibling subtrees; it must equal
//    the signed root in the checkpoint.
//
// With a mirror's prefix in the form (C2SP tlog-mirror), steps 2 and 3 read
// from the mirror instead, and with its key the checkpoint must carry the
// mirror's cosignature: the entry is then shown readable at the mirror, a
// copy the log operator does not control.

const enc = new TextEncoder();

class Fail extends Error {}

function b64decode(s) {
  let bin;
  try {
    bin = atob(s);
  } catch {
    throw new Fail(`not base64: ${s.slice(0, 40)}`);
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const leafHash = (entry) => sha256(concat(new Uint8Array([0]), entry));
const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

// A verifier key `name+keyid+base64(type || public key)` (C2SP signed-note).
async function parseKey(text, wantType) {
  const t = text.trim();
  const plus = t.indexOf("+");
  if (plus <= 0) throw new Fail(`not a verifier key: ${t.slice(0, 60)}`);
  const name = t.slice(0, plus);
  const rest = t.slice(plus + 1);
  const id = rest.slice(0, 8);
  if (!/^[0-9a-f]{8}$/.test(id) || rest[8] !== "+") throw new Fail(`not a verifier key: ${t.slice(0, 60)}`);
  const raw = b64decode(rest.slice(9));
  if (raw.length !== 33) throw new Fail(`key ${name}: wrong length`);
  if (raw[0] !== wantType) {
    throw new Fail(`key ${name}: type 0x0${raw[0]}, expected 0x0${wantType} (${wantType === 1 ? "Ed25519 note key" : "cosignature/v1 witness or mirror key"})`);
  }
  const digest = await sha256(concat(enc.encode(name + "\n"), raw));
  if (hex(digest.slice(0, 4)) !== id) throw new Fail(`key ${name}: key ID ${id} does not match the key`);
  let key;
  try {
    key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    throw new Fail(`this browser cannot use Ed25519 keys in WebCrypto (${e.message}); try a current Chrome, Firefox or Safari`);
  }
  return { name, id, key, text: t };
}

// A signed note: text, blank line, signature lines `— name base64(keyid || sig)`.
function parseNote(note) {
  const split = note.indexOf("\n\n");
  if (split < 0) throw new Fail("the checkpoint is not a signed note (no blank line)");
  const text = note.slice(0, split + 1);
  const sigs = [];
  for (const line of note.slice(split + 2).split("\n")) {
    if (line === "") continue;
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Fail(`malformed signature line: ${line.slice(0, 60)}`);
    const raw = b64decode(m[2]);
    if (raw.length < 5) throw new Fail("signature too short");
    sigs.push({ name: m[1], id: hex(raw.slice(0, 4)), sig: raw.slice(4) });
  }
  return { text, sigs };
}

function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || !/^[1-9][0-9]*$|^0$/.test(lines[1])) throw new Fail("malformed checkpoint body");
  const root = b64decode(lines[2]);
  if (root.length !== 32) throw new Fail("checkpoint root hash is not 32 bytes");
  const size = Number(lines[1]);
  if (!Number.isSafeInteger(size)) throw new Fail("checkpoint size too large for this page");
  return { origin: lines[0], size, root };
}

function tilePath(n) {
  let s = String(n % 1000).padStart(3, "0");
  n = Math.floor(n / 1000);
  while (n > 0) {
    s = `x${String(n % 1000).padStart(3, "0")}/${s}`;
    n = Math.floor(n / 1000);
  }
  return s;
}

// The time (seconds) of the cosignature/v1 line (C2SP tlog-cosignature) by
// `key` on `note`, or null when the note carries none; throws when it is
// there and does not verify. `role` names the cosigner: witness or mirror.
async function cosignedAt(note, key, role) {
  const line = note.sigs.find((s) => s.name === key.name && s.id === key.id);
  if (!line) return null;
  if (line.sig.length !== 72) throw new Fail(`${role} ${key.name}: cosignature has the wrong length`);
  const ts = new DataView(line.sig.buffer, line.sig.byteOffset, 8).getBigUint64(0);
  const msg = enc.encode(`cosignature/v1\ntime ${ts}\n${note.text}`);
  if (!(await crypto.subtle.verify("Ed25519", key.key, line.sig.slice(8), msg))) {
    throw new Fail(`${role} ${key.name}'s cosignature does not verify with ${key.name}+${key.id}`);
  }
  return ts;
}

const isoTime = (ts) => new Date(Number(ts) * 1000).toISOString();

async function get(url, what) {
  let resp;
  try {
    resp = await fetch(url, { cache: "no-store" });
  } catch (e) {
    throw new Fail(`could not fetch ${what} (${url}): ${e.message} (the server is unreachable, or does not let this page read it)`);
  }
  if (!resp.ok) throw new Fail(`fetching ${what} (${url}) answered ${resp.status}`);
  return resp;
}

// Reads hashes through C2SP tlog-tiles for a tree of `size` leaves.
class Tiles {
  constructor(source, size, where) {
    this.source = source;
    this.where = where;
    this.size = size;
    this.cache = new Map();
    this.fetched = 0;
  }

  async tile(level, index, width) {
    const path = `/tile/${level}/${tilePath(index)}${width < 256 ? `.p/${width}` : ""}`;
    if (!this.cache.has(path)) {
      const p = get(this.source + path, `hash tile ${path}${this.where}`).then(async (r) => {
        const data = new Uint8Array(await r.arrayBuffer());
        if (data.length !== width * 32) throw new Fail(`tile ${path}${this.where} has ${data.length} bytes, expected ${width * 32}`);
        this.fetched++;
        return data;
      });
      this.cache.set(path, p);
    }
    return this.cache.get(path);
  }

  // The hash at tree level 8*level, position k.
  async hashAt(level, k) {
    const count = Math.floor(this.size / 256 ** level);
    const t = Math.floor(k / 256);
    const width = Math.min(256, count - t * 256);
    const data = await this.tile(level, t, width);
    const o = (k % 256) * 32;
    return data.slice(o, o + 32);
  }

  // The root of the complete subtree of 2^h leaves starting at leaf k * 2^h.
  async perfect(h, k) {
    const level = Math.floor(h / 8);
    const r = h % 8;
    const base = k * 2 ** r;
    let hashes = [];
    for (let j = 0; j < 2 ** r; j++) hashes.push(await this.hashAt(level, base + j));
    while (hashes.length > 1) {
      const next = [];
      for (let j = 0; j < hashes.length; j += 2) next.push(await nodeHash(hashes[j], hashes[j + 1]));
      hashes = next;
    }
    return hashes[0];
  }

  // RFC 6962 MTH of leaves [lo, hi), with leaf `target` replaced by `leaf`.
  async root(lo, hi, target, leaf) {
    const n = hi - lo;
    const holds = lo <= target && target < hi;
    if (n === 1) return holds ? leaf : this.perfect(0, lo);
    let k = 1;
    while (k * 2 < n) k *= 2;
    if (!holds && k * 2 === n) return this.perfect(Math.log2(n), lo / n);
    const left = await this.root(lo, lo + k, target, leaf);
    const right = await this.root(lo + k, hi, target, leaf);
    return nodeHash(left, right);
  }
}

async function entryBytes(source, index, size, where) {
  const t = Math.floor(index / 256);
  const width = Math.min(256, size - t * 256);
  const path = `/tile/entries/${tilePath(t)}${width < 256 ? `.p/${width}` : ""}`;
  const data = new Uint8Array(await (await get(source + path, `entry bundle ${path}${where}`)).arrayBuffer());
  let o = 0;
  for (let j = 0; j < width; j++) {
    if (o + 2 > data.length) throw new Fail(`entry bundle ${path} is truncated`);
    const len = (data[o] << 8) | data[o + 1];
    if (o + 2 + len > data.length) throw new Fail(`entry bundle ${path} is truncated`);
    if (j === index % 256) return { bytes: data.slice(o + 2, o + 2 + len), path };
    o += 2 + len;
  }
  throw new Fail(`entry bundle ${path} does not hold entry ${index}`);
}

async function verify(section, log) {
  const index = Number(section.dataset.index);
  const shownLeaf = section.dataset.leafHash;
  const quorum = Number(document.getElementById("quorum").value || "0");
  const ok = (msg) => log.push({ ok: true, msg });

  const logKey = await parseKey(document.getElementById("log-key").value, 1);
  const witnessKeys = [];
  for (const line of document.getElementById("witness-keys").value.split("\n")) {
    if (line.trim()) witnessKeys.push(await parseKey(line, 4));
  }
  // Optionally a mirror (C2SP tlog-mirror) to read the entry and tiles from.
  const mirror = (document.getElementById("mirror-prefix")?.value || "").trim().replace(/\/+$/, "");
  if (mirror && !/^https?:\/\/[^\s]+$/.test(mirror)) throw new Fail(`not an http(s) address for the mirror: ${mirror}`);
  const mirrorKeyText = (document.getElementById("mirror-key")?.value || "").trim();
  if (mirrorKeyText && !mirror) throw new Fail("a mirror key was given without the mirror's address (its prefix URL)");
  const mirrorKey = mirrorKeyText ? await parseKey(mirrorKeyText, 4) : null;
  log.keys = { log: logKey, witnesses: witnessKeys, mirror: mirrorKey };

  // Where to read: this server, or a published copy given in the form.
  const from = (document.getElementById("read-from")?.value || "").trim().replace(/\/+$/, "");
  if (from && !/^https?:\/\/[^\s]+$/.test(from)) throw new Fail(`not an http(s) address to read from: ${from}`);
  const source = from;
  ok(`Reading the ${mirror ? "checkpoint" : "log"} from ${from || "this server"}.`);
  const noteText = await (await get(`${source}/checkpoint`, "the checkpoint")).text();
  const note = parseNote(noteText);
  const sig = note.sigs.find((s) => s.name === logKey.name && s.id === logKey.id);
  if (!sig) throw new Fail(`the checkpoint carries no signature by the log key ${logKey.name}+${logKey.id}`);
  if (sig.sig.length !== 64 || !(await crypto.subtle.verify("Ed25519", logKey.key, sig.sig, enc.encode(note.text)))) {
    throw new Fail(`the log's signature on the checkpoint does not verify with ${logKey.name}+${logKey.id}`);
  }
  ok(`Log signature on the checkpoint verifies with key ${logKey.name}+${logKey.id}.`);

  const cp = parseCheckpoint(note.text);
  if (cp.origin !== logKey.name) throw new Fail(`the checkpoint is for log ${cp.origin}, not ${logKey.name}`);
  ok(`Checkpoint: log ${cp.origin}, ${cp.size} entries, root hash ${hex(cp.root).slice(0, 16)}…`);

  let cosigned = 0;
  for (const w of witnessKeys) {
    const ts = await cosignedAt(note, w, "witness");
    if (ts === null) {
      log.push({ ok: null, msg: `Witness ${w.name} has not cosigned this checkpoint.` });
      continue;
    }
    cosigned++;
    ok(`Witness ${w.name} cosigned it at ${isoTime(ts)}.`);
  }
  if (cosigned < quorum) throw new Fail(`only ${cosigned} of the ${quorum} required witness cosignatures verify`);
  ok(`${cosigned} witness cosignature(s) verify; ${quorum} required.`);

  if (mirrorKey) {
    const ts = await cosignedAt(note, mirrorKey, "mirror");
    if (ts === null) {
      throw new Fail(`the checkpoint carries no cosignature by the mirror ${mirrorKey.name}+${mirrorKey.id}, so that mirror has not confirmed it holds these entries`);
    }
    ok(`Mirror ${mirrorKey.name} cosigned: it holds these entries (cosigned at ${isoTime(ts)}).`);
  }
  // The entry and the tiles: from the mirror if one is given.
  const data = mirror || source;
  const where = mirror ? ` from the mirror ${mirror}` : "";
  const whose = mirror ? "the mirror's" : "the log's";
  if (mirror) ok(`Reading the entry and the hash tiles from the mirror ${mirror}.`);

  if (index >= cp.size) {
    throw new Fail(`entry ${index} is not yet in the newest checkpoint (${cp.size} entries); try again when the witnesses have cosigned a newer one`);
  }
  const entry = await entryBytes(data, index, cp.size, where);
  const leaf = await leafHash(entry.bytes);
  if (hex(leaf) !== shownLeaf) {
    throw new Fail(`${whose} bytes for entry ${index} hash to ${hex(leaf)}, but this page shows leaf hash ${shownLeaf}`);
  }
  ok(`Entry ${index}: ${entry.bytes.length} bytes from ${entry.path}${where}, leaf hash ${hex(leaf).slice(0, 16)}… matches this page.`);

  const tiles = new Tiles(data, cp.size, where);
  const root = await tiles.root(0, cp.size, index, leaf);
  if (!equal(root, cp.root)) {
    throw new Fail(
      `the tree recomputed from entry ${index} and ${tiles.fetched} tile(s)${where} has root ${hex(root).slice(0, 16)}…, not the signed root ${hex(cp.root).slice(0, 16)}…${mirror ? ": the mirror's bytes differ from the log's" : ""}`,
    );
  }
  ok(`Recomputed the tree root from this entry and ${tiles.fetched} hash tile(s)${where}: it equals the signed root, so the entry is in the log${mirror ? ", and readable at the mirror" : ""}.`);
}

function render(out, log, error) {
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  out.replaceChildren();
  const box = el("div", null, `verdict ${error ? "bad" : "ok"}`);
  box.append(el("h3", error ? "✗ Verification failed" : "✓ Verified: this entry is in the log the keys below sign"));
  const ul = el("ul");
  for (const c of log) ul.append(el("li", `${c.ok === true ? "✓" : "–"} ${c.msg}`));
  if (error) ul.append(el("li", `✗ ${error}`, "fail"));
  box.append(ul);
  if (log.keys) {
    box.append(el("p", "Keys checked against:"));
    const keys = el("ul");
    keys.append(el("li", `log: ${log.keys.log.text}`));
    for (const w of log.keys.witnesses) keys.append(el("li", `witness: ${w.text}`));
    if (log.keys.mirror) keys.append(el("li", `mirror: ${log.keys.mirror.text}`));
    box.append(keys);
  }
  out.append(box);
  out.dataset.state = error ? "fail" : "ok";
}

function main() {
  const section = document.getElementById("verify");
  const button = document.getElementById("verify-button");
  const out = document.getElementById("verify-result");
  if (!section || !button || !out) return;
  if (!globalThis.crypto?.subtle) {
    out.textContent = "This page is not served over a secure connection (or the browser is too old), so WebCrypto is unavailable.";
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.dataset.state = "busy";
    out.replaceChildren(Object.assign(document.createElement("div"), { className: "verdict busy", textContent: "Checking…" }));
    const log = [];
    try {
      await verify(section, log);
      render(out, log, null);
    } catch (e) {
      render(out, log, e instanceof Fail ? e.message : `unexpected error: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

main();
