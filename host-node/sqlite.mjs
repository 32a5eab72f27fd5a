// The SQLite binding: Node's own `node:sqlite` where this Node has it
// (22.5 and later; detected at run time by importing it), else the
// `better-sqlite3` package (major version 12, built from source by
// tests/js-host/run.sh). Both are synchronous, which the store needs: an
// import answers before the guest goes on. This module gives the rest of
// the host one small interface over either, and reads SQLite's result code
// from either's errors, so that no decision reads an error's text.

import { createRequire } from 'node:module';

/**
 * @typedef {object} Statement
 * @property {(params?: Record<string, unknown>) => number} run changes count
 * @property {(params?: Record<string, unknown>) => Record<string, any> | undefined} get
 * @property {(params?: Record<string, unknown>) => Record<string, any>[]} all
 */

/**
 * @typedef {object} Database
 * @property {string} binding `node:sqlite` or `better-sqlite3`
 * @property {(sql: string) => Statement} prepare
 * @property {(sql: string) => void} exec one or more statements, no parameters
 * @property {() => number | bigint} lastInsertRowid of the last `run`
 * @property {() => void} close
 */

/** SQLite's primary result codes (the low byte of an extended code). */
export const SQLITE = Object.freeze({
  ERROR: 1,
  BUSY: 5,
  LOCKED: 6,
  NOMEM: 7,
  READONLY: 8,
  IOERR: 10,
  CORRUPT: 11,
  FULL: 13,
  CANTOPEN: 14,
  CONSTRAINT: 19,
  NOTADB: 26,
});

/** better-sqlite3's string codes, `SQLITE_BUSY` or `SQLITE_CONSTRAINT_CHECK`. */
const BY_NAME = Object.fromEntries(Object.entries(SQLITE).map(([k, v]) => [`SQLITE_${k}`, v]));

/**
 * The primary result code of a SQLite error from either binding, or
 * undefined for anything else.
 * @param {any} e
 * @returns {number | undefined}
 */
export function sqliteCode(e) {
  // node:sqlite: `errcode`, the extended code.
  if (typeof e?.errcode === 'number') return e.errcode & 0xff;
  // better-sqlite3: `SqliteError` with the extended code's name.
  if (typeof e?.code === 'string' && e.code.startsWith('SQLITE_')) {
    const primary = e.code.split('_').slice(0, 2).join('_');
    return BY_NAME[primary] ?? SQLITE.ERROR;
  }
  return undefined;
}

/**
 * A bind value both bindings accept: neither takes booleans or undefined.
 * @param {unknown} v
 */
function bindable(v) {
  if (v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

/** @param {Record<string, unknown> | undefined} params */
function bindAll(params) {
  if (params === undefined) return undefined;
  const out = {};
  for (const [k, v] of Object.entries(params)) out[k] = bindable(v);
  return out;
}

// ---- node:sqlite ----------------------------------------------------------------

/** @type {Promise<any | null> | undefined} */
let nodeSqlite;

/** `node:sqlite`, or null on a Node without it. */
function loadNodeSqlite() {
  nodeSqlite ??= (async () => {
    // Its import prints an ExperimentalWarning on some versions; that is
    // noise for the user of a CLI, so that one warning type is held back
    // while it loads.
    const emit = process.emitWarning;
    process.emitWarning = (warning, ...rest) => {
      const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
      if (type !== 'ExperimentalWarning') emit.call(process, warning, ...rest);
    };
    try {
      return await import('node:sqlite');
    } catch {
      return null;
    } finally {
      process.emitWarning = emit;
    }
  })();
  return nodeSqlite;
}

/** @returns {Database} */
function wrapNodeSqlite(db) {
  let lastRowid = 0;
  return {
    binding: 'node:sqlite',
    prepare(sql) {
      const stmt = db.prepare(sql);
      return {
        run: (p) => {
          const r = p === undefined ? stmt.run() : stmt.run(bindAll(p));
          lastRowid = r.lastInsertRowid;
          return Number(r.changes);
        },
        get: (p) => (p === undefined ? stmt.get() : stmt.get(bindAll(p))),
        all: (p) => (p === undefined ? stmt.all() : stmt.all(bindAll(p))),
      };
    },
    exec: (sql) => db.exec(sql),
    lastInsertRowid: () => lastRowid,
    close: () => db.close(),
  };
}

// ---- better-sqlite3 -----------------------------------------------------------------

/** @returns {Database} */
function wrapBetterSqlite(db) {
  let lastRowid = 0;
  return {
    binding: 'better-sqlite3',
    prepare(sql) {
      const stmt = db.prepare(sql);
      return {
        run: (p) => {
          const r = p === undefined ? stmt.run() : stmt.run(bindAll(p));
          lastRowid = r.lastInsertRowid;
          return r.changes;
        },
        get: (p) => (p === undefined ? stmt.get() : stmt.get(bindAll(p))),
        all: (p) => (p === undefined ? stmt.all() : stmt.all(bindAll(p))),
      };
    },
    exec: (sql) => db.exec(sql),
    lastInsertRowid: () => lastRowid,
    close: () => db.close(),
  };
}

/** Thrown when neither binding can be had. */
export class NoBinding extends Error {}

/** @type {any} */
let betterSqlite;

/**
 * better-sqlite3's constructor, its native part loaded and working: that
 * part is what a missing build lacks, and it loads only when a first
 * database opens, so one is opened here.
 */
function loadBetterSqlite() {
  if (betterSqlite) return betterSqlite;
  try {
    const BetterSqlite = createRequire(import.meta.url)('better-sqlite3');
    new BetterSqlite(':memory:').close();
    betterSqlite = BetterSqlite;
    return BetterSqlite;
  } catch (e) {
    throw new NoBinding(
      `Node ${process.version} has no node:sqlite, and better-sqlite3 does not load (${e?.code ?? e?.message ?? e})`,
    );
  }
}

/**
 * Opens a SQLite database with whichever binding this Node has.
 * `path` ':memory:' opens a private in-memory database.
 * @param {string} path
 * @param {{ readOnly?: boolean, binding?: 'node:sqlite' | 'better-sqlite3' }} [options]
 *   `binding` forces one (tests)
 * @returns {Promise<Database>}
 */
export async function openDatabase(path, { readOnly = false, binding } = {}) {
  const native = binding === 'better-sqlite3' ? null : await loadNodeSqlite();
  if (native) return wrapNodeSqlite(new native.DatabaseSync(path, { readOnly }));
  if (binding === 'node:sqlite') throw new NoBinding(`node:sqlite is not available in Node ${process.version} (it needs 22.5 or later)`);
  const BetterSqlite = loadBetterSqlite();
  return wrapBetterSqlite(new BetterSqlite(path, { readonly: readOnly, fileMustExist: readOnly && path !== ':memory:' }));
}

/** Which binding `openDatabase` would use, for reports. */
export async function bindingName() {
  return (await loadNodeSqlite()) ? 'node:sqlite' : 'better-sqlite3';
}
