// A host for the skillsmith:sync component in Node.js (20+), written from
// docs/embedding.md alone: section numbers below (§n) point into it.
//
// The component is transpiled by jco (`--instantiation sync`) into
// generated/; this module checks its version, compiles its core modules once,
// and runs each sync in a fresh instance with imports written here: HTTP
// over `fetch`, an in-memory catalogue, and log/progress/sleep/random.

import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';

import { componentWit } from '@bytecodealliance/jco';
import * as wasiCli from '@bytecodealliance/preview2-shim/cli';
import * as wasiIo from '@bytecodealliance/preview2-shim/io';

/** The contract this host implements (§2). */
export const WIT_VERSION = '0.2.0';
export const WIT_PACKAGE = `skillsmith:sync@${WIT_VERSION}`;
const ENGINE_EXPORT = `skillsmith:sync/engine@${WIT_VERSION}`;

/** How often blocking waits look at `shouldStop` (ms). */
const STOP_POLL_MS = 50;

// ---- loading (§1, §2) ---------------------------------------------------

/**
 * Refuses a component built for another version of the contract. jco binds
 * imports by unversioned name, so nothing else would notice (§2).
 * @param {Uint8Array} wasm the component's bytes
 */
export async function checkComponentVersion(wasm) {
  const wit = await componentWit(wasm);
  // The component's own world comes first in the printed WIT.
  const world = wit.slice(wit.indexOf('world '), wit.indexOf('\n}'));
  const names = { import: [], export: [] };
  for (const [, kind, name] of world.matchAll(/^\s*(import|export) (skillsmith:sync\/[^;\s]+);/gm)) {
    names[kind].push(name);
  }
  const version = (n) => n.slice(n.lastIndexOf('@') + 1);
  const foreign = [...names.import, ...names.export].filter((n) => !semverCompatible(version(n), WIT_VERSION));
  const engine = names.export.some((n) => n.startsWith('skillsmith:sync/engine@'));
  if (foreign.length > 0 || !engine) {
    throw new Error(
      `the sync component does not match this host: the host implements ${WIT_PACKAGE} and ` +
        `needs the export ${ENGINE_EXPORT}; the component exports [${names.export.join(', ')}] ` +
        `and imports [${names.import.join(', ')}]`,
    );
  }
}

/**
 * Semver compatibility as wasmtime's linker applies it: same major, and for
 * 0.x also the same minor (so 0.2.1 may stand in for 0.2.0, 0.3.0 may not).
 */
function semverCompatible(a, b) {
  const [am, an] = a.split('.');
  const [bm, bn] = b.split('.');
  return am === bm && (am !== '0' || an === bn);
}

/**
 * Loads the transpiled component: checks the original's version, compiles
 * the core modules once. `instantiate(imports)` then makes fresh instances.
 * @param {{ wasmPath: string, generatedDir: string }} paths
 */
export async function loadComponent({ wasmPath, generatedDir }) {
  await checkComponentVersion(readFileSync(wasmPath));
  const bindings = await import(pathToFileURL(join(generatedDir, 'skillsmith-sync.js')).href);
  const modules = new Map();
  const getCoreModule = (path) => {
    if (!modules.has(path)) modules.set(path, new WebAssembly.Module(readFileSync(join(generatedDir, path))));
    return modules.get(path);
  };
  return { instantiate: (imports) => bindings.instantiate(getCoreModule, imports) };
}

// ---- errors as the component sees them ------------------------------------

// jco turns an exception with an own `payload` into the `err` case of the
// import's `result`; any other exception is a trap.
class StoreFailure extends Error {
  constructor(tag, val) {
    super(val ?? tag);
    this.payload = val === undefined ? { tag } : { tag, val };
  }
}
const invalid = (text) => new StoreFailure('invalid', text);

class HttpFailure extends Error {
  constructor(err) {
    super(`${err.tag}${err.val === undefined ? '' : `: ${err.val}`}`);
    this.payload = err;
  }
}

/** A guest that asks `wasi:cli/exit` to end the process traps instead (§2). */
export class GuestExit extends Error {}

// ---- store (§5) -----------------------------------------------------------

/** Byte order of the UTF-8 encoding, as `registry-ids` requires (§5). */
const utf8 = (s) => Buffer.from(s, 'utf8');

/** An in-memory catalogue with atomic pages. */
export class MemoryStore {
  /** @type {Map<string, { skill: object, source: 'registry' | 'local' }>} */
  #rows = new Map();
  #checkpoint = { mode: undefined, cursor: undefined, etag: undefined, resyncPending: false };
  #lastSyncAt = undefined;
  #openRun = null;
  #nextRun = 1n;
  /** Sorted registry ids with their UTF-8 keys; rebuilt after a write. */
  #sorted = null;
  /** Closed runs, oldest first. */
  history = [];
  /** A dry run's store refuses every write (§3). */
  readOnly = false;

