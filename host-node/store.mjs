// The `store` import on the SQLite catalogue (docs/embedding.md §5), with
// the statements of `migrations/shared/host_store.sql` used as its header
// says, so that this host, the Python one and `skillsmith` take turns on
// one file. In short:
//
// - whose a row is (`sync_origin`): `registry` rows are the sync's, rows
//   another tool wrote (NULL) are claimed once a listing shows them, and
//   `local` rows are never changed or removed;
// - a tier outside the file's CHECK list (read from the `skills` table's
//   declaration once per run, as `schema.rs` `allowed_tiers` does: a file
//   adopted from a later upstream schema accepts more than catalogue.sql)
//   is stored as `unknown`, the real one in `registry_tier`; a repository
//   two skills claim stays with one row (`repo_url` is unique), the other
//   keeps it in `registry_repo_url`;
// - `begin-run` takes the cross-process lease (lease.mjs) and opens a
//   history run; every page renews the lease, and so does a timer between
//   pages;
// - every page is one IMMEDIATE transaction (removals, upserts, checkpoint,
//   lease renewal), validated before it starts and rolled back on any
//   failure; it commits before `apply-page` returns (no write-behind);
// - after each page the WAL is kept within half the database file (4 MiB
//   at least), as `store.rs` `bound_wal` keeps it, so a sync needs about
//   1.5 times the catalogue's size on disk at most;
// - `finish-run` closes the run, ends a first-sync indexing deferral
//   another process left, and writes the schedule, whose `next_sync_at`
//   the component's own `schedule.decide` computes.
//
// The store turns foreign keys on for the connection it is given, so that
// removals cascade.
//
// Every SQLite failure reaches the guest as a `store-error` chosen by its
// result code; a dry run's store refuses every write with `invalid`.

import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';

import { formatMs, nowMs, parseMs } from './clock.mjs';
import { countsAsFailure } from './failure.mjs';
import { INTERRUPTED_MESSAGE, LEASE_TTL_MS, RENEW_EVERY_MS, holderIsGone, newHolder } from './lease.mjs';
import { ImportFailure } from './rpc.mjs';
import { BUSY_TIMEOUT_MS, allowedTiers } from './schema.mjs';
import { SQLITE, sqliteCode } from './sqlite.mjs';
import { Statements } from './statements.mjs';

const TIERS = new Set(['official', 'verified', 'curated', 'community', 'unverified', 'experimental', 'unknown']);
const MODES = new Set(['changes-feed', 'search']);
const MAX_ROWID = 9223372036854775807n;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** The WAL may grow to this size whatever the database's (`store.rs` WAL_FLOOR_BYTES). */
const WAL_FLOOR_BYTES = 4 << 20;

const DRY_RUN = 'dry run: the store is read-only and a dry run writes nothing';

/** @param {string} text */
const invalid = (text) => new ImportFailure({ tag: 'invalid', val: text });

/**
 * A SQLite failure as the `store-error` the guest receives.
 * @param {unknown} e
 * @param {string} [id] the skill being written, named in the text
 */
function storeFailure(e, id) {
  if (e instanceof ImportFailure) return e;
  const about = id === undefined ? '' : `skill ${JSON.stringify(id)}: `;
  const text = `${about}${e instanceof Error ? e.message : String(e)}`;
  switch (sqliteCode(e)) {
    case SQLITE.BUSY:
    case SQLITE.LOCKED:
      return new ImportFailure({ tag: 'busy' });
    case SQLITE.FULL:
      return new ImportFailure({ tag: 'no-space' });
    case SQLITE.READONLY:
    case SQLITE.CANTOPEN:
      return new ImportFailure({ tag: 'read-only' });
    case SQLITE.CORRUPT:
    case SQLITE.NOTADB:
      return new ImportFailure({ tag: 'corrupt', val: text });
    case SQLITE.CONSTRAINT:
      return invalid(text);
    default:
      return new ImportFailure({ tag: 'other', val: text });
  }
}

