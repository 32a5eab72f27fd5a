// Which catalogue files this host opens, and creating a fresh one.
//
// The file is shared with the Rust CLI (`skillsmith`) and the upstream
// tools, so this host migrates nothing. It accepts exactly two kinds:
//
// - an empty one (missing, zero bytes, or SQLite with no tables), to which
//   it applies `migrations/shared/catalogue.sql` as it is, in one
//   transaction (a second process creating it at the same moment finds the
//   first one's catalogue once it holds the write lock);
// - one in the current shared layout: `PRAGMA user_version` 10, version 10
//   in `skillsmith_migrations`, and the columns of this project in `skills`.
//
// Anything else is refused before anything is written (not even the switch
// to WAL, which is kept in the file's header), with what to do:
// `skillsmith sync --db PATH` brings an upstream or older catalogue to the
// shared layout. A dry run opens the file read-only, and a dry run of a
// file that does not exist yet works on an empty catalogue in memory.

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { HostFailure } from './failure.mjs';
import { NoBinding, SQLITE, openDatabase, sqliteCode } from './sqlite.mjs';
import { sharedSql } from './statements.mjs';

/** The shared layout this host knows. */
export const LAYOUT_VERSION = 10;

/** This project's columns of `skills` the store writes. */
const REQUIRED_COLUMNS = ['sync_origin', 'registry_tier', 'registry_repo_url', 'categories', 'stars'];

/** The tables the store uses besides `skills`. */
const REQUIRED_TABLES = [
  'skills_fts',
  'skillsmith_migrations',
  'sync_config',
  'sync_history',
  'sync_state',
  'sync_lease',
  'sync_run',
  'sync_schedule',
  'deferred_index',
];

/** The busy timeout of every connection (the Rust host's). */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * Upstream 0.4.3's CHECK list on `skills.trust_tier` (catalogue.sql's;
 * `schema.rs` UPSTREAM_TIERS), for a file whose declaration has none to read.
 */
export const UPSTREAM_TIERS = Object.freeze(['verified', 'community', 'experimental', 'unknown']);

/**
 * The tiers `skills.trust_tier`'s CHECK accepts, read from the table's
 * declaration (`schema.rs` `allowed_tiers`): upstream's later schemas list
 * more than catalogue.sql, and a file `skillsmith` adopted keeps its own.
 * UPSTREAM_TIERS when the declaration has no list.
 * @param {string | null | undefined} declaration the `skills` table's CREATE TABLE
 * @returns {string[]}
 */
export function allowedTiers(declaration) {
  return (declaration ? tierCheck(declaration) : undefined) ?? [...UPSTREAM_TIERS];
}

/**
 * Lowercases ASCII only, so that offsets in the result hold in the text:
 * `toLowerCase` may lengthen other characters (`İ`).
 */
const asciiLower = (text) => text.replace(/[A-Z]+/g, (s) => s.toLowerCase());

/** Rust's `trim_start`: Unicode White_Space, which JavaScript's `\s` is not quite. */
const trimStart = (text) => text.replace(/^\p{White_Space}+/u, '');

/**
 * The list of the first `trust_tier IN ('a', 'b', ..)` in a table's
 * declaration, parsed as `schema.rs` `tier_check` parses it: the name and
 * `in` in any case, quotes, backticks and brackets after the name skipped,
 * `''` inside a literal; anything unexpected in the list means no list.
 * @param {string} sql
 * @returns {string[] | undefined}
 */
