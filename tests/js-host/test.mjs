// The JavaScript host's test: against the test registry binary, a full and
// then a differential sync in each protocol, each compared with the
// registry's own catalogue and with what the Rust host (`skillsmith`) makes
// of the same registry state; then cancellation, dry run, the HTTP duties
// and the version check. Prints one line per check and a closing
// `N passed, M failed`; exits non-zero on any failure.
//
// Environment: SKILLSMITH_BIN_DIR (default target/debug) holds `skillsmith`
// and `skillsmith-registry`; SKILLS (default 3000) sizes the registry.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { HttpImport, MemoryStore, checkComponentVersion, decideSchedule, loadComponent, runSync } from './host.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const binDir = resolve(repo, process.env.SKILLSMITH_BIN_DIR ?? 'target/debug');
const wasmPath = join(repo, 'target/skillsmith-sync.wasm');
const SKILLS = Number(process.env.SKILLS ?? 3000);

// ---- bookkeeping ------------------------------------------------------------

let passed = 0;
let failed = 0;

/** Runs one named check; a thrown error is a failure, reported and counted. */
async function check(name, fn) {
  const started = performance.now();
  try {
    await fn();
    passed++;
    console.log(`ok   - ${name} (${Math.round(performance.now() - started)} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${e?.stack ?? e}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function assertEq(actual, expected, what) {
  const a = JSON.stringify(actual, bigints);
  const e = JSON.stringify(expected, bigints);
  assert(a === e, `${what}: got ${a}, expected ${e}`);
}

function bigints(_, v) {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** First difference between two id -> updated_at maps, or null. */
function diffCatalogues(a, b) {
  if (a.size !== b.size) return `${a.size} rows vs ${b.size}`;
  for (const [id, at] of a) if (b.get(id) !== at) return `${id}: ${at} vs ${b.get(id)}`;
  return null;
}

function assertSameCatalogue(actual, expected, what) {
  const d = diffCatalogues(actual, expected);
  assert(d === null, `${what} differ: ${d}`);
}

const counts = (r) => ({ added: Number(r.added), updated: Number(r.updated), removed: Number(r.removed) });

// ---- the registry and the Rust host --------------------------------------------

/** Starts `skillsmith-registry`; resolves once it prints its URL. */
async function startRegistry(extraArgs) {
  const child = spawn(join(binDir, 'skillsmith-registry'), ['--skills', String(SKILLS), '--exit-on-stdin-close', ...extraArgs], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`skillsmith-registry exited (${code}) before listening`)));
    lines.on('line', (line) => {
      const m = /^listening on (\S+)/.exec(line);
      if (m) ok(m[1]);
    });
  });
  const origin = new URL(url).origin;
  const admin = async (path, body) => {
    const res = await fetch(`${origin}/_admin${path}`, {
      method: body === undefined ? 'GET' : body === null ? 'DELETE' : 'POST',
      body: body ? JSON.stringify(body) : undefined,
    });
    assert(res.ok, `admin ${path}: HTTP ${res.status}`);
    return res.json();
  };
  const snapshot = async () => new Map((await admin('/snapshot')).map((s) => [s.id, s.updated_at]));
  return { url, origin, admin, snapshot, stop: () => child.stdin.end() };
}

/** `skillsmith sync --json` into `db`; returns its report. */
function rustSync(db, url, home) {
  const out = spawnSync(join(binDir, 'skillsmith'), ['--db', db, '--registry', url, 'sync', '--json'], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: home,
      SKILLSMITH_CACHE_DIR: join(binDir, 'test-component-cache'),
      NO_COLOR: '1',
    },
  });
  assert(out.status === 0, `skillsmith sync failed (${out.error ?? `exit ${out.status}`}):\n${out.stderr}`);
  return JSON.parse(out.stdout);
}

/** The Rust host's registry rows, read back from its SQLite file. */
function readCatalogue(db) {
  // Python's bundled sqlite3 reads the WAL too; Node 20 has no SQLite.
  const script =
    'import json, sqlite3, sys\n' +
    'c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)\n' +
    'print(json.dumps(c.execute("SELECT id, updated_at FROM skills WHERE sync_origin = \'registry\'").fetchall()))';
  const out = spawnSync('python3', ['-c', script, db], { encoding: 'utf8' });
  assert(out.status === 0, `reading ${db} failed (${out.error ?? `exit ${out.status}`}):\n${out.stderr}`);
  return new Map(JSON.parse(out.stdout));
}

// ---- the scenarios ---------------------------------------------------------------

const component = await loadComponent({ wasmPath, generatedDir: join(here, 'generated') });
const scratch = mkdtempSync(join(tmpdir(), 'skillsmith-js-host-'));

/** Full, differential and no-op syncs in one protocol, beside the Rust host. */
async function protocol(label, registryArgs, expectedMode) {
  const registry = await startRegistry(registryArgs);
  const http = new HttpImport({ registry: registry.url, apiKey: 'js-host-key' });
  const store = new MemoryStore();
  const db = join(scratch, `${label}.db`);
  const sync = (opts = {}) => runSync(component, { store, http, registry: registry.url, ...opts });
  try {
    await check(`${label}: full sync equals the registry and the Rust host`, async () => {
      const { report, error } = sync();
      assert(report, `sync failed: ${JSON.stringify(error, bigints)}`);
      assertEq(report.mode, expectedMode, 'mode');
      assertEq(counts(report), { added: SKILLS, updated: 0, removed: 0 }, 'counts');
      assert(report.lastSyncAt, 'last-sync-at is set');
      const remote = await registry.snapshot();
      assertSameCatalogue(store.catalogue(), remote, 'JS and registry catalogues');
      const rust = rustSync(db, registry.url, scratch);
      assertEq(counts(rust), counts(report), 'Rust host counts');
      assertSameCatalogue(store.catalogue(), readCatalogue(db), 'JS and Rust catalogues');
    });

    await check(`${label}: differential sync equals the registry and the Rust host`, async () => {
      await registry.admin('/update', { count: 60 });
      await registry.admin('/delete', { count: 20 });
      await registry.admin('/insert', { count: 15 });
      const { report, error } = sync();
      assert(report, `sync failed: ${JSON.stringify(error, bigints)}`);
      assertEq(counts(report), { added: 15, updated: 60, removed: 20 }, 'counts');
      const remote = await registry.snapshot();
      assertSameCatalogue(store.catalogue(), remote, 'JS and registry catalogues');
      const rust = rustSync(db, registry.url, scratch);
      assertEq(counts(rust), counts(report), 'Rust host counts');
      assertSameCatalogue(store.catalogue(), readCatalogue(db), 'JS and Rust catalogues');
      assertEq(store.history.map((h) => h.status), ['success', 'success'], 'history');
    });

    await check(`${label}: no-op sync changes nothing`, async () => {
      const before = store.catalogue();
      await registry.admin('/stats/reset', {});
      const { report } = sync();
      assertEq(counts(report), { added: 0, updated: 0, removed: 0 }, 'counts');
      assertSameCatalogue(store.catalogue(), before, 'catalogue before and after');
      // A caught-up feed answers with one conditional request (304).
      if (expectedMode === 'changes-feed') assertEq(report.requests, 1, 'requests');
    });
  } finally {
    await http.close();
    registry.stop();
  }
}

await protocol('changes feed', [], 'changes-feed');
await protocol('search API', ['--no-feed'], 'search');

// Cancellation, dry run and the HTTP duties, on a feed registry.
{
  const registry = await startRegistry([]);
  const http = new HttpImport({ registry: registry.url, apiKey: 'js-host-key' });
  try {
    await check('cancel at a page boundary keeps applied pages, the next sync finishes', async () => {
      const store = new MemoryStore();
      let pages = 0;
      const cancelled = runSync(component, {
        store,
        http,
        registry: registry.url,
        onProgress: (p) => {
          if (p.phase === 'fetch') pages = p.pages;
        },
        shouldStop: () => pages >= 3,
      });
      assert(cancelled.report?.cancelled, `expected a cancelled report, got ${JSON.stringify(cancelled, bigints)}`);
      const kept = store.catalogue().size;
      assert(kept > 0 && kept < SKILLS, `kept ${kept} of ${SKILLS}`);
      assertEq(store.history.at(-1).status, 'partial', 'history status');
      assert(/cancel/.test(store.history.at(-1).error), 'history says cancelled');
      const { report } = runSync(component, { store, http, registry: registry.url });
      assert(report && !report.cancelled, 'the resumed sync completes');
      assertEq(Number(report.added), SKILLS - kept, 'the resumed sync adds only the rest');
      assertSameCatalogue(store.catalogue(), await registry.snapshot(), 'JS and registry catalogues');
    });

    await check('dry run reports changes and writes nothing', async () => {
      const store = new MemoryStore();
      runSync(component, { store, http, registry: registry.url });
      await registry.admin('/update', { count: 9 });
      const before = store.catalogue();
      const runs = store.history.length;
      const { report } = runSync(component, { store, http, registry: registry.url, dryRun: true });
      assertEq(counts(report), { added: 0, updated: 9, removed: 0 }, 'counts');
      assertSameCatalogue(store.catalogue(), before, 'catalogue before and after');
      assertEq(store.history.length, runs, 'history length');
    });

    await check('http: other origins, credentials and big bodies are denied; redirects not followed', async () => {
      const denied = (url, headers = []) => {
        try {
          http.send({ url, headers, timeoutMs: 0 }).wait();
        } catch (e) {
          return e.payload;
        }
        throw new Error(`${url} was not refused`);
      };
      const port = Number(new URL(registry.url).port);
      assertEq(denied(`http://127.0.0.1:${port + 1}/functions/v1/health`).tag, 'denied', 'other port');
      assertEq(denied('file:///etc/passwd').tag, 'denied', 'file URL');
      assertEq(denied(registry.url.replace('http://', 'http://u:p@')).tag, 'denied', 'credentials');
      assertEq(denied(`${registry.url}/health`, [['X-Api-Key', 'stolen']]).tag, 'denied', 'x-api-key');
      assertEq(denied(`${registry.url}/health`, [['authorization', 'x']]).tag, 'denied', 'authorization');
      await registry.admin('/fault', { kind: 'redirect', location: 'http://127.0.0.1:9/stolen', path: '/health' });
      const redirected = http.send({ url: `${registry.url}/health`, headers: [], timeoutMs: 0 }).wait();
      await registry.admin('/fault', null);
      assertEq(redirected.status, 302, 'redirect status');
      const small = new HttpImport({ registry: registry.url, apiKey: 'js-host-key', maxBodyBytes: 1024 });
      try {
        const big = (() => {
          try {
            small.send({ url: `${registry.url}/skills-search?trust_tier=community&limit=100`, headers: [], timeoutMs: 0 }).wait();
          } catch (e) {
            return e.payload;
          }
          return null;
        })();
        assertEq(big, { tag: 'too-large', val: 1024 }, 'oversized body');
      } finally {
        await small.close();
      }
      const stats = await registry.admin('/stats');
      assert(stats.recent.every((r) => r.api_key === 'js-host-key'), 'every request carried the host key');
    });
  } finally {
    await http.close();
    registry.stop();
  }
}