  readState() {
    let registrySkills = 0n;
    for (const r of this.#rows.values()) if (r.source === 'registry') registrySkills++;
    return { lastSyncAt: this.#lastSyncAt, ...this.#checkpoint, registrySkills };
  }

  localVersions(ids) {
    return ids.map((id) => {
      const r = this.#rows.get(id);
      return r ? { updatedAt: r.skill.updatedAt, source: r.source } : undefined;
    });
  }

  registryIds(after, limit) {
    if (!this.#sorted) {
      this.#sorted = [...this.#rows]
        .filter(([, r]) => r.source === 'registry')
        .map(([id]) => ({ id, key: utf8(id) }))
        .sort((a, b) => Buffer.compare(a.key, b.key));
    }
    let lo = 0;
    if (after !== undefined) {
      // First id strictly greater than `after`.
      const key = utf8(after);
      let hi = this.#sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (Buffer.compare(this.#sorted[mid].key, key) <= 0) lo = mid + 1;
        else hi = mid;
      }
    }
    return this.#sorted.slice(lo, lo + limit).map((e) => e.id);
  }

  registryRows(ids) {
    return ids.map((id) => {
      const r = this.#rows.get(id);
      if (r?.source !== 'registry') return undefined;
      const { trustTier, qualityScore, categories } = r.skill;
      return { id, trustTier, scored: qualityScore !== undefined, categories };
    });
  }

  beginRun(mode) {
    this.#writable();
    if (this.#openRun) {
      // Its own case of `store-error`, which the guest reports as `busy` (§5).
      throw new StoreFailure('run-open', `run ${this.#openRun.id} of this host`);
    }
    this.#openRun = { id: this.#nextRun++, mode, pages: 0 };
    return this.#openRun.id;
  }

  applyPage(run, page) {
    this.#writable();
    this.#checkRun(run);
    // Everything is checked before anything changes, and nothing below can
    // fail: that is what makes the page atomic in a single-threaded store.
    for (const s of page.upserts) {
      if (s.id === '') throw invalid(`a skill with an empty id (name ${JSON.stringify(s.name)}) cannot be stored`);
      if (s.qualityScore !== undefined && !(s.qualityScore >= 0 && s.qualityScore <= 1)) {
        throw invalid(`skill ${JSON.stringify(s.id)}: quality-score ${s.qualityScore} is outside 0..=1`);
      }
    }
    for (const id of page.removals) {
      if (this.#rows.get(id)?.source === 'registry') this.#rows.delete(id);
    }
    for (const skill of page.upserts) {
      if (this.#rows.get(skill.id)?.source !== 'local') this.#rows.set(skill.id, { skill, source: 'registry' });
    }
    const { mode, cursor, etag, resyncPending } = page.checkpoint;
    this.#checkpoint = { mode, cursor, etag, resyncPending };
    this.#sorted = null;
    this.#openRun.pages++;
  }

  finishRun(run, outcome) {
    this.#writable();
    this.#checkRun(run);
    this.history.push({ run, mode: this.#openRun.mode, ...outcome });
    if (outcome.status === 'success' && outcome.lastSyncAt !== undefined) this.#lastSyncAt = outcome.lastSyncAt;
    this.#openRun = null;
  }

  /** Closes the run a trapped guest left open (§2). */
  abandonOpenRun(error) {
    if (!this.#openRun) return;
    const zero = { added: 0n, updated: 0n, unchanged: 0n, removed: 0n, skipped: 0n };
    const status = this.#openRun.pages > 0 ? 'partial' : 'failed';
    this.finishRun(this.#openRun.id, { status, counts: zero, error });
  }

  get openRun() {
    return this.#openRun?.id;
  }

  /** Registry rows as id -> updated-at. */
  catalogue() {
    const out = new Map();
    for (const [id, r] of this.#rows) if (r.source === 'registry') out.set(id, r.skill.updatedAt);
    return out;
  }

  #writable() {
    if (this.readOnly) throw invalid('dry run: the store is read-only and a dry run writes nothing');
  }

  #checkRun(run) {
    if (!this.#openRun) throw invalid(`unknown run ${run}: no run is open`);
    if (this.#openRun.id !== run) throw invalid(`unknown run ${run}: the open run is ${this.#openRun.id}`);
  }
}

// ---- http (§4) ------------------------------------------------------------

const FORBIDDEN_HEADERS = new Set(['x-api-key', 'authorization', 'cookie', 'host']);

/** Scheme, host and port with the default port filled in, or null. */
function originOf(url) {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  return `${url.protocol}//${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/**
 * The `http` import: policy here, fetches on a worker (see http-worker.mjs
 * for why), waits blocking.
 */
export class HttpImport {
  #origin;
  #apiKey;
  #maxBodyBytes;
  #defaultTimeoutMs;
  #maxTimeoutMs;
  #worker;
  #port;
  #signal = new Int32Array(new SharedArrayBuffer(4));
  #results = new Map();
  #nextId = 1;
  /** Set by the sync that uses this import; lets a blocking wait give up. */
  shouldStop = () => false;

  constructor({ registry, apiKey, maxBodyBytes = 16 * 1024 * 1024, defaultTimeoutMs = 30_000, maxTimeoutMs = 60_000 }) {
    this.#origin = originOf(new URL(registry));
    if (!this.#origin) throw new Error(`registry URL ${registry} is not http(s)`);
    this.#apiKey = apiKey;
    this.#maxBodyBytes = maxBodyBytes;
    this.#maxTimeoutMs = maxTimeoutMs;
    this.#defaultTimeoutMs = Math.min(defaultTimeoutMs, maxTimeoutMs);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#worker = new Worker(new URL('./http-worker.mjs', import.meta.url), {
      workerData: { port: port2, signal: this.#signal },
      transferList: [port2],
    });
    // Neither keeps the process alive; `close()` ends the worker.
    this.#worker.unref();
    this.#port.unref();
  }

  /** `http.send`: checks the request, starts it, returns a `Pending`. */
  send(request) {
    const refused = this.#check(request);
    if (refused) return new Pending(this, 0, { err: { tag: 'denied', val: refused } });
    const id = this.#nextId++;
    const headers = request.headers.map(([n, v]) => [n.trim(), v]);
    if (this.#apiKey) headers.push(['x-api-key', this.#apiKey]);
    const timeoutMs = request.timeoutMs === 0 ? this.#defaultTimeoutMs : Math.min(request.timeoutMs, this.#maxTimeoutMs);
    this.#worker.postMessage({ id, url: request.url, headers, timeoutMs, maxBodyBytes: this.#maxBodyBytes });
    return new Pending(this, id, undefined);
  }

  /** Why the request is refused (the text of `denied`), or null. */
  #check(request) {
    let url;
    try {
      url = new URL(request.url);
    } catch {
      return `malformed URL ${JSON.stringify(request.url)}`;
    }
    if (url.username || url.password) return `URL ${JSON.stringify(request.url)} carries credentials`;
    const origin = originOf(url);
    if (origin !== this.#origin) {
      return `origin ${origin ?? url.protocol} is not allowed; this sync may only reach ${this.#origin}`;
    }
    for (const [name] of request.headers) {
      if (FORBIDDEN_HEADERS.has(name.trim().toLowerCase())) {
        return `header ${JSON.stringify(name)} may not be set by the sync component (credentials and routing are the host's)`;
      }
    }
    try {
      new Headers(request.headers);
    } catch (e) {
      return `malformed request header: ${e.message}`;
    }
    return null;
  }

  /** Blocks until request `id` has a result. */
  await(id) {
    for (;;) {
      this.#drain();
      const done = this.#results.get(id);
      if (done) {
        this.#results.delete(id);
        if (done.err?.tag === 'too-large') done.err.val = BigInt(this.#maxBodyBytes);
        return done;
      }
      // Re-check after reading the counter, so a result posted in between
      // is not slept through; then sleep until the worker bumps it.
      const seen = Atomics.load(this.#signal, 0);
      this.#drain();
      if (this.#results.has(id)) continue;
      Atomics.wait(this.#signal, 0, seen, STOP_POLL_MS);
      if (this.shouldStop()) {
        this.abandon(id);
        return { err: { tag: 'cancelled' } };
      }
    }
  }

  abandon(id) {
    this.#worker.postMessage({ abort: id });
  }

  #drain() {
    for (let m; (m = receiveMessageOnPort(this.#port)); ) this.#results.set(m.message.id, m.message);
  }

  async close() {
    await this.#worker.terminate();
  }
}

/** The `http.pending` resource. */
class Pending {
  #http;
  #id;
  #result;
  #taken = false;

  constructor(http, id, result) {
    this.#http = http;
    this.#id = id;
    this.#result = result;
  }

  wait() {
    if (this.#taken) throw new HttpFailure({ tag: 'other', val: 'this response was already taken by an earlier wait' });
    this.#taken = true;
    const r = this.#result ?? this.#http.await(this.#id);
    if (r.err) throw new HttpFailure(r.err);
    return r.ok;
  }

  /** The guest dropped the handle: abandon the request if it still runs. */
  [Symbol.dispose]() {
    if (!this.#taken && this.#result === undefined) this.#http.abandon(this.#id);
  }
}

// ---- host (§6) and the import object --------------------------------------

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

/** A blocking sleep that checks `shouldStop` every `STOP_POLL_MS`. */
function sleepBlocking(ms, shouldStop) {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + ms;
  for (;;) {
    if (shouldStop()) return 'stop';
    const left = end - Date.now();
    if (left <= 0) return 'proceed';
    Atomics.wait(cell, 0, 0, Math.min(left, STOP_POLL_MS));
  }
}

function imports({ store, http, log, onProgress, shouldStop }) {
  // WASI (§2): the shim's streams and terminals, with nothing ambient in
  // them. The shim's stdio are this process's; run the host with stdin from
  // /dev/null (run.sh does). A product host would substitute its own.
  wasiCli._setEnv({});
  wasiCli._setArgs([]);
  wasiCli._setCwd(undefined);
  return {
    'skillsmith:sync/types': {},
    'skillsmith:sync/http': { send: (r) => http.send(r), Pending },
    'skillsmith:sync/store': {
      readState: () => store.readState(),
      localVersions: (ids) => store.localVersions(ids),
      registryIds: (after, limit) => store.registryIds(after, limit),
      registryRows: (ids) => store.registryRows(ids),
      beginRun: (mode) => store.beginRun(mode),
      applyPage: (run, page) => store.applyPage(run, page),
      finishRun: (run, outcome) => store.finishRun(run, outcome),
    },
    'skillsmith:sync/host': {
      log: (level, message) => log(level, message),
      progress: (report) => {
        onProgress(report);
        return shouldStop() ? 'stop' : 'proceed';
      },
      sleep: (ms) => sleepBlocking(Number(ms), shouldStop),
      random: () => randomFillSync(new BigUint64Array(1))[0],
    },
    'wasi:cli/environment': wasiCli.environment,
    // Never let the guest end this process.
    'wasi:cli/exit': {
      exit: (status) => {
        throw new GuestExit(`the component called wasi:cli/exit (${status.tag})`);
      },
    },
    'wasi:cli/stdin': wasiCli.stdin,
    'wasi:cli/stdout': wasiCli.stdout,
    'wasi:cli/stderr': wasiCli.stderr,
    'wasi:cli/terminal-input': wasiCli.terminalInput,
    'wasi:cli/terminal-output': wasiCli.terminalOutput,
    'wasi:cli/terminal-stdin': wasiCli.terminalStdin,
    'wasi:cli/terminal-stdout': wasiCli.terminalStdout,
    'wasi:cli/terminal-stderr': wasiCli.terminalStderr,
    'wasi:io/error': wasiIo.error,
    'wasi:io/poll': wasiIo.poll,
    'wasi:io/streams': wasiIo.streams,
  };
}

// ---- one sync (§2 call order, §3) -------------------------------------------

/**
 * Runs one sync in a fresh instance. Returns `{ report }` or `{ error }`
 * (a `sync-error`); a trap is thrown, after closing any run left open.
 */
export function runSync(component, options) {
  const {
    store,
    http,
    registry,
    force = false,
    dryRun = false,
    pageSize = 100,
    mode, // undefined: discover (§3)
    retryBudgetMs = 120_000,
    logLevel = 'warn',
    onProgress = () => {},
    shouldStop = () => false,
  } = options;
  const log = (level, message) => {
    if (LEVELS.indexOf(level) >= LEVELS.indexOf(logLevel)) console.error(`[guest ${level}] ${message}`);
  };
  http.shouldStop = shouldStop;
  store.readOnly = dryRun;
  const root = component.instantiate(imports({ store, http, log, onProgress, shouldStop }));
  let crash;
  try {
    const report = root.engine.run({
      registry,
      force,
      dryRun,
      pageSize,
      mode,
      nowMs: BigInt(Date.now()),
      retryBudgetMs: BigInt(retryBudgetMs),
    });
    return { report };
  } catch (e) {
    if (e && Object.hasOwn(e, 'payload')) return { error: e.payload };
    crash = e;
    throw e;
  } finally {
    store.readOnly = false;
    // A trap (or a guest that forgot) leaves the run open; close it (§2).
    if (store.openRun !== undefined) {
      const why = crash ? `the sync component crashed: ${crash}` : 'the sync component returned without closing its run';
      store.abandonOpenRun(why);
    }
  }
}

/** `schedule.decide` in a fresh instance; it makes no import calls (§2). */
export function decideSchedule(component, config, nowMs, jitterSeed) {
  const noHttp = {
    send() {
      throw new Error('schedule.decide makes no requests');
    },
  };
  const quiet = () => {};
  const root = component.instantiate(
    imports({ store: new MemoryStore(), http: noHttp, log: quiet, onProgress: quiet, shouldStop: () => false }),
  );
  return root.schedule.decide(config, nowMs, jitterSeed);
}
