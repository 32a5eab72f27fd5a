// The upstream TypeScript client, @skillsmith/core 0.4.3 as published on npm,
// driven as a small command line, so that run.sh can interleave it with this
// project's `skillsmith` on one SQLite catalogue. Every command prints one JSON
// document on stdout, `{"ok": true|false, ...}`, and exits 0 when ok, 1 when
// not (a thrown error is reported as `{"ok": false, "error": ...}`).
//
//   node client.mjs sync    --db F [--force] [--dry-run]
//       SyncEngine.sync() as the upstream MCP server runs it; ok when it
//       returns success with no errors.
//   node client.mjs search  --db F --query Q [--limit N] [--expect-id ID]
//       SearchService.search(); ok unless --expect-id is given and missing.
//   node client.mjs status  --db F
//       SyncConfigRepository.getConfig()/isSyncDue() and SyncHistoryRepository
//       getHistory()/getLastSuccessful()/getStats()/isRunning(), read back;
//       ok unless one throws or a value upstream computes with is not what
//       it writes itself (unparsable dates, non-string run ids, other statuses).
//   node client.mjs compare --db F --admin ORIGIN [--expect complete|reachable]
//       The skill ids in F (read-only, without upstream's migrations) against
//       the registry's /_admin/snapshot; `reachable`: every skill except those
//       in /_admin/unreachable, and none of those.
//   node client.mjs pick    --admin ORIGIN [--unreachable]
//       One registry skill (the first, or the first one the upstream eight
//       search words cannot reach) and the name to search it by.
//
// The catalogue is opened as the upstream MCP server opens it
// (packages/mcp-server/src/context.ts): openDatabase() when the file exists,
// createDatabase() when it does not; `--open open|create` forces one.
//
// SKILLSMITH_API_URL must be set: upstream reads it once, when the module
// loads, and otherwise talks to the production registry. It must point at
// loopback; anything else is refused.

import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import Database from 'better-sqlite3';