/**
 * JSON text of a list of strings, compact as serde_json and Python write
 * it, so every host stores identical text.
 * @param {string[]} list
 */
const jsonList = (list) => JSON.stringify(list);

/** A stored JSON list; anything that is not one reads as empty. */
function readJsonList(text) {
  try {
    const v = JSON.parse(text ?? '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** The size of a file in bytes; 0 when it is not there or cannot be read. */
function fileSize(path) {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The leading SQLite varint of `bytes` (big-endian, 7 bits a byte, the
 * high bit set on all but the last, the ninth byte whole).
 * @param {Uint8Array} bytes
 */
function varint(bytes) {
  let v = 0n;
  for (let i = 0; i < Math.min(9, bytes.length); i++) {
    if (i === 8) return (v << 8n) | BigInt(bytes[i]);
    v = (v << 7n) | BigInt(bytes[i] & 0x7f);
    if ((bytes[i] & 0x80) === 0) return v;
  }
  return undefined;
}

/**
 * @typedef {object} OpenRun
 * @property {bigint} id the history row's rowid, the guest's handle
 * @property {number} startedMs
 * @property {number} pages applied so far
 * @property {{ tiers: Set<string>, uniqueRepoUrl: boolean, versions: boolean }} policy
 *   read once per run; `tiers` are those the file's CHECK accepts
 */

/**
 * Decides `next_sync_at`: the component's `schedule.decide` (sync.mjs runs
 * it in a worker of its own). Undefined when it cannot say.
 * @typedef {(config: object, nowMs: bigint) => Promise<bigint | undefined>} Scheduler
 */

/** The `store` import over one catalogue connection. */
export class CatalogueStore {
  #db;
  #sql;
  #readOnly;
  #decide;
  #busyTimeoutMs;
  /** The catalogue file, whose WAL is bounded; null for one in memory. */
  #path;
  /** @type {OpenRun | null} */
  #open = null;
  /** This process's lease holder id while it holds the lease. */
  #holder = null;
  #heartbeat = null;
  /** Why the last `begin-run` found another run at work, for the user's message. */
  busyWith = undefined;

  /**
   * @param {import('./schema.mjs').Catalogue} catalogue
   * @param {{ decide?: Scheduler }} [options]
   */
  constructor(catalogue, { decide = async () => undefined } = {}) {
    // As the Rust host's every connection (`connection.rs` configure):
    // `skill_categories` relies on ON DELETE CASCADE, without which
    // `skill_delete` leaves links to skills that are gone. SQLite's default
    // is off (the bindings here turn it on, one built on a system SQLite
    // would not), so it is set on whatever connection the store is given.
    catalogue.db.exec('PRAGMA foreign_keys = ON');
    this.#db = catalogue.db;
    this.#readOnly = catalogue.readOnly;
    this.#sql = new Statements(catalogue.db);
    this.#decide = decide;
    this.#busyTimeoutMs = catalogue.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
    this.#path = catalogue.inMemory || !catalogue.path ? null : catalogue.path;
  }

  /** The handle of the run the guest opened and has not closed. */
  get openRun() {
    return this.#open?.id;
  }

  // ---- transactions ---------------------------------------------------------------

  /**
   * Runs `fn` in one transaction (IMMEDIATE for writes): committed when it
   * returns, rolled back when it throws.
   * @template T
   * @param {'IMMEDIATE' | 'DEFERRED'} mode
   * @param {() => T} fn
   * @returns {T}
   */
  #transaction(mode, fn) {
    this.#db.exec(`BEGIN ${mode}`);
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (e) {
      this.#rollback();
      throw e;
    }
  }

  #rollback() {
    // Asked unconditionally: node:sqlite before 22.16 cannot say whether a
    // transaction is open.
    try {
      this.#db.exec('ROLLBACK');
    } catch {
      // SQLite rolls back by itself on some errors (a full disk), or none
      // was open: then there is nothing left to roll back.
    }
  }

  #writable() {
    if (this.#readOnly) throw invalid(DRY_RUN);
  }

  /** @param {bigint} run */
  #checkRun(run) {
    if (!this.#open) throw invalid(`unknown run ${run}: no run is open`);
    if (this.#open.id !== BigInt(run)) throw invalid(`unknown run ${run}: the open run is ${this.#open.id}`);
    return this.#open;
  }

  // ---- reads ------------------------------------------------------------------------

  /** `store.read-state`. */
  readState() {
    try {
      return this.#transaction('DEFERRED', () => {
        const lastSyncAt = this.#sql.one('state_last_sync_at')?.last_sync_at ?? undefined;
        const cp = this.#sql.one('state_checkpoint') ?? {};
        const n = this.#sql.one('state_registry_skills')?.n ?? 0;
        return {
          lastSyncAt: lastSyncAt ?? undefined,
          // An unknown stored mode (a newer host wrote it) means rediscover.
          mode: MODES.has(cp.mode) ? cp.mode : undefined,
          cursor: cp.cursor ?? undefined,
          etag: cp.etag ?? undefined,
          resyncPending: Number(cp.resync_pending ?? 0) !== 0,
          registrySkills: BigInt(Math.max(0, Number(n))),
        };
      });
    } catch (e) {
      throw storeFailure(e);
    }
  }

  /**
   * `store.local-versions`: one query per batch.
   * @param {string[]} ids
   */
  localVersions(ids) {
    const out = new Array(ids.length).fill(undefined);
    if (ids.length === 0) return out;
    try {
      for (const r of this.#sql.all('skills_local_versions', { ids: JSON.stringify(ids) })) {
        const pos = Number(r.pos);
        if (pos >= 0 && pos < out.length) {
          out[pos] = { updatedAt: r.updated_at, source: r.sync_origin === 'local' ? 'local' : 'registry' };
        }
      }
    } catch (e) {
      throw storeFailure(e);
    }
    return out;
  }

  /**
   * `store.registry-ids`: SQLite's BINARY order is the byte order of UTF-8.
   * @param {string | undefined} after
   * @param {number} limit
   */
  registryIds(after, limit) {
    try {
      const rows =
        after === undefined
          ? this.#sql.all('skills_registry_ids_first', { limit })
          : this.#sql.all('skills_registry_ids_after', { after, limit });
      return rows.map((r) => r.id);
    } catch (e) {
      throw storeFailure(e);
    }
  }

  /**
   * `store.registry-rows`.
   * @param {string[]} ids
   */
  registryRows(ids) {
    try {
      return ids.map((id) => {
        const r = this.#sql.one('skills_registry_row', { id });
        if (!r) return undefined;
        return {
          id,
          trustTier: TIERS.has(r.tier) ? r.tier : 'unknown',
          scored: Number(r.scored) === 1,
          categories: readJsonList(r.categories),
        };
      });
    } catch (e) {
      throw storeFailure(e);
    }
  }

  // ---- runs -------------------------------------------------------------------------

  /**
   * `store.begin-run`: takes the lease and opens a history run.
   * @param {'changes-feed' | 'search'} mode
   */
  beginRun(mode) {
    this.#writable();
    if (this.#open) throw new ImportFailure({ tag: 'run-open', val: `run ${this.#open.id} of this process` });
    const now = nowMs();
    const holder = newHolder();
    let open;
    try {
      open = this.#transaction('IMMEDIATE', () => {
        const held = this.#sql.one('lease_current', { now_ms: now });
        if (held && !holderIsGone(held)) {
          this.busyWith = `process ${held.pid}, since ${held.acquired_at}`;
          throw new ImportFailure({ tag: 'run-open', val: `process ${held.pid} holds the sync lease, since ${held.acquired_at}` });
        }
        this.#sql.run('lease_take', { holder, pid: process.pid, acquired_at: formatMs(now), expires_at: now + LEASE_TTL_MS });
        this.#sql.run('runs_close_interrupted', { now: formatMs(now), message: INTERRUPTED_MESSAGE });
        const running = this.#sql.one('run_find_open');
        if (running) {
          this.busyWith = `process ${running.pid ?? '?'}, since ${running.started_at}`;
          throw new ImportFailure({ tag: 'run-open', val: `run ${running.id} by process ${running.pid ?? '?'}, since ${running.started_at}` });
        }
        if (!this.#sql.yes('sync_state_fts_deferred')) this.#repairFtsCount();
        if (this.#sql.yes('skills_has_source_column')) this.#sql.run('skills_mark_upstream_local');
        const historyId = `sync-${formatMs(now)}-${randomBytes(4).toString('hex')}`;
        this.#sql.run('history_insert', { id: historyId, started_at: formatMs(now) });
        const id = BigInt(this.#db.lastInsertRowid());
        this.#sql.run('run_insert', { history_id: historyId, mode, pid: process.pid });
        const policy = {
          tiers: new Set(allowedTiers(this.#sql.one('skills_declaration')?.sql)),
          uniqueRepoUrl: this.#sql.yes('skills_repo_url_is_unique'),
          versions: this.#sql.yes('skills_has_versions_table'),
        };
        return { id, startedMs: now, pages: 0, policy };
      });
    } catch (e) {
      throw storeFailure(e);
    }
    this.#open = open;
    this.#holder = holder;
    this.#heartbeat = setInterval(() => this.#renewBetweenPages(), RENEW_EVERY_MS);
    this.#heartbeat.unref();
    return open.id;
  }

  /**
   * Rebuilds the full-text index when its row count is not the table's
   * (upstream's open doubles the index).
   */
  #repairFtsCount() {
    const block = this.#sql.one('fts_averages')?.block;
    if (!block) return;
    const indexed = varint(new Uint8Array(block));
    const rows = BigInt(this.#sql.one('fts_docsize_count')?.n ?? 0);
    if (indexed !== undefined && indexed !== rows) this.#sql.run('fts_rebuild');
  }

  /**
   * The lease renewal between pages; a failure is left for the next page to
   * find. A timer never runs inside a transaction: each one is begun and
   * ended within one synchronous call.
   */
  #renewBetweenPages() {
    if (!this.#holder) return;
    try {
      this.#transaction('IMMEDIATE', () =>
        this.#sql.run('lease_renew', { expires_at: nowMs() + LEASE_TTL_MS, holder: this.#holder }),
      );
    } catch {
      // The next page renews it in its own transaction and reports there.
    }
  }

  /**
   * Everything in a page that the schema or the contract forbids, checked
   * before anything changes.
   * @param {{ upserts: any[], removals: string[] }} page
   */
  #validate(page) {
    for (const s of page.upserts) {
      if (s.id === '') throw invalid(`a skill with an empty id (name ${JSON.stringify(s.name)}) cannot be stored`);
      // NaN would be stored as NULL by SQLite, passing the CHECK silently.
      if (s.qualityScore !== undefined && !(s.qualityScore >= 0 && s.qualityScore <= 1)) {
        throw invalid(`skill ${JSON.stringify(s.id)}: quality-score ${s.qualityScore} is outside 0..=1`);
      }
    }
  }

  /**
   * `store.apply-page`: removals, upserts, checkpoint and lease renewal in
   * one transaction.
   * @param {bigint} run
   * @param {{ upserts: any[], removals: string[], checkpoint: any }} page
   */
  applyPage(run, page) {
    this.#writable();
    const open = this.#checkRun(run);
    this.#validate(page);
    const now = nowMs();
    let current;
    try {
      this.#transaction('IMMEDIATE', () => {
        for (const id of page.removals) this.#sql.run('skill_delete', { id });
        for (const skill of page.upserts) {
          current = skill.id;
          this.#upsert(skill, open.policy, now);
        }
        current = undefined;
        const cp = page.checkpoint;
        this.#sql.run('checkpoint_write', {
          mode: cp.mode,
          cursor: cp.cursor,
          etag: cp.etag,
          resync_pending: cp.resyncPending,
          updated_at: formatMs(now),
        });
        if (this.#sql.run('lease_renew', { expires_at: now + LEASE_TTL_MS, holder: this.#holder }) !== 1) {
          // Another process took over after our lease expired: writing on
          // would interleave two syncs.
          throw new ImportFailure({ tag: 'busy' });
        }
      });
    } catch (e) {
      throw storeFailure(e, current);
    }
    open.pages++;
    this.#boundWal();
  }

  /**
   * One skill: inserted, or its registry row updated in the columns that
   * changed (host_store.sql `skill_insert` .. `skill_update_keys`).
   */
  #upsert(s, policy, now) {
    const [trustTier, registryTier] = policy.tiers.has(s.trustTier) ? [s.trustTier, null] : ['unknown', s.trustTier];
    let repoUrl = s.repoUrl ?? null;
    let registryRepoUrl = null;
    if (repoUrl !== null && policy.uniqueRepoUrl) {
      this.#sql.run('skill_repo_move_losers', { repo_url: repoUrl, id: s.id, updated_at: s.updatedAt, local: 0 });
      if (this.#sql.yes('skill_repo_held', { repo_url: repoUrl, id: s.id })) {
        registryRepoUrl = repoUrl;
        repoUrl = null;
      }
    }
    const tags = jsonList(s.tags);
    const categories = jsonList(s.categories);
    const plain = {
      id: s.id,
      quality_score: s.qualityScore,
      categories,
      stars: s.stars,
      content_hash: s.contentHash,
      license: s.license,
      security_score: s.securityScore,
      installable: s.installable,
      quarantined: s.quarantined,
      created_at: s.createdAt,
      updated_at: s.updatedAt,
    };
    const keys = {
      id: s.id,
      name: s.name,
      author: s.author,
      repo_url: repoUrl,
      trust_tier: trustTier,
      registry_tier: registryTier,
      registry_repo_url: registryRepoUrl,
    };
    const inserted = this.#sql.run('skill_insert', { ...plain, ...keys, description: s.description, tags });
    if (inserted === 0) {
      // A local row with this id: left alone.
      if (this.#sql.run('skill_update_plain', plain) === 0) return;
      this.#sql.run('skill_update_text', { id: s.id, description: s.description, tags });
      this.#sql.run('skill_update_keys', keys);
    }
    if (policy.versions) {
      const proxy = JSON.stringify({ id: s.id, name: s.name, description: s.description ?? null, updated_at: s.updatedAt });
      const hash = createHash('sha256').update(proxy).digest('hex');
      this.#sql.run('skill_version_record', { skill_id: s.id, content_hash: hash, recorded_at: Math.floor(now / 1000) });
      this.#sql.run('skill_version_trim', { skill_id: s.id });
    }
  }

  /**
   * `store.finish-run`: closes the run, ends a deferral, writes the
   * schedule; then releases the lease and gives the WAL's space back.
   * @param {bigint} run
   * @param {any} outcome a `run-outcome`
   */
  async finishRun(run, outcome) {
    this.#writable();
    const open = this.#checkRun(run);
    const now = nowMs();
    const error = outcome.status === 'success' ? null : outcome.error ?? `the sync ended as ${outcome.status}`;
    // The schedule the guest's `decide` needs is known before the
    // transaction (this process holds the lease: only a settings change by
    // hand can come between), and deciding takes a worker of its own.
    let schedule;
    try {
      schedule = this.#nextSchedule(this.#readConfig(), outcome, error, now);
    } catch (e) {
      throw storeFailure(e);
    }
    const nextMs = await this.#decide(schedule.decideConfig, BigInt(now));
    try {
      this.#transaction('IMMEDIATE', () => {
        const c = outcome.counts;
        const closed = this.#sql.run('history_close', {
          completed_at: formatMs(now),
          status: outcome.status,
          added: c.added,
          updated: c.updated,
          unchanged: c.unchanged,
          error,
          duration_ms: Math.max(0, now - open.startedMs),
          run: open.id,
        });
        const cov = outcome.coverage;
        this.#sql.run('run_close', {
          run: open.id,
          removed: c.removed,
          skipped: c.skipped,
          registry_total: cov?.registryTotal ?? null,
          skills_reached: cov?.reached ?? null,
          unfilterable_tiers: cov ? jsonList(cov.unfilterableTiers) : null,
          failure_kind: outcome.failure ?? null,
        });
        if (closed !== 1) throw invalid(`run ${run} is not open in the history (closed by another process?)`);
        this.#endDeferral();
        this.#sql.run('skills_give_back_repos');
        this.#sql.run('config_ensure_row');
        // Read again inside the transaction: what is written is based on
        // the row as it is now.
        const config = this.#nextSchedule(this.#readConfig(), outcome, error, now).config;
        this.#sql.run('config_write', {
          last_sync_at: config.last_sync_at,
          last_sync_count: config.last_sync_count,
          last_sync_error: config.last_sync_error,
          next_sync_at: nextMs === undefined ? null : formatMs(Number(nextMs)),
          updated_at: formatMs(now),
        });
        this.#sql.run('schedule_write', {
          last_attempt_at: config.last_attempt_at,
          last_success_at: config.last_success_at,
          consecutive_failures: config.consecutive_failures,
        });
      });
    } catch (e) {
      throw storeFailure(e);
    }
    this.#open = null;
    this.#releaseLease();
    this.#truncateWal();
  }

  /** `config_read`, with upstream's odd values read as the defaults. */
  #readConfig() {
    const r = this.#sql.one('config_read') ?? {};
    const frequency = r.frequency === 'weekly' ? 'weekly' : 'daily';
    const interval = Number(r.interval_ms);
    return {
      enabled: r.enabled === null || r.enabled === undefined ? true : Number(r.enabled) !== 0,
      interval_ms: Number.isFinite(interval) && interval > 0 ? interval : frequency === 'weekly' ? WEEK_MS : DAY_MS,
      last_sync_at: r.last_sync_at ?? null,
      last_sync_count: Number(r.last_sync_count ?? 0),
      last_sync_error: r.last_sync_error ?? null,
      last_attempt_at: r.last_attempt_at ?? null,
      last_success_at: r.last_success_at ?? null,
      consecutive_failures: Math.max(0, Number(r.consecutive_failures ?? 0)),
    };
  }

  /**
   * The configuration after a run that ended with `outcome`, and the
   * `schedule-config` that `decide` gets for it.
   */
  #nextSchedule(before, outcome, error, now) {
    const config = { ...before };
    const nowText = formatMs(now);
    // A stopped run (a signal, another sync at work) neither succeeded nor
    // failed: the schedule stays as it was.
    const stopped = outcome.failure !== undefined && !countsAsFailure(outcome.failure);
    if (!stopped) config.last_attempt_at = nowText;
    if (outcome.status === 'success') {
      config.last_success_at = nowText;
      config.consecutive_failures = 0;
      if (outcome.lastSyncAt !== undefined) config.last_sync_at = outcome.lastSyncAt;
      config.last_sync_count = Number(outcome.counts.added + outcome.counts.updated);
      config.last_sync_error = null;
    } else if (stopped) {
      config.last_sync_error = error;
    } else {
      config.consecutive_failures += 1;
      config.last_sync_error = error;
    }
    const ms = (t) => {
      const v = parseMs(t);
      return v === undefined ? undefined : BigInt(v);
    };
    const decideConfig = {
      enabled: config.enabled,
      intervalMs: BigInt(config.interval_ms),
      lastAttemptMs: ms(config.last_attempt_at),
      lastSuccessMs: ms(config.last_success_at),
      consecutiveFailures: Math.min(config.consecutive_failures, 2 ** 32 - 1),
    };
    return { config, decideConfig };
  }

  /**
   * Ends a first-sync indexing deferral another process (`skillsmith`)
   * left: this host starts none, but must not leave one half done.
   */
  #endDeferral() {
    const sql = this.#sql;
    const deferred = sql.yes('sync_state_fts_deferred');
    const saved = sql.all('deferred_index_list');
    if (!deferred && saved.length === 0) return;
    if (saved.length > 0 && sql.yes('skills_repo_urls_shared')) sql.run('skills_repo_urls_settle');
    for (const { name, sql: create } of saved) {
      // The index's own CREATE INDEX, as SQLite recorded it.
      if (!sql.yes('index_exists', { name })) this.#db.exec(create);
    }
    sql.run('deferred_index_clear');
    if (deferred) {
      const upto = sql.one('sync_state_fts_indexed_upto')?.upto;
      if (upto === null || upto === undefined) sql.run('fts_rebuild');
      else sql.run('fts_index_rows', { above: upto, upto: MAX_ROWID });
      sql.run('sync_state_end_deferral');
    }
  }

  #releaseLease() {
    clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    if (!this.#holder) return;
    try {
      this.#sql.run('lease_release', { holder: this.#holder });
    } catch {
      // It expires by itself within a minute.
    }
    this.#holder = null;
  }

  /**
   * Keeps the WAL within half the database file (at least WAL_FLOOR_BYTES)
   * after a page: SQLite's own checkpoint, every 32 MiB here for speed,
   * would let a 20,000-skill catalogue of 18 MB need twice that on disk. A
   * checkpoint that cannot finish now (a reader holds an old snapshot) is
   * tried again after the next page.
   */
  #boundWal() {
    if (this.#path === null) return;
    if (fileSize(`${this.#path}-wal`) > Math.max(WAL_FLOOR_BYTES, Math.floor(fileSize(this.#path) / 2))) this.#truncateWal();
  }

  /**
   * Gives the WAL's space back (after a run, or a page that left it too
   * large), if that can be done at once: a checkpoint that waited for
   * readers would hold the writer lock.
   */
  #truncateWal() {
    try {
      this.#db.exec('PRAGMA busy_timeout = 0');
      this.#db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get();
    } catch {
      // Readers in the way: the next run catches up.
    } finally {
      try {
        this.#db.exec(`PRAGMA busy_timeout = ${this.#busyTimeoutMs}`);
      } catch {
        // The connection is going away; nothing depends on it.
      }
    }
  }

  /**
   * Closes the open run when the guest could not (it trapped, was stopped
   * by a limit, or returned without closing it): `partial` if a page was
   * applied, else `failed`, with `message`; then releases the lease.
   * @param {string} message
   * @param {import('./failure.mjs').FailureKind} kind
   */
  async abandonOpenRun(message, kind) {
    if (!this.#open) {
      this.#releaseLease();
      return;
    }
    // Pages commit before their call returns, so no transaction can be
    // open here; should one be, it is never committed half done.
    this.#rollback();
    const zero = { added: 0n, updated: 0n, unchanged: 0n, removed: 0n, skipped: 0n };
    const status = this.#open.pages > 0 ? 'partial' : 'failed';
    try {
      await this.finishRun(this.#open.id, { status, counts: zero, error: message, failure: kind });
    } finally {
      this.#open = null;
      this.#releaseLease();
    }
  }

  /** Closes the connection. */
  close() {
    this.#releaseLease();
    this.#db.close();
  }
}