await check('a component for another WIT version is refused, a patch version is not', async () => {
  // The real component with every skillsmith:sync name moved to another
  // version (an equal-length rewrite, so the binary stays well-formed).
  const moved = (version) =>
    Buffer.from(readFileSync(wasmPath).toString('latin1').replace(/(skillsmith:sync(?:\/[a-z-]+)?)@0\.1\.0/g, `$1@${version}`), 'latin1');
  await checkComponentVersion(readFileSync(wasmPath));
  await checkComponentVersion(moved('0.2.1'));
  let message = null;
  try {
    await checkComponentVersion(moved('0.3.0'));
  } catch (e) {
    message = e.message;
  }
  assert(message, 'the 0.3.0 component was accepted');
  for (const needle of ['skillsmith:sync@0.2.0', 'skillsmith:sync/engine@0.3.0']) {
    assert(message.includes(needle), `the message names ${needle}: ${message}`);
  }
});

await check('schedule.decide is callable', async () => {
  const d = decideSchedule(
    component,
    { enabled: true, intervalMs: 86_400_000n, lastAttemptMs: undefined, lastSuccessMs: undefined, consecutiveFailures: 0 },
    BigInt(Date.now()),
    1n,
  );
  assert(d.due === true, `a never-synced catalogue is due: ${JSON.stringify(d, bigints)}`);
});

rmSync(scratch, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
