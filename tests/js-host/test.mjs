// The test of the Node host (host-node/): its CLI and library against the
// test registry (`skillsmith-registry` on loopback), on real SQLite files,
// with the real component and the real Rust CLI beside it.
//
//   - a full, a differential and a no-op sync in each protocol (the changes
//     feed, and search mode with --no-feed), each compared with the
//     registry's own snapshot and, column by column, with what the Rust
//     host writes from the same registry state;
//   - the two hosts taking turns on one catalogue: `skillsmith` reads and
//     searches what Node wrote, its sync of Node's catalogue is a no-op of
//     one request with the feed, and the reverse;
//   - cancellation, dry runs, the sync lease, a kill -9 in the middle of a
//     sync, command-line failures (each exit code and message), `| head`;
//   - the store as the Rust store keeps the file: tiers as its own CHECK
//     lists them (an upstream schema 17 file adopted by `skillsmith`),
//     removals cascading to `skill_categories`, the WAL bounded per page;
//   - the HTTP duties: origin, credentials, redirects, body cap (also a gzip
//     bomb), compression, the API key, timestamps, four requests at most;
//   - hostile components (tests/hostile): spinning, spinning through host
//     calls, a memory bomb, a panic, garbage store calls, the environment,
//     ambient imports refused at load, another WIT version refused.
//
// Prints one line per check and a closing `N passed, M failed`; exits
// non-zero on any failure. Environment: SKILLSMITH_BIN_DIR (default
// target/debug) holds `skillsmith` and `skillsmith-registry`; SKILLS
// (default 3000) sizes the registries; KEEP_TMP=1 keeps the scratch folder.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import {
  CatalogueStore,
  DEFAULT_HTTP_POLICY,
  HostFailure,
  HttpImport,
  INTERRUPTED_MESSAGE,
  WIT_PACKAGE,
  allowedTiers,
  bindingName,
  checkContractVersion,
  decideSchedule,
  loadComponent,
  openCatalogue,
  openDatabase,
  parseWorld,
  sync,
} from '../../host-node/index.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const binDir = resolve(repo, process.env.SKILLSMITH_BIN_DIR ?? 'target/debug');
const wasmPath = join(repo, 'target/skillsmith-sync.wasm');
const hostileDir = join(repo, 'target/hostile-wasm');
const cliPath = join(repo, 'host-node/cli.mjs');
const SKILLS = Number(process.env.SKILLS ?? 3000);
const scratch = mkdtempSync(join(tmpdir(), 'skillsmith-js-host-'));
// Transpiled components live here for this run only.
const cacheDir = join(scratch, 'cache');

// ---- bookkeeping -----------------------------------------------------------------

let passed = 0;
let failed = 0;

// A promise a failed check left behind is one more failure, not a crash
// that would hide the count.
process.on('unhandledRejection', (e) => {
  failed++;
  console.log(`FAIL - a promise rejected after its check: ${e?.stack ?? e}`);
});

/** The longest any one check may take: a host that hangs fails, it does not stall the suite. */
const CHECK_TIMEOUT_MS = 180_000;