// Upstream logs with console.*: keep stdout for the one JSON document, and
// keep what it says (openDatabase swallows failed migrations with a warning).
const logged = [];
for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  console[level] = (...args) => {
    const text = args.map((a) => (a instanceof Error ? (a.stack ?? String(a)) : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    logged.push(`${level}: ${text}`);
    process.stderr.write(`[upstream ${level}] ${text}\n`);
  };
}

function out(doc) {
  process.stdout.write(JSON.stringify({ ...doc, upstreamLog: logged }, null, 2) + '\n');
  process.exitCode = doc.ok ? 0 : 1;
}

const { positionals, values: opt } = parseArgs({
  allowPositionals: true,
  options: {
    db: { type: 'string' },
    query: { type: 'string' },
    limit: { type: 'string', default: '20' },
    'expect-id': { type: 'string' },
    admin: { type: 'string' },
    expect: { type: 'string' },
    unreachable: { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
    open: { type: 'string', default: 'auto' },
  },
});
const command = positionals[0];

function need(name) {
  if (!opt[name]) throw new Error(`${command}: --${name} is required`);
  return opt[name];
}

async function loadUpstream() {
  const url = process.env.SKILLSMITH_API_URL;
  if (!url) throw new Error('SKILLSMITH_API_URL is not set (upstream would use the production registry)');
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) throw new Error(`SKILLSMITH_API_URL ${url} is not loopback`);
  if (process.env.SKILLSMITH_OFFLINE_MODE === 'true') throw new Error('SKILLSMITH_OFFLINE_MODE=true would make upstream refuse to sync');
  return import('@skillsmith/core');
}

/** Opens `path` as the upstream MCP server does; reports which way. */
function openCatalogue(up, path) {
  const file = resolve(path);
  const how = opt.open === 'auto' ? (existsSync(file) ? 'open' : 'create') : opt.open;
  if (how !== 'open' && how !== 'create') throw new Error(`--open must be auto, open or create, not ${opt.open}`);
  mkdirSync(dirname(file), { recursive: true });
  const db = how === 'open' ? up.openDatabase(file) : up.createDatabase(file);
  return { db, opened: how === 'open' ? 'openDatabase' : 'createDatabase', schemaVersion: up.getSchemaVersion(db) };
}

async function admin(origin, path) {
  const res = await fetch(`${origin}/_admin${path}`);
  if (!res.ok) throw new Error(`registry ${path}: HTTP ${res.status}`);
  return res.json();
}

const commands = {
  async sync() {
    const up = await loadUpstream();
    const { db, opened, schemaVersion } = openCatalogue(up, need('db'));
    try {
      const apiClient = up.createApiClient();
      if (apiClient.baseUrl !== process.env.SKILLSMITH_API_URL) {
        throw new Error(`upstream's API client uses ${apiClient.baseUrl}, not SKILLSMITH_API_URL`);
      }
      const skills = new up.SkillRepository(db);
      const config = new up.SyncConfigRepository(db);
      const history = new up.SyncHistoryRepository(db);
      const engine = new up.SyncEngine(apiClient, skills, config, history);
      const result = await engine.sync({ force: opt.force, dryRun: opt['dry-run'] });
      const after = config.getConfig();
      const lastRun = history.getHistory(1)[0] ?? null;
      const count = skills.count();
      return {
        ok: result.success === true && result.errors.length === 0,
        summary:
          `${opened}, schema ${schemaVersion}; success ${result.success}; added ${result.skillsAdded}, updated ${result.skillsUpdated}, ` +
          `unchanged ${result.skillsUnchanged} of ${result.totalProcessed} fetched; ${count} skills in the file; ` +
          `last_sync_at ${after.lastSyncAt}; run ${lastRun?.id} ${lastRun?.status}` +
          (result.errors.length ? `; errors: ${result.errors.join('; ')}` : ''),
        opened,
        schemaVersion,
        result,
        config: after,
        lastRun,
        skills: count,
      };
    } finally {
      db.close();
    }
  },

  async search() {
    const up = await loadUpstream();
    const { db, opened, schemaVersion } = openCatalogue(up, need('db'));
    try {
      const query = need('query');
      const r = new up.SearchService(db).search({ query, limit: Number(opt.limit) });
      const items = r.items.map((i) => ({ id: i.skill.id, name: i.skill.name, trustTier: i.skill.trustTier, rank: i.rank }));
      const expected = opt['expect-id'];
      const found = expected === undefined || items.some((i) => i.id === expected);
      return {
        ok: found,
        summary:
          `${opened}; ${r.total} hit(s) for ${JSON.stringify(query)}` +
          (items.length ? `, first ${items[0].name} (${items[0].id})` : '') +
          (expected === undefined ? '' : found ? `; ${expected} among them` : `; ${expected} NOT among them`),
        ...(found ? {} : { error: `upstream's search for ${JSON.stringify(query)} did not return ${expected}` }),
        opened,
        schemaVersion,
        query,
        total: r.total,
        items,
      };
    } finally {
      db.close();
    }
  },

  async status() {
    const up = await loadUpstream();
    const { db, opened, schemaVersion } = openCatalogue(up, need('db'));
    try {
      const config = new up.SyncConfigRepository(db);
      const history = new up.SyncHistoryRepository(db);
      const skills = new up.SkillRepository(db);
      const doc = {
        ok: true,
        opened,
        schemaVersion,
        config: config.getConfig(),
        isSyncDue: config.isSyncDue(),
        history: history.getHistory(20),
        lastSuccessful: history.getLastSuccessful(),
        isRunning: history.isRunning(),
        stats: history.getStats(),
        skills: skills.count(),
      };
      // Values upstream computes with: its differential sync compares
      // `new Date(lastSyncAt)` with each skill's updated_at (an unparsable
      // one silently skips every skill), its scheduler `new Date(nextSyncAt)`.
      const problems = [];
      const date = (what, v, nullable) => {
        if (v === null && nullable) return;
        if (typeof v !== 'string' || Number.isNaN(new Date(v).getTime())) problems.push(`${what} ${JSON.stringify(v)} is not a date upstream can parse`);
      };
      date('sync_config.last_sync_at', doc.config.lastSyncAt, true);
      date('sync_config.next_sync_at', doc.config.nextSyncAt, true);
      if (typeof doc.config.enabled !== 'boolean' || !['daily', 'weekly'].includes(doc.config.frequency)) {
        problems.push(`sync_config enabled/frequency ${JSON.stringify([doc.config.enabled, doc.config.frequency])} are not upstream's`);
      }
      for (const h of doc.history) {
        if (typeof h.id !== 'string') problems.push(`sync_history id ${JSON.stringify(h.id)} is not a string (upstream's ids are TEXT)`);
        if (!['running', 'success', 'failed', 'partial'].includes(h.status)) problems.push(`sync_history ${h.id} status ${JSON.stringify(h.status)}`);
        date(`sync_history ${h.id} started_at`, h.startedAt, false);
        date(`sync_history ${h.id} completed_at`, h.completedAt, true);
      }
      doc.ok = problems.length === 0;
      doc.problems = problems;
      const runs = doc.history.map((h) => `${JSON.stringify(h.id)}:${h.status}`).join(', ');
      doc.summary =
        `${opened}, schema ${schemaVersion}; sync_config last_sync_at ${JSON.stringify(doc.config.lastSyncAt)}, ` +
        `next ${JSON.stringify(doc.config.nextSyncAt)}, due ${doc.isSyncDue}; ${doc.stats.totalRuns} run(s) ` +
        `(${doc.stats.successfulRuns} ok, ${doc.stats.failedRuns} failed), newest first: ${runs}; ${doc.skills} skills` +
        (problems.length ? `; PROBLEMS: ${problems.join('; ')}` : '');
      if (problems.length) doc.error = problems.join('; ');
      return doc;
    } finally {
      db.close();
    }
  },

  async compare() {
    const origin = need('admin');
    const expect = opt.expect ?? 'complete';
    if (expect !== 'complete' && expect !== 'reachable') throw new Error(`--expect must be complete or reachable, not ${expect}`);
    const registry = new Set((await admin(origin, '/snapshot')).map((s) => s.id));
    const unreachable = new Set((await admin(origin, '/unreachable')).ids);
    // Read-only and without upstream's openDatabase, whose migrations would
    // change the file before the step under test opens it.
    const db = new Database(resolve(need('db')), { readonly: true, fileMustExist: true });
    let file;
    try {
      file = new Set(db.prepare('SELECT id FROM skills').pluck().all());
    } finally {
      db.close();
    }
    const wanted = expect === 'complete' ? registry : new Set([...registry].filter((id) => !unreachable.has(id)));
    const missing = [...wanted].filter((id) => !file.has(id));
    const extra = [...file].filter((id) => !wanted.has(id));
    const ok = missing.length === 0 && extra.length === 0;
    // What the first missing skills are like: which listing could have had them.
    const missingSample = [];
    for (const id of missing.slice(0, 5)) {
      const s = await admin(origin, `/skill?id=${encodeURIComponent(id)}`);
      missingSample.push({
        id,
        name: s.name,
        trust_tier: s.trust_tier,
        quality_score: s.quality_score,
        categories: s.categories,
        reachableByUpstreamWords: !unreachable.has(id),
      });
    }
    const described = missingSample
      .map((m) => `${m.name} (${m.trust_tier}, score ${m.quality_score}, categories ${JSON.stringify(m.categories)}${m.reachableByUpstreamWords ? '' : ', not reachable by upstream words'})`)
      .join(', ');
    return {
      ok,
      summary:
        `registry ${registry.size} (${unreachable.size} unreachable by upstream's words), file ${file.size}; expected ${expect}: ` +
        `${missing.length} missing, ${extra.length} unexpected` +
        (missing.length ? `; missing e.g. ${described}` : '') +
        (extra.length ? `; unexpected e.g. ${extra.slice(0, 3).join(', ')}` : ''),
      ...(ok ? {} : { error: `the file is not ${expect === 'complete' ? 'the whole registry' : 'the reachable part of the registry'}: ${missing.length} missing, ${extra.length} unexpected` }),
      expect,
      registry: registry.size,
      unreachable: unreachable.size,
      file: file.size,
      missing: missing.length,
      extra: extra.length,
      missingSample,
      extraSample: extra.slice(0, 5),
      extraUnreachable: extra.filter((id) => unreachable.has(id)).length,
    };
  },

  async pick() {
    const origin = need('admin');
    const ids = opt.unreachable ? (await admin(origin, '/unreachable')).ids : (await admin(origin, '/snapshot')).map((s) => s.id);
    if (ids.length === 0) throw new Error(`the registry has no ${opt.unreachable ? 'unreachable ' : ''}skills`);
    const skill = await admin(origin, `/skill?id=${encodeURIComponent(ids[0])}`);
    return { ok: true, summary: `${skill.name} (${skill.id}, ${skill.trust_tier})`, id: skill.id, name: skill.name, query: skill.name, trust_tier: skill.trust_tier, tags: skill.tags, description: skill.description, author: skill.author };
  },
};

try {
  if (!commands[command]) throw new Error(`usage: node client.mjs sync|search|status|compare|pick --db FILE ... (got ${JSON.stringify(command)})`);
  out(await commands[command]());
} catch (e) {
  out({ ok: false, command, summary: `${e?.name ?? 'Error'}: ${e?.message ?? e}`, error: e?.message ?? String(e), errorName: e?.name, errorCode: e?.code, stack: e?.stack });
}