export function tierCheck(sql) {
  const lower = asciiLower(sql);
  let from = 0;
  for (;;) {
    const found = lower.indexOf('trust_tier', from);
    if (found < 0) return undefined;
    from = found + 'trust_tier'.length;
    let rest = trimStart(sql.slice(from).replace(/^["`\]]+/, ''));
    if (asciiLower(rest.slice(0, 2)) !== 'in') continue;
    rest = trimStart(rest.slice(2));
    if (!rest.startsWith('(')) continue;
    rest = rest.slice(1);
    const tiers = [];
    for (;;) {
      rest = trimStart(rest);
      if (!rest.startsWith("'")) return undefined;
      let value = '';
      let i = 1;
      for (;;) {
        if (i >= rest.length) return undefined;
        if (rest[i] !== "'") {
          value += rest[i];
          i += 1;
        } else if (rest[i + 1] === "'") {
          // A quote inside a literal is doubled.
          value += "'";
          i += 2;
        } else {
          break;
        }
      }
      tiers.push(value);
      rest = trimStart(rest.slice(i + 1));
      if (rest.startsWith(',')) rest = rest.slice(1);
      else if (rest.startsWith(')')) return tiers;
      else return undefined;
    }
  }
}

/**
 * A SQLite failure on `path` as the user can act on it.
 * @param {string} path
 * @param {unknown} e
 */
export function databaseFailure(path, e) {
  const detail = e instanceof Error ? e.message : String(e);
  switch (sqliteCode(e)) {
    case SQLITE.NOTADB:
      return new HostFailure('store-corrupt', `${path} is not a Skillsmith database (not SQLite, or encrypted), and is left untouched`, {
        action: 'pass --db with the path of a catalogue, or of a file to create',
      });
    case SQLITE.BUSY:
    case SQLITE.LOCKED:
      return new HostFailure('store-busy', `the database ${path} stayed locked by another process longer than this host waits`);
    case SQLITE.FULL:
      return new HostFailure('no-space', `cannot write the database ${path}: the disk is full`);
    case SQLITE.READONLY:
    case SQLITE.CANTOPEN:
      return new HostFailure('read-only', `cannot write the database ${path}: the file or its folder is read-only (${detail})`);
    case SQLITE.CORRUPT:
      return new HostFailure('store-corrupt', `the database ${path} is damaged (${detail})`);
    default:
      return new HostFailure('store-corrupt', `database error on ${path}: ${detail}`);
  }
}

const migrateAction = (path) =>
  `run \`skillsmith sync --db ${path}\` once: it brings an upstream or older catalogue to the shared layout, which this host then syncs`;

/**
 * What the open file holds, read without writing: `empty`, `current`, or
 * the refusal to throw.
 * @param {import('./sqlite.mjs').Database} db
 * @param {string} path
 * @returns {'empty' | 'current' | HostFailure}
 */
function inspect(db, path) {
  const userVersion = Number(db.prepare('PRAGMA user_version').get().user_version);
  const tables = db
    .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all()
    .map((r) => r.name);
  if (tables.length === 0 && userVersion === 0) return 'empty';
  const shared = tables.includes('skillsmith_migrations')
    ? Number(db.prepare('SELECT coalesce(max(version), 0) AS v FROM skillsmith_migrations').get().v)
    : undefined;
  const found = Math.max(userVersion, shared ?? 0);
  if (found > LAYOUT_VERSION) {
    return new HostFailure(
      'store-corrupt',
      `${path} was written by a newer skillsmith (schema v${found}; this host knows v${LAYOUT_VERSION}), and is left untouched`,
      { action: 'update this host and its component to a version that knows that schema' },
    );
  }
  if (!tables.includes('skills')) {
    return new HostFailure(
      'usage',
      `${path} is not a Skillsmith catalogue (it has tables [${tables.slice(0, 5).join(', ')}] but no skills table), and is left untouched`,
      { action: 'pass --db with the path of a catalogue, or of a file to create' },
    );
  }
  if (shared === undefined) {
    const what = userVersion ? `an older Skillsmith catalogue (schema v${userVersion})` : "an upstream Skillsmith catalogue (or another tool's)";
    return new HostFailure('usage', `${path} is ${what}, which this host does not migrate; it is left untouched`, {
      action: migrateAction(path),
    });
  }
  const columns = new Set(db.prepare("SELECT lower(name) AS name FROM pragma_table_info('skills')").all().map((r) => r.name));
  const missing = [
    ...REQUIRED_TABLES.filter((t) => !tables.includes(t)),
    ...REQUIRED_COLUMNS.filter((c) => !columns.has(c)).map((c) => `skills.${c}`),
  ];
  // `skillsmith_migrations` must hold version 10 itself, not only a later
  // row that the user_version check would have caught.
  const hasTen = Boolean(db.prepare('SELECT EXISTS (SELECT 1 FROM skillsmith_migrations WHERE version = 10) AS yes').get().yes);
  if (userVersion !== LAYOUT_VERSION || !hasTen || missing.length > 0) {
    const detail = missing.length > 0 ? `missing ${missing.join(', ')}` : `user_version ${userVersion}, migrations up to v${shared}`;
    return new HostFailure(
      'usage',
      `${path} is not in the current shared layout (v${LAYOUT_VERSION}: ${detail}), which this host does not migrate; it is left untouched`,
      { action: migrateAction(path) },
    );
  }
  return 'current';
}

/**
 * Applies catalogue.sql to `db` if it is still empty, in one transaction.
 * @param {import('./sqlite.mjs').Database} db
 * @param {string} path
 */
function createFresh(db, path) {
  const script = sharedSql('catalogue.sql');
  db.exec('BEGIN IMMEDIATE');
  try {
    const layout = inspect(db, path);
    if (layout instanceof HostFailure) throw layout;
    if (layout === 'empty') db.exec(script);
    db.exec('COMMIT');
  } catch (e) {
    try {
      db.exec('ROLLBACK');
    } catch {
      // Rolled back by SQLite already (or never begun).
    }
    throw e;
  }
}

/**
 * Creates the missing folders above a new catalogue, one at a time: Node's
 * recursive `mkdirSync` never returns for some paths (under /proc, it
 * retries ENOENT forever).
 * @param {string} dir
 */
function makeParents(dir) {
  const missing = [];
  for (let d = dir; !existsSync(d) && dirname(d) !== d; d = dirname(d)) missing.push(d);
  for (const d of missing.reverse()) mkdirSync(d);
}

/**
 * @typedef {object} Catalogue
 * @property {import('./sqlite.mjs').Database} db
 * @property {string} path
 * @property {boolean} readOnly
 * @property {boolean} inMemory a dry run's stand-in for a file that is not there yet
 * @property {number} busyTimeoutMs
 */

/**
 * Opens the catalogue at `path`: creates it when empty, refuses any layout
 * but the current one.
 * @param {string} path
 * @param {{ readOnly?: boolean, binding?: 'node:sqlite' | 'better-sqlite3', busyTimeoutMs?: number }} [options]
 *   `busyTimeoutMs`: how long a statement waits for another writer (tests shorten it)
 * @returns {Promise<Catalogue>}
 */
export async function openCatalogue(path, { readOnly = false, binding, busyTimeoutMs = BUSY_TIMEOUT_MS } = {}) {
  const stat = existsSync(path) ? statSync(path) : null;
  if (stat?.isDirectory()) {
    throw new HostFailure('usage', `the catalogue path ${path} is a directory, not a database file`, {
      action: 'pass --db with the path of a catalogue file, or of a file to create',
    });
  }
  if (readOnly && (!stat || stat.size === 0)) {
    // Nothing to read, and a dry run creates nothing: an empty catalogue.
    const db = await openDatabase(':memory:', { binding });
    db.exec(sharedSql('catalogue.sql'));
    return { db, path, readOnly, inMemory: true, busyTimeoutMs };
  }
  const parent = dirname(path);
  if (existsSync(parent) && !statSync(parent).isDirectory()) {
    throw new HostFailure('usage', `the catalogue path ${path} is inside ${parent}, which is a file, not a folder`, {
      action: 'pass --db with the path of a catalogue file, or of a file to create',
    });
  }
  if (!readOnly) {
    try {
      makeParents(parent);
    } catch (e) {
      throw new HostFailure(e?.code === 'EACCES' || e?.code === 'EROFS' ? 'read-only' : 'usage', `cannot create the directory for ${path} (${e?.code ?? e})`, {
        action: 'pass --db with a path in a folder you can write',
      });
    }
  }
  let db;
  try {
    db = await openDatabase(path, { readOnly, binding });
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    const layout = inspect(db, path);
    if (layout instanceof HostFailure) throw layout;
    if (layout === 'empty') {
      if (readOnly) {
        db.close();
        const mem = await openDatabase(':memory:', { binding });
        mem.exec(sharedSql('catalogue.sql'));
        return { db: mem, path, readOnly, inMemory: true, busyTimeoutMs };
      }
      createFresh(db, path);
    }
    if (!readOnly) {
      // After the checks: the journal mode is written into the file.
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      // As the Rust store (`store.rs` Store::new): pages of hundreds of rows
      // with random keys go into several indexes; a 32 MiB cache keeps their
      // pages from being re-read, and checkpointing every 32 MiB of WAL
      // instead of 4 MiB stops rewriting the same pages after each page.
      db.exec('PRAGMA cache_size = -32768');
      db.exec('PRAGMA wal_autocheckpoint = 8192');
    }
    return { db, path, readOnly, inMemory: false, busyTimeoutMs };
  } catch (e) {
    try {
      db?.close();
    } catch {
      // Closing a connection that failed to open may fail too; nothing to do.
    }
    if (e instanceof HostFailure) throw e;
    if (e instanceof NoBinding) {
      throw new HostFailure('internal', `no SQLite binding: ${e.message}`, {
        action: 'install host-node with tests/js-host/run.sh, which builds better-sqlite3 from source (or use Node 22.5 or later)',
      });
    }
    if (sqliteCode(e) !== undefined) throw databaseFailure(path, e);
    throw e;
  }
}