/** Runs one named check; a thrown error is a failure, reported and counted. */
async function check(name, fn) {
  const started = performance.now();
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, fail) => {
        timer = setTimeout(() => fail(new Error(`did not finish within ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    passed++;
    console.log(`ok   - ${name} (${Math.round(performance.now() - started)} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${e?.stack ?? e}`);
  } finally {
    clearTimeout(timer);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const plain = (_, v) => (typeof v === 'bigint' ? Number(v) : v);

function assertEq(actual, expected, what) {
  const a = JSON.stringify(actual, plain);
  const e = JSON.stringify(expected, plain);
  assert(a === e, `${what}: got ${a}, expected ${e}`);
}

/** First difference between two maps, or null. */
function diffMaps(a, b) {
  if (a.size !== b.size) return `${a.size} rows vs ${b.size}`;
  for (const [k, v] of a) if (b.get(k) !== v) return `${k}: ${v} vs ${b.get(k)}`;
  return null;
}

function assertSameRows(actual, expected, what) {
  const d = diffMaps(actual, expected);
  assert(d === null, `${what} differ: ${d}`);
}

const counts = (r) => ({ added: Number(r.added), updated: Number(r.updated), removed: Number(r.removed) });

let dbSeq = 0;
/** A fresh catalogue path in the scratch folder. */
const freshDb = (label) => join(scratch, `${String(++dbSeq).padStart(2, '0')}-${label.replace(/\W+/g, '-')}.db`);

// ---- processes ---------------------------------------------------------------------

/**
 * Runs a program to its end; resolves with its status, signal and output.
 * `onSpawn` gets the child (to kill it).
 */
function run(cmd, args, { env, onSpawn, input } = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.once('error', fail);
    child.once('close', (status, signal) =>
      ok({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.end(input ?? '');
    onSpawn?.(child);
  });
}

/** The environment of every CLI run: a private HOME, nothing inherited but PATH. */
const cliEnv = (extra = {}) => ({
  PATH: process.env.PATH,
  HOME: join(scratch, 'home'),
  SKILLSMITH_CACHE_DIR: join(binDir, 'test-component-cache'),
  NO_COLOR: '1',
  ...extra,
});

/** `node host-node/cli.mjs ARGS`, with its JSON output parsed when there is one. */
async function nodeCli(args, options = {}) {
  const r = await run(process.execPath, [cliPath, ...args], { env: cliEnv({ SKILLSMITH_CACHE_DIR: cacheDir, ...options.env }), onSpawn: options.onSpawn });
  if (args.includes('--json')) {
    try {
      r.json = JSON.parse(r.stdout);
    } catch {
      r.json = undefined;
    }
  }
  return r;
}

/** `node cli.mjs sync --json` that must succeed; returns its report. */
async function nodeSync(db, url, extra = []) {
  const r = await nodeCli(['sync', '--db', db, '--registry', url, '--json', ...extra]);
  assert(r.status === 0 && r.json, `node sync failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  return r.json;
}

/** `skillsmith ARGS` with a private HOME. */
function rust(args) {
  const out = spawnSync(join(binDir, 'skillsmith'), args, { encoding: 'utf8', env: cliEnv() });
  return out;
}

/** `skillsmith --db DB --registry URL sync --json`, which must succeed. */
function rustSync(db, url) {
  const out = rust(['--db', db, '--registry', url, 'sync', '--json']);
  assert(out.status === 0, `skillsmith sync failed (${out.error ?? `exit ${out.status}`}):\n${out.stderr}`);
  return JSON.parse(out.stdout);
}

// ---- the registry ------------------------------------------------------------------------

/** Starts `skillsmith-registry`; resolves once it prints its URL. */
async function startRegistry(extraArgs = [], skills = SKILLS) {
  const child = spawn(join(binDir, 'skillsmith-registry'), ['--skills', String(skills), '--exit-on-stdin-close', ...extraArgs], {
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
  return { url, origin, admin, snapshot, pid: child.pid, stop: () => child.stdin.end() };
}

// ---- catalogues ---------------------------------------------------------------------------

/** Runs `fn` on a read-only connection to `db`. */
async function reading(db, fn) {
  const conn = await openDatabase(db, { readOnly: true });
  try {
    return fn(conn);
  } finally {
    conn.close();
  }
}

/** Registry rows as id -> updated_at. */
const catalogue = (db) =>
  reading(db, (c) => new Map(c.prepare("SELECT id, updated_at FROM skills WHERE sync_origin = 'registry'").all().map((r) => [r.id, r.updated_at])));

/** Every column of every skill, as id -> JSON: what two hosts must agree on. */
const fullRows = (db) =>
  reading(db, (c) => new Map(c.prepare('SELECT * FROM skills ORDER BY id').all().map((r) => [r.id, JSON.stringify(r)])));

/** A digest of everything a sync may change, to show that nothing did. */
const contentDigest = (db) =>
  reading(db, (c) => {
    const h = createHash('sha256');
    for (const table of ['skills', 'sync_history', 'sync_run', 'sync_state', 'sync_config', 'sync_schedule', 'sync_lease']) {
      h.update(JSON.stringify(c.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all()));
    }
    return h.digest('hex');
  });

const history = (db) =>
  reading(db, (c) => c.prepare('SELECT h.status, h.error_message, r.pid FROM sync_history h LEFT JOIN sync_run r ON r.history_id = h.id ORDER BY h.rowid').all());

const integrity = (db) => reading(db, (c) => c.prepare('PRAGMA integrity_check').get().integrity_check);

const leaseRows = (db) => reading(db, (c) => c.prepare('SELECT * FROM sync_lease').all());

/** A loopback port nothing listens on: one just freed. */
async function closedPort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Resolves when `cond()` (async) holds, checking every 20 ms, or fails after `ms`. */
async function until(what, cond, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- the scenarios ---------------------------------------------------------------------------

mkdirSync(join(scratch, 'home'), { recursive: true });
console.log(`node ${process.version}; SQLite through ${await bindingName()}; ${WIT_PACKAGE}; ${SKILLS} skills; scratch ${scratch}`);
const component = await loadComponent(wasmPath, { cacheDir });

/** Full, differential and no-op syncs in one protocol, both hosts on each file. */
async function protocol(label, registryArgs, expectedMode) {
  const registry = await startRegistry(registryArgs);
  const ours = freshDb(`${label}-node`);
  const theirs = freshDb(`${label}-rust`);
  const feed = expectedMode === 'changes-feed';
  try {
    await check(`${label}: a full sync by the Node CLI equals the registry, and the Rust host writes the same rows`, async () => {
      const report = await nodeSync(ours, registry.url);
      assertEq(report.mode, expectedMode, 'mode');
      assertEq(counts(report), { added: SKILLS, updated: 0, removed: 0 }, 'counts');
      assert(report.last_sync_at, 'last_sync_at is set');
      assertSameRows(await catalogue(ours), await registry.snapshot(), 'Node and registry catalogues');
      const rust = rustSync(theirs, registry.url);
      assertEq(counts(rust), counts(report), 'Rust host counts');
      assertSameRows(await fullRows(ours), await fullRows(theirs), 'the skills rows Node and Rust wrote');
      assertEq(await integrity(ours), 'ok', 'integrity_check');
      assertEq(await leaseRows(ours), [], 'lease released');
    });

    await check(`${label}: a differential sync by the Node CLI equals the registry and the Rust host`, async () => {
      await registry.admin('/update', { count: 60 });
      await registry.admin('/delete', { count: 20 });
      await registry.admin('/insert', { count: 15 });
      const report = await nodeSync(ours, registry.url);
      assertEq(counts(report), { added: 15, updated: 60, removed: 20 }, 'counts');
      assertSameRows(await catalogue(ours), await registry.snapshot(), 'Node and registry catalogues');
      const rust = rustSync(theirs, registry.url);
      assertEq(counts(rust), counts(report), 'Rust host counts');
      assertSameRows(await fullRows(ours), await fullRows(theirs), 'the skills rows Node and Rust wrote');
      assertEq((await history(ours)).map((h) => h.status), ['success', 'success'], 'history');
    });

    await check(`${label}: skillsmith syncs the Node host's catalogue${feed ? ' with one request' : ''}, changing nothing`, async () => {
      const before = await fullRows(ours);
      await registry.admin('/stats/reset', {});
      const rust = rustSync(ours, registry.url);
      assertEq(counts(rust), { added: 0, updated: 0, removed: 0 }, 'counts');
      if (feed) {
        assertEq(rust.requests, 1, "the Rust host's request count");
        assertEq((await registry.admin('/stats')).total, 1, "the registry's request count");
      }
      assertSameRows(await fullRows(ours), before, 'rows before and after');
      assertSameRows(await catalogue(ours), await registry.snapshot(), 'catalogue and registry');
    });

    await check(`${label}: the Node host syncs skillsmith's catalogue${feed ? ' with one request' : ''}, and catches up after changes`, async () => {
      await registry.admin('/stats/reset', {});
      const noop = await nodeSync(theirs, registry.url);
      assertEq(counts(noop), { added: 0, updated: 0, removed: 0 }, 'no-op counts');
      if (feed) {
        assertEq(noop.requests, 1, "the Node host's request count");
        assertEq((await registry.admin('/stats')).total, 1, "the registry's request count");
      }
      await registry.admin('/update', { count: 7 });
      await registry.admin('/delete', { count: 3 });
      await registry.admin('/insert', { count: 5 });
      const report = await nodeSync(theirs, registry.url);
      assertEq(counts(report), { added: 5, updated: 7, removed: 3 }, 'counts after changes');
      assertSameRows(await catalogue(theirs), await registry.snapshot(), 'catalogue and registry');
      // And back: the Rust host continues from Node's checkpoint.
      const rust = rustSync(theirs, registry.url);
      assertEq(counts(rust), { added: 0, updated: 0, removed: 0 }, 'the Rust host after Node');
      assertEq(await integrity(theirs), 'ok', 'integrity_check');
    });

    if (feed) {
      await check(`${label}: skillsmith search and sync status read what the Node host wrote`, async () => {
        const row = await reading(ours, (c) => c.prepare("SELECT id, name FROM skills WHERE sync_origin = 'registry' ORDER BY id LIMIT 1").get());
        const found = rust(['--db', ours, 'search', row.name, '--json', '--limit', '50']);
        assert(found.status === 0, `skillsmith search failed: ${found.stderr}`);
        const ids = JSON.parse(found.stdout).map((s) => s.id);
        assert(ids.includes(row.id), `searching ${JSON.stringify(row.name)} finds ${row.id}: got ${ids.length} hits`);
        const status = rust(['--db', ours, 'sync', 'status', '--json']);
        assert(status.status === 0, `skillsmith sync status failed: ${status.stderr}`);
        const doc = JSON.parse(status.stdout);
        assert(JSON.stringify(doc).includes(String(SKILLS + 15 - 20)), `status counts the rows: ${status.stdout.slice(0, 400)}`);
      });
    }
  } finally {
    registry.stop();
  }
}

await protocol('changes feed', [], 'changes-feed');
await protocol('search API', ['--no-feed'], 'search');

// ---- the library: cancellation, dry runs, the lease, a kill -9 ------------------------------

{
  const registry = await startRegistry([]);
  try {
    await check('a sync stopped at a page boundary keeps its pages, is recorded as cancelled, and the next one finishes', async () => {
      const db = freshDb('cancel');
      const stop = new AbortController();
      const first = await sync({
        dbPath: db,
        registry: registry.url,
        component,
        pageSize: 100,
        signal: stop.signal,
        onProgress: (p) => {
          if (p.phase === 'fetch' && p.pages >= 3) stop.abort();
        },
      });
      assert(first.report.cancelled, `expected a cancelled report, got ${JSON.stringify(first.report, plain)}`);
      const kept = (await catalogue(db)).size;
      assert(kept > 0 && kept < SKILLS, `kept ${kept} of ${SKILLS}`);
      const h = await history(db);
      assertEq(h.map((r) => r.status), ['partial'], 'history');
      assert(/cancel/.test(h[0].error_message), `history says cancelled: ${h[0].error_message}`);
      const second = await sync({ dbPath: db, registry: registry.url, component });
      assert(!second.report.cancelled, 'the resumed sync completes');
      assertEq(Number(second.report.added), SKILLS - kept, 'the resumed sync adds only the rest');
      assertSameRows(await catalogue(db), await registry.snapshot(), 'catalogue and registry');
    });

    await check('a dry run reports the changes and writes nothing, not even a missing file', async () => {
      const db = freshDb('dry-run');
      await sync({ dbPath: db, registry: registry.url, component });
      await registry.admin('/update', { count: 9 });
      const before = await contentDigest(db);
      const r = await nodeCli(['sync', '--db', db, '--registry', registry.url, '--dry-run', '--json']);
      assert(r.status === 0, `dry run failed: ${r.stderr}`);
      assertEq(counts(r.json), { added: 0, updated: 9, removed: 0 }, 'counts');
      assertEq(r.json.dry_run, true, 'dry_run');
      assertEq(await contentDigest(db), before, 'catalogue digest before and after');
      const missing = join(scratch, 'never-created', 'skills.db');
      const fresh = await nodeCli(['sync', '--db', missing, '--registry', registry.url, '--dry-run', '--json']);
      assert(fresh.status === 0, `dry run of a missing file failed: ${fresh.stderr}`);
      assertEq(counts(fresh.json), { added: SKILLS, updated: 0, removed: 0 }, 'counts of a dry run from nothing');
      assert(!existsSync(dirname(missing)), 'the dry run created nothing');
    });

    await check('the sync lease: a live holder makes the CLI exit 7, a dead one is taken over and its run closed', async () => {
      const db = freshDb('lease');
      await sync({ dbPath: db, registry: registry.url, component });
      // The registry's process is alive and not us: a live holder.
      const conn = await openDatabase(db);
      const hold = (pid) => {
        conn.prepare('INSERT OR REPLACE INTO sync_lease (id, holder, pid, acquired_at, expires_at) VALUES (1, :holder, :pid, :at, :exp)').run({
          holder: `pid ${pid} on ${hostname()} #00000000deadbeef`,
          pid,
          at: new Date().toISOString(),
          exp: Date.now() + 60_000,
        });
      };
      hold(registry.pid);
      await registry.admin('/update', { count: 4 });
      const busy = await nodeCli(['sync', '--db', db, '--registry', registry.url]);
      assertEq(busy.status, 7, `exit status (stderr: ${busy.stderr})`);
      assert(/another sync/.test(busy.stderr) && /to fix:/.test(busy.stderr), `the message says why and what to do: ${busy.stderr}`);
      // A pid that cannot exist, and a run it left open.
      const dead = 2 ** 22 + 12345;
      hold(dead);
      conn.prepare("INSERT INTO sync_history (id, started_at, status) VALUES ('sync-dead', '2026-01-01T00:00:00.000Z', 'running')").run();
      conn.prepare("INSERT INTO sync_run (history_id, mode, pid) VALUES ('sync-dead', 'changes-feed', :pid)").run({ pid: dead });
      conn.close();
      const report = await nodeSync(db, registry.url);
      assertEq(counts(report), { added: 0, updated: 4, removed: 0 }, 'counts after taking the lease over');
      const dead_run = (await history(db)).find((h) => h.pid === dead);
      assertEq([dead_run.status, dead_run.error_message], ['failed', INTERRUPTED_MESSAGE], "the dead holder's run");
      assertEq(await leaseRows(db), [], 'lease released');
    });

    await check('kill -9 in the middle of a sync: the file passes integrity_check, and the next sync resumes', async () => {
      // The guest writes up to 5,000 skills a page: enough skills for
      // several pages, and a registry slow enough to kill between them.
      const total = Math.max(SKILLS, 12_000);
      const slow = await startRegistry(['--latency-ms', '250'], total);
      try {
        const db = freshDb('kill');
        let child;
        const killed = nodeCli(['sync', '--db', db, '--registry', slow.url], { onSpawn: (c) => (child = c) });
        // Until a page is committed (read as another process would).
        await until('a committed page', async () => existsSync(db) && (await catalogue(db).catch(() => new Map())).size > 0);
        child.kill('SIGKILL');
        const gone = await killed;
        assertEq(gone.signal, 'SIGKILL', 'the sync was killed');
        assertEq(await integrity(db), 'ok', 'integrity_check after the kill');
        const kept = (await catalogue(db)).size;
        assert(kept > 0 && kept < total, `kept ${kept} of ${total}`);
        assertEq((await history(db)).map((h) => h.status), ['running'], 'history left by the killed sync');
        const report = await nodeSync(db, slow.url);
        assertEq(Number(report.added), total - kept, 'the next sync adds only the rest');
        assertSameRows(await catalogue(db), await slow.snapshot(), 'catalogue and registry');
        const h = await history(db);
        assertEq(h.map((r) => r.status), ['failed', 'success'], 'history after the resume');
        assertEq(h[0].error_message, INTERRUPTED_MESSAGE, "the killed run's message");
        assertEq(await integrity(db), 'ok', 'integrity_check after the resume');
      } finally {
        slow.stop();
      }
    });

    await check('Ctrl-C in the middle of a sync: exit 9, its pages kept, the run recorded as cancelled', async () => {
      const total = Math.max(SKILLS, 12_000);
      const slow = await startRegistry(['--latency-ms', '250'], total);
      try {
        const db = freshDb('sigint');
        let child;
        const stopped = nodeCli(['sync', '--db', db, '--registry', slow.url], { onSpawn: (c) => (child = c) });
        await until('a committed page', async () => existsSync(db) && (await catalogue(db).catch(() => new Map())).size > 0);
        child.kill('SIGINT');
        const r = await stopped;
        assertEq(r.status, 9, `exit status (stderr: ${r.stderr})`);
        assert(/stopping after the current page/.test(r.stderr), `it says it is stopping: ${r.stderr}`);
        assert(/cancelled: pages applied so far are kept/.test(r.stdout), `the report says cancelled: ${r.stdout}`);
        const h = await history(db);
        assertEq(h.map((x) => x.status), ['partial'], 'history');
        assert(/cancel/.test(h[0].error_message), `history says cancelled: ${h[0].error_message}`);
        assertEq(await leaseRows(db), [], 'lease released');
        const kept = (await catalogue(db)).size;
        assert(kept > 0 && kept < total, `kept ${kept} of ${total}`);
      } finally {
        slow.stop();
      }
    });

    await check('store: a page failing on its last row leaves nothing; a full disk, a busy file and a read-only one are their store-errors', async () => {
      const db = freshDb('store');
      const cat = await openCatalogue(db, { busyTimeoutMs: 100 });
      const store = new CatalogueStore(cat);
      const skill = (id) => ({
        id,
        name: `skill ${id}`,
        description: 'written by the store test',
        author: 'tester',
        repoUrl: `https://example.org/${id}`,
        qualityScore: 0.5,
        trustTier: 'official',
        tags: ['test', 'a "quoted" tag'],
        categories: ['Testing'],
        stars: 3n,
        createdAt: '2026-01-01T00:00:00.000Z',
        updatedAt: '2026-01-02T00:00:00.000Z',
        installable: true,
      });
      const page = (upserts, removals, cursor) => ({ upserts, removals, checkpoint: { mode: 'changes-feed', cursor, resyncPending: false } });
      const storeError = (fn) => {
        try {
          fn();
        } catch (e) {
          assert(e?.payload, `a store-error, not ${e?.stack ?? e}`);
          return e.payload;
        }
        throw new Error('the call succeeded');
      };
      try {
        const run = store.beginRun('changes-feed');
        store.applyPage(run, page([skill('keep')], [], 'c1'));
        // SQLite itself refuses the last row, after the others were written.
        cat.db.exec("CREATE TEMP TRIGGER refuse BEFORE INSERT ON skills WHEN new.id = 'boom' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
        const refused = storeError(() => store.applyPage(run, page([skill('new-1'), skill('new-2'), skill('boom')], ['keep'], 'c2')));
        assertEq(refused.tag, 'invalid', `store-error (${refused.val})`);
        assert(refused.val.includes('"boom"'), `the error names the skill: ${refused.val}`);
        assertEq([...(await catalogue(db)).keys()], ['keep'], 'rows after the failed page');
        assertEq(store.readState().cursor, 'c1', 'checkpoint after the failed page');
        // A disk that is full: no page may be added to the file.
        cat.db.exec(`PRAGMA max_page_count = ${cat.db.prepare('PRAGMA page_count').get().page_count}`);
        const many = Array.from({ length: 2000 }, (_, i) => skill(`many-${i}`));
        assertEq(storeError(() => store.applyPage(run, page(many, [], 'c3'))), { tag: 'no-space' }, 'a full disk');
        cat.db.exec('PRAGMA max_page_count = 1073741823');
        // Another writer holding the file longer than the store waits.
        const other = await openDatabase(db);
        other.exec('BEGIN IMMEDIATE');
        assertEq(storeError(() => store.applyPage(run, page([skill('late')], [], 'c4'))), { tag: 'busy' }, 'a busy file');
        other.exec('ROLLBACK');
        other.close();
        assertEq(store.readState().cursor, 'c1', 'checkpoint after the refused pages');
        store.applyPage(run, page([skill('last')], ['keep'], 'c5'));
        await store.finishRun(run, { status: 'success', counts: { added: 1n, updated: 0n, unchanged: 0n, removed: 1n, skipped: 0n }, lastSyncAt: '2026-11-20T10:00:00.000Z' });
        assertEq(storeError(() => store.applyPage(run, page([], [], 'c6'))).tag, 'invalid', 'a page after the run closed');
        const row = await reading(db, (c) => c.prepare("SELECT trust_tier, registry_tier, tags, categories, sync_origin FROM skills WHERE id = 'last'").get());
        assertEq(row, { trust_tier: 'unknown', registry_tier: 'official', tags: '["test","a \\"quoted\\" tag"]', categories: '["Testing"]', sync_origin: 'registry' }, 'a tier outside the CHECK list, and JSON lists');
      } finally {
        store.close();
      }
      // A file this process can only read.
      const readOnly = new CatalogueStore({ db: await openDatabase(db, { readOnly: true }), readOnly: false, busyTimeoutMs: 100 });
      try {
        assertEq(storeError(() => readOnly.beginRun('search')), { tag: 'read-only' }, 'a read-only file');
      } finally {
        readOnly.close();
      }
    });

    await check('schedule: next_sync_at comes from the component, and schedule.decide answers', async () => {
      const db = freshDb('schedule');
      await sync({ dbPath: db, registry: registry.url, component });
      const row = await reading(db, (c) => c.prepare("SELECT next_sync_at, last_sync_at FROM sync_config WHERE id = 'default'").get());
      const next = Date.parse(row.next_sync_at);
      assert(Math.abs(next - Date.now() - 86_400_000) < 120_000, `next_sync_at a day from now: ${row.next_sync_at}`);
      const d = await decideSchedule(
        component,
        { enabled: true, intervalMs: 86_400_000n, lastAttemptMs: undefined, lastSuccessMs: undefined, consecutiveFailures: 0 },
        BigInt(Date.now()),
        1n,
      );
      assert(d.due === true, `a never-synced catalogue is due: ${JSON.stringify(d, plain)}`);
    });
  } finally {
    registry.stop();
  }
}

// ---- the store as the Rust store keeps the file: tiers, foreign keys, the WAL -----------------

await check("tiers: the list is read from the file's own CHECK, as schema.rs tier_check reads it", async () => {
  // `schema.rs`'s own cases, and the fallback when there is no list.
  const v043 = "CREATE TABLE skills (id TEXT, trust_tier TEXT CHECK(trust_tier IN ('verified', 'community', 'experimental', 'unknown')) DEFAULT 'unknown')";
  assertEq(allowedTiers(v043), ['verified', 'community', 'experimental', 'unknown'], '0.4.3');
  assertEq(allowedTiers('CREATE TABLE skills ("trust_tier" TEXT, CHECK ("trust_tier"  in(  \'a\' ,\'it\'\'s\'\n)))'), ['a', "it's"], 'quoted name, odd spacing');
  assertEq(allowedTiers('CREATE TABLE skills ([Trust_Tier] TEXT CHECK ([TRUST_TIER] IN (\'x\')))'), ['x'], 'bracketed name in another case');
  const upstream = ['verified', 'community', 'experimental', 'unknown'];
  assertEq(allowedTiers('CREATE TABLE skills (trust_tier TEXT)'), upstream, 'no CHECK');
  assertEq(allowedTiers('CREATE TABLE skills (trust_tier TEXT CHECK (trust_tier IN (1, 2)))'), upstream, 'a list of numbers');
  assertEq(allowedTiers("CREATE TABLE skills (trust_tier TEXT CHECK (trust_tier IN ('a'"), upstream, 'an unterminated list');
});

await check("tiers: a file adopted from upstream's schema 17 keeps curated as curated, as skillsmith stores it", async () => {
  const adopted = freshDb('upstream-17');
  const conn = await openDatabase(adopted);
  conn.exec(readFileSync(join(repo, 'tests/fixtures/upstream-schema-17.sql'), 'utf8'));
  conn.close();
  // `skillsmith sync` brings the file to the shared layout before it finds
  // that nothing listens.
  const adopting = rust(['--db', adopted, '--registry', `http://127.0.0.1:${await closedPort()}/functions/v1`, 'sync', '--retry-budget', '0']);
  assertEq(adopting.status, 3, `skillsmith adopting the file (stderr: ${adopting.stderr})`);
  const ours = freshDb('upstream-17-node');
  const theirs = freshDb('upstream-17-rust');
  copyFileSync(adopted, ours);
  copyFileSync(adopted, theirs);
  const registry = await startRegistry(['--tier-mix', 'official=1,curated=1,verified=1'], 300);
  try {
    await nodeSync(ours, registry.url);
    rustSync(theirs, registry.url);
    assertSameRows(await catalogue(ours), await registry.snapshot(), 'Node and registry catalogues');
  } finally {
    registry.stop();
  }
  const tiers = (db) =>
    reading(db, (c) => new Map(c.prepare('SELECT id, trust_tier, registry_tier FROM skills').all().map((r) => [r.id, `${r.trust_tier} / ${r.registry_tier}`])));
  const stored = await tiers(ours);
  const kinds = new Set(stored.values());
  assert(kinds.has('curated / null'), `curated is a tier this file accepts: got ${[...kinds].join(', ')}`);
  assert(kinds.has('verified / null'), `verified too: got ${[...kinds].join(', ')}`);
  assert(kinds.has('unknown / official'), `official is not: got ${[...kinds].join(', ')}`);
  assertSameRows(stored, await tiers(theirs), 'the tiers Node and Rust stored');
});

{
  const registry = await startRegistry([], 200);
  try {
    await check('foreign keys: a skill the registry removes takes its skill_categories links with it, whatever the binding defaults to', async () => {
      const db = freshDb('cascade');
      await sync({ dbPath: db, registry: registry.url, component });
      const [gone, alsoGone, kept] = [...(await catalogue(db)).keys()].sort();
      // Links as another tool writes them; catalogue.sql's ON DELETE
      // CASCADE is to drop a link with its skill.
      const conn = await openDatabase(db);
      try {
        conn.prepare("INSERT INTO categories (id, name) VALUES ('testing', 'Testing')").run();
        const link = conn.prepare("INSERT INTO skill_categories (skill_id, category_id) VALUES (:id, 'testing')");
        for (const id of [gone, alsoGone, kept]) link.run({ id });
      } finally {
        conn.close();
      }
      const links = () => reading(db, (c) => c.prepare('SELECT skill_id FROM skill_categories ORDER BY skill_id').all().map((l) => l.skill_id));
      await registry.admin('/delete', { ids: [gone] });
      const r = await sync({ dbPath: db, registry: registry.url, component });
      assertEq(counts(r.report), { added: 0, updated: 0, removed: 1 }, 'counts');
      assert(!(await catalogue(db)).has(gone), `${gone} is removed`);
      assertEq(await links(), [alsoGone, kept], 'the links left after the sync');
      // The bindings here turn foreign keys on by default (better-sqlite3
      // is built so, node:sqlite's enableForeignKeyConstraints); SQLite's
      // own default, which one built on a system SQLite keeps, is off. The
      // store must set it on the connection it is given.
      const own = await openDatabase(db);
      own.exec('PRAGMA foreign_keys = OFF');
      const store = new CatalogueStore({ db: own, path: db, readOnly: false, inMemory: false, busyTimeoutMs: 5000 });
      try {
        const run = store.beginRun('changes-feed');
        const cursor = store.readState().cursor;
        store.applyPage(run, { upserts: [], removals: [alsoGone], checkpoint: { mode: 'changes-feed', cursor, resyncPending: false } });
        await store.finishRun(run, { status: 'success', counts: { added: 0n, updated: 0n, unchanged: 0n, removed: 1n, skipped: 0n } });
      } finally {
        store.close();
      }
      assertEq(await links(), [kept], 'the links left after a removal on a connection with foreign keys off');
      assertEq(await reading(db, (c) => c.prepare('PRAGMA foreign_key_check').all()), [], 'foreign_key_check');
    });
  } finally {
    registry.stop();
  }
}

await check('the WAL stays within half the catalogue (4 MiB at least) after every page, as store.rs bound_wal keeps it', async () => {
  // Without the bound SQLite's own checkpoint, every 32 MiB here, lets the
  // WAL of these 12,000 skills grow past the database itself. Sizes are
  // read at each progress report: the store is idle then, between pages.
  const total = 12_000;
  const big = await startRegistry([], total);
  const db = freshDb('wal');
  const seen = [];
  try {
    const r = await sync({
      dbPath: db,
      registry: big.url,
      component,
      pageSize: 1000,
      onProgress: () => {
        if (existsSync(`${db}-wal`)) seen.push([statSync(`${db}-wal`).size, statSync(db).size]);
      },
    });
    assertEq(Number(r.report.added), total, 'added');
    assert(r.report.pages >= 3, `pages: ${r.report.pages}`);
  } finally {
    big.stop();
  }
  assert(seen.length >= 3, `sizes read while the WAL existed: ${seen.length}`);
  const over = seen.filter(([wal, file]) => wal > Math.max(4 << 20, Math.floor(file / 2)));
  assertEq(over.slice(0, 3), [], 'WAL over half the database ([wal, database] bytes)');
});

// ---- the command line: failures, each with its exit code and one message -------------------

{
  const registry = await startRegistry([], 200);
  try {
    const fails = async (args, code, pattern, extraEnv) => {
      const r = await nodeCli(args, { env: extraEnv });
      assertEq(r.status, code, `exit status of ${args.join(' ')} (stderr: ${r.stderr})`);
      const lines = r.stderr.trim().split('\n');
      assert(lines.at(-2)?.startsWith('error: ') && lines.at(-1)?.startsWith('  to fix: '), `one message and one thing to do: ${r.stderr}`);
      assert(pattern.test(r.stderr), `the message matches ${pattern}: ${r.stderr}`);
      return r;
    };

    await check('CLI: a malformed registry URL is a usage error (2), with --json a document on stdout', async () => {
      const r = await fails(['sync', '--db', freshDb('cli'), '--registry', 'not a url', '--json'], 2, /not a valid URL/);
      assertEq(r.json?.error?.kind, 'usage', 'JSON error kind');
      assertEq(r.json?.error?.exit_code, 2, 'JSON exit code');
      await fails(['sync', '--db', freshDb('cli'), '--registry', 'ftp://example.org/x'], 2, /only http/);
      await fails(['sync', '--bogus'], 2, /bogus/);
      await fails(['frobnicate'], 2, /the command is `sync`/);
    });

    await check('CLI: nothing listening is unreachable (3); a URL that is not a registry says so (3)', async () => {
      await fails(['sync', '--db', freshDb('cli'), '--registry', `http://127.0.0.1:${await closedPort()}/functions/v1`, '--retry-budget', '1'], 3, /could not reach the registry/);
      await fails(['sync', '--db', freshDb('cli'), '--registry', `${registry.origin}/not-the-api`], 3, /not|registry/);
    });

    await check('CLI: a catalogue of another layout is refused untouched (2); a directory too', async () => {
      const db = freshDb('upstream');
      const conn = await openDatabase(db);
      conn.exec("CREATE TABLE skills (id TEXT PRIMARY KEY, name TEXT); INSERT INTO skills VALUES ('x', 'y'); PRAGMA user_version = 4;");
      conn.close();
      const before = readFileSync(db);
      await fails(['sync', '--db', db, '--registry', registry.url], 2, /skillsmith sync --db/);
      assert(Buffer.compare(before, readFileSync(db)) === 0, 'the file is unchanged');
      assert(!existsSync(`${db}-wal`), 'no WAL was created');
      await fails(['sync', '--db', scratch, '--registry', registry.url], 2, /is a directory/);
      writeFileSync(join(scratch, 'not-sqlite.db'), 'hello, I am not a database'.repeat(100));
      await fails(['sync', '--db', join(scratch, 'not-sqlite.db'), '--registry', registry.url], 6, /not a Skillsmith database/);
    });

    await check('CLI: a missing component names scripts/build-component.sh (8); --component loads any file', async () => {
      await fails(['sync', '--db', freshDb('cli'), '--registry', registry.url, '--component', join(scratch, 'nope.wasm')], 8, /build-component\.sh/);
      const copy = join(scratch, 'copy-of-the-component.wasm');
      writeFileSync(copy, readFileSync(wasmPath));
      const r = await nodeCli(['sync', '--db', freshDb('cli'), '--registry', registry.url, '--component', copy, '--json']);
      assert(r.status === 0, `sync with --component failed: ${r.stderr}`);
      assertEq(r.json.component.path, copy, 'component path');
    });

    await check('CLI: a reader that closes stdout (| head -1) is not a failure; text output for people', async () => {
      const db = freshDb('head');
      const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cliPath}" sync --db "${db}" --registry "${registry.url}" --json | head -1; echo "status \${PIPESTATUS[0]}"`], {
        encoding: 'utf8',
        env: cliEnv({ SKILLSMITH_CACHE_DIR: cacheDir }),
      });
      assertEq(r.stdout.trim().split('\n'), ['{', 'status 0'], 'output and exit status');
      const text = await nodeCli(['sync', '--db', db, '--registry', registry.url]);
      assert(text.status === 0 && /^Synced from .* \(changes-feed mode\)/.test(text.stdout), `text report: ${text.stdout}`);
    });
  } finally {
    registry.stop();
  }
}

// ---- HTTP duties ----------------------------------------------------------------------------------

/** A request through an HttpImport, as the guest makes one: `{ ok }` or `{ err }`. */
let requestId = 0;
async function request(http, url, headers = []) {
  const id = ++requestId;
  http.send(id, { url, headers, timeoutMs: 0 });
  try {
    return { ok: await http.wait(id) };
  } catch (e) {
    assert(e?.payload, `an http-error, not ${e}`);
    return { err: e.payload };
  }
}

{
  const registry = await startRegistry([], 500);
  const http = new HttpImport({ registry: registry.url, apiKey: 'js-host-key' });
  try {
    await check('http: other origins, non-http URLs, credentials and credential headers are denied without a request', async () => {
      await registry.admin('/stats/reset', {});
      const port = Number(new URL(registry.url).port);
      const denied = async (url, headers) => (await request(http, url, headers)).err?.tag;
      assertEq(await denied(`http://127.0.0.1:${port + 1}/functions/v1/health`), 'denied', 'another port');
      assertEq(await denied(`http://localhost:${port}/functions/v1/health`), 'denied', 'another host name');
      assertEq(await denied('file:///etc/passwd'), 'denied', 'a file URL');
      assertEq(await denied('not a url'), 'denied', 'a malformed URL');
      assertEq(await denied(registry.url.replace('http://', 'http://u:p@')), 'denied', 'user info');
      for (const h of ['X-Api-Key', ' authorization ', 'Cookie', 'HOST']) {
        assertEq(await denied(`${registry.url}/health`, [[h, 'x']]), 'denied', `header ${h}`);
      }
      assertEq((await registry.admin('/stats')).total, 0, 'requests that reached the registry');
    });

    await check('http: the key is added by the host, compression asked for, sent-at and received-at filled', async () => {
      await registry.admin('/stats/reset', {});
      const before = BigInt(Math.floor(performance.timeOrigin + performance.now()));
      const { ok } = await request(http, `${registry.url}/skills-search?trust_tier=community&limit=100`);
      const after = BigInt(Math.floor(performance.timeOrigin + performance.now()));
      assertEq(ok?.status, 200, 'status');
      assert(before <= ok.sentAtMs && ok.sentAtMs <= ok.receivedAtMs && ok.receivedAtMs <= after, `times ${ok.sentAtMs} ${ok.receivedAtMs} within ${before}..${after}`);
      assert(ok.headers.every(([n]) => n === n.toLowerCase()) && ok.headers.some(([n]) => n === 'date'), 'lower-case headers with date');
      JSON.parse(Buffer.from(ok.body).toString('utf8'));
      const stats = await registry.admin('/stats');
      const last = stats.recent.at(-1);
      assertEq(last.api_key, 'js-host-key', 'X-API-Key');
      // Both, as this host asks: fetch by itself would ask for gzip and deflate.
      assert(/gzip/.test(last.accept_encoding ?? '') && /br/.test(last.accept_encoding ?? ''), `accept-encoding asked: ${last.accept_encoding}`);
      assert(stats.wire_bytes < stats.body_bytes, `compressed on the wire: ${stats.wire_bytes} of ${stats.body_bytes} bytes`);
    });

    await check('http: a redirect is returned as it is, not followed', async () => {
      await registry.admin('/fault', { kind: 'redirect', location: 'http://127.0.0.1:9/stolen', path: '/health' });
      const { ok } = await request(http, `${registry.url}/health`);
      await registry.admin('/fault', null);
      assertEq(ok?.status, 302, 'status');
      assert(ok.headers.some(([n, v]) => n === 'location' && v === 'http://127.0.0.1:9/stolen'), 'location header');
    });

    await check('http: bodies over the cap are too-large, a gzip bomb by its decoded size', async () => {
      const small = new HttpImport({ registry: registry.url, policy: { maxBodyBytes: 1024 } });
      assertEq((await request(small, `${registry.url}/skills-search?trust_tier=community&limit=100`)).err, { tag: 'too-large', val: 1024 }, 'a 100-skill page under a 1 KiB cap');
      const cap = DEFAULT_HTTP_POLICY.maxBodyBytes;
      await registry.admin('/fault', { kind: 'gzip_bomb', decoded_bytes: 8 * cap, path: '/skills-search' });
      const rssBefore = process.memoryUsage().rss;
      const bomb = await request(http, `${registry.url}/skills-search?limit=100`);
      await registry.admin('/fault', null);
      assertEq(bomb.err, { tag: 'too-large', val: cap }, 'a gzip bomb decoding to 8 times the cap');
      const grown = process.memoryUsage().rss - rssBefore;
      assert(grown < 4 * cap, `memory grew by ${grown} bytes only`);
      await registry.admin('/fault', { kind: 'huge', bytes: cap + 1, path: '/skills-search' });
      const huge = await request(http, `${registry.url}/skills-search?limit=100`);
      await registry.admin('/fault', null);
      assertEq(huge.err, { tag: 'too-large', val: cap }, 'a body one byte over the cap');
    });

    await check('http: a connection refused is `refused`, a hang is `timeout`', async () => {
      const port = await closedPort();
      const dead = new HttpImport({ registry: `http://127.0.0.1:${port}/functions/v1` });
      assertEq((await request(dead, `http://127.0.0.1:${port}/functions/v1/health`)).err?.tag, 'refused', 'nothing listening');
      const quick = new HttpImport({ registry: registry.url, policy: { defaultTimeoutMs: 300 } });
      await registry.admin('/fault', { kind: 'hang', path: '/health' });
      const hung = await request(quick, `${registry.url}/health`);
      await registry.admin('/fault', null);
      assertEq(hung.err, { tag: 'timeout' }, 'a registry that never answers');
    });

    await check('http: at most four requests are on the network at once; the rest wait their turn', async () => {
      // A server that holds every request until told, and counts how many
      // it holds at most.
      const held = [];
      let open = 0;
      let most = 0;
      const server = createServer((req, res) => {
        open++;
        most = Math.max(most, open);
        held.push(() => {
          res.end('{}');
          open--;
        });
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const base = `http://127.0.0.1:${server.address().port}/functions/v1`;
      const local = new HttpImport({ registry: base });
      try {
        const waits = [];
        for (let i = 0; i < 7; i++) {
          const id = ++requestId;
          local.send(id, { url: `${base}/health?n=${i}`, headers: [], timeoutMs: 0 });
          // Settled either way, so a failing check leaves no rejection behind.
          waits.push(local.wait(id).catch((e) => ({ status: e?.payload?.tag ?? String(e) })));
        }
        await until('four requests at the server', () => open === 4, 10_000);
        assertEq(local.load, { inFlight: 4, queued: 3 }, 'the host holds three back');
        // Released one at a time, each frees a slot for one more.
        await until('all seven answered', () => {
          held.shift()?.();
          return held.length === 0 && open === 0 && local.load.inFlight === 0;
        }, 10_000);
        const results = await Promise.all(waits);
        assertEq(results.map((r) => r.status), [200, 200, 200, 200, 200, 200, 200], 'statuses');
        assertEq(most, 4, 'most requests the server held at once');
      } finally {
        local.cancelAll();
        for (const release of held.splice(0)) release();
        server.closeAllConnections();
        server.close();
      }
    });
  } finally {
    registry.stop();
  }
}

// ---- hostile components -----------------------------------------------------------------------

{
  const registry = await startRegistry([], 300);
  const db = freshDb('hostile');
  try {
    const hostile = await loadComponent(join(hostileDir, 'skillsmith-hostile.wasm'), { cacheDir });
    await sync({ dbPath: db, registry: registry.url, component });
    const limits = { betweenImportsMs: 1000, guestMs: 3000 };
    /** A hostile sync: must fail with a HostFailure; returns it. */
    const stopped = async (behaviour) => {
      const before = await contentDigest(db);
      const started = performance.now();
      let failure;
      try {
        const r = await sync({ dbPath: db, registry: registry.url, guestRegistry: behaviour, component: hostile, limits });
        throw new Error(`the hostile guest (${behaviour}) was not stopped: ${JSON.stringify(r.report, plain)}`);
      } catch (e) {
        if (!(e instanceof HostFailure)) throw e;
        failure = e;
      }
      assertEq(failure.kind, 'component', `failure kind (${failure.message})`);
      assertEq(await contentDigest(db), before, 'the catalogue is unchanged');
      return { failure, ms: performance.now() - started };
    };

    await check('hostile: a guest spinning without calling the host is stopped at its deadline', async () => {
      const { failure, ms } = await stopped('spin');
      assert(/without calling the host/.test(failure.message), failure.message);
      assert(ms < 10_000, `stopped after ${Math.round(ms)} ms`);
    });

    await check('hostile: a guest spinning through host calls is stopped by its run budget', async () => {
      const { failure } = await stopped('spin-calling-host');
      assert(/over this sync/.test(failure.message), failure.message);
    });

    await check('hostile: a memory bomb is stopped at the memory cap', async () => {
      const { failure } = await stopped('grow');
      const m = /out of memory at ([\d.]+) MiB of its 128 MiB limit/.exec(failure.message);
      assert(m, failure.message);
      assert(Number(m[1]) <= 128, `its memory stayed within the cap: ${m[1]} MiB`);
    });

    await check('hostile: a page too big for the worker\'s JavaScript heap stops the guest, and the host closes its run', async () => {
      // `garbage` opens a run, then sends a 20,000-skill page: lifted into
      // JavaScript objects, more than a 12 MiB heap holds (one of 6 MiB
      // runs out before the run opens; one of 24 MiB holds it).
      const runs = (await history(db)).length;
      let failure;
      try {
        await sync({ dbPath: db, registry: registry.url, guestRegistry: 'garbage', component: hostile, limits: { heapMb: 12 } });
      } catch (e) {
        failure = e;
      }
      assert(failure instanceof HostFailure && failure.kind === 'component', `stopped: ${failure?.stack ?? failure}`);
      assert(/used up the 12 MiB JavaScript heap/.test(failure.message), failure.message);
      const h = await history(db);
      assertEq(h.length, runs + 1, 'history rows');
      assertEq([h.at(-1).status, /JavaScript heap/.test(h.at(-1).error_message)], ['failed', true], 'the run the guest left open, closed by the host');
      assertEq(await leaseRows(db), [], 'lease released');
      assertEq(await reading(db, (c) => c.prepare("SELECT count(*) AS n FROM skills WHERE id LIKE 'hostile%'").get().n), 0, 'hostile rows');
      assertEq(await integrity(db), 'ok', 'integrity_check');
    });

    await check('hostile: a panic is a clear error with the guest\'s message', async () => {
      const { failure } = await stopped('panic');
      assert(/crashed/.test(failure.message) && /deliberate panic/.test(failure.message), failure.message);
    });

    await check('hostile: garbage store calls are refused as invalid, a huge bad page rolls back whole', async () => {
      const before = await contentDigest(db);
      const r = await sync({ dbPath: db, registry: registry.url, guestRegistry: 'garbage', component: hostile, limits: { betweenImportsMs: 30_000, guestMs: 60_000 } });
      const lines = Object.fromEntries(r.report.warnings.map((w) => w.split(' => ')));
      const expectInvalid = [
        'apply-page before begin-run',
        'finish-run before begin-run',
        'apply-page to another run',
        'apply-page with an empty id',
        'apply-page huge with a bad last row',
        'finish-run of another run',
        'apply-page after finish-run',
        'second finish-run',
      ];
      for (const step of expectInvalid) assert(/^err (StoreError::)?Invalid\(/.test(lines[step] ?? ''), `${step} => ${lines[step]}`);
      assert(/^err (StoreError::)?RunOpen\(/.test(lines['second begin-run'] ?? ''), `second begin-run => ${lines['second begin-run']}`);
      for (const step of ['begin-run', 'local-versions of garbage ids', 'registry-ids past the last id', 'registry-ids limit 0', 'finish-run']) {
        assert(/^ok/.test(lines[step] ?? ''), `${step} => ${lines[step]}`);
      }
      assert(!(await catalogue(db)).has('hostile-00000'), 'nothing of the huge page is stored');
      const after = await reading(db, (c) => c.prepare("SELECT count(*) AS n FROM skills WHERE id LIKE 'hostile%'").get().n);
      assertEq(after, 0, 'hostile rows');
      assert(before !== (await contentDigest(db)), 'its one legitimate run is in the history');
      assertEq((await history(db)).at(-1).status, 'failed', 'its run, closed by itself');
    });

    await check('hostile: the environment a guest sees is empty', async () => {
      const r = await sync({ dbPath: db, registry: registry.url, guestRegistry: 'environment', component: hostile, limits });
      assertEq(r.report.warnings, ['env => []', 'args => []'], 'what the guest saw');
    });

    await check('hostile: a component importing files, sockets and clocks is refused at load, by name', async () => {
      let failure;
      try {
        await loadComponent(join(hostileDir, 'skillsmith-hostile-ambient.wasm'), { cacheDir });
      } catch (e) {
        failure = e;
      }
      assert(failure instanceof HostFailure, `refused: ${failure}`);
      for (const name of ['wasi:filesystem/types', 'wasi:sockets/tcp', 'wasi:clocks/wall-clock']) {
        assert(failure.message.includes(name), `the message names ${name}: ${failure.message}`);
      }
      const before = await contentDigest(db);
      const cli = await nodeCli(['sync', '--db', db, '--registry', registry.url, '--component', join(hostileDir, 'skillsmith-hostile-ambient.wasm')]);
      assertEq(cli.status, 8, `CLI exit status (${cli.stderr})`);
      assert(/does not grant/.test(cli.stderr), cli.stderr);
      assertEq(await contentDigest(db), before, 'the catalogue is unchanged');
    });

    await check('hostile: a component for skillsmith:sync@0.3.0 is refused by the version check', async () => {
      const future = ['skillsmith-hostile-future-wit.wasm', 'skillsmith-hostile-future.wasm'].map((f) => join(hostileDir, f)).find(existsSync);
      assert(future, `no 0.3.0 build in ${hostileDir}`);
      let failure;
      try {
        await loadComponent(future, { cacheDir });
      } catch (e) {
        failure = e;
      }
      assert(failure instanceof HostFailure, `refused: ${failure}`);
      for (const needle of ['skillsmith:sync@0.2.0', 'skillsmith:sync/engine@0.3.0']) {
        assert(failure.message.includes(needle), `the message names ${needle}: ${failure.message}`);
      }
    });

    await check('hostile: after all of them, a normal sync of the same catalogue works', async () => {
      await registry.admin('/update', { count: 5 });
      const r = await sync({ dbPath: db, registry: registry.url, component });
      assertEq(counts(r.report), { added: 0, updated: 5, removed: 0 }, 'counts');
      assertSameRows(await catalogue(db), await registry.snapshot(), 'catalogue and registry');
      assertEq(await integrity(db), 'ok', 'integrity_check');
      assertEq(await leaseRows(db), [], 'lease released');
      assert(!(await history(db)).some((h) => h.status === 'running'), 'no run left open');
    });
  } finally {
    registry.stop();
  }
}

await check('the version check: a patch version (0.2.1) loads, another minor (0.3.0) does not', async () => {
  // The real component with every skillsmith:sync name moved to another
  // version (an equal-length rewrite, so the binary stays well-formed).
  const moved = (version) => {
    const path = join(scratch, `moved-${version}.wasm`);
    writeFileSync(path, Buffer.from(readFileSync(wasmPath).toString('latin1').replace(/(skillsmith:sync(?:\/[a-z-]+)?)@0\.2\.0/g, `$1@${version}`), 'latin1'));
    return path;
  };
  const patched = await loadComponent(moved('0.2.1'), { cacheDir: null });
  assert(patched.world.exports.includes('skillsmith:sync/engine@0.2.1'), `the rewrite took: ${patched.world.exports}`);
  let message = null;
  try {
    await loadComponent(moved('0.3.0'), { cacheDir: null });
  } catch (e) {
    message = e.message;
  }
  assert(message, 'the 0.3.0 component was accepted');
  for (const needle of ['skillsmith:sync@0.2.0', 'skillsmith:sync/engine@0.3.0']) {
    assert(message.includes(needle), `the message names ${needle}: ${message}`);
  }
  // And the check alone, on worlds.
  checkContractVersion(parseWorld('world root {\n  import skillsmith:sync/host@0.2.9;\n  export skillsmith:sync/engine@0.2.0;\n}\n'));
});

if (process.env.KEEP_TMP === '1') console.log(`scratch directory kept: ${scratch}`);
else rmSync(scratch, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
