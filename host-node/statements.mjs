// The store's SQL: the named statements of `migrations/shared/host_store.sql`,
// which the Python host and this one share (its owner is the Python host;
// this module only reads it). A block starts with `-- name: NAME` and holds
// one statement; parameters are `:name`. Statements are prepared on first
// use, because some name tables only some catalogues have
// (`skill_versions`).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { HostFailure } from './failure.mjs';

/** `migrations/shared/` of the checkout this host lives in. */
export const SHARED_SQL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'migrations', 'shared');

/**
 * A file of `migrations/shared/`, as text.
 * @param {string} name
 */
export function sharedSql(name) {
  const path = join(SHARED_SQL_DIR, name);
  if (!existsSync(path)) {
    throw new HostFailure('internal', `${path} is missing: this host needs the checkout it came with`, {
      action: 'run host-node from a complete Skillsmith checkout',
    });
  }
  return readFileSync(path, 'utf8');
}

/**
 * Splits a named-statement file into its statements.
 * @param {string} text
 * @returns {Map<string, string>}
 */
export function parseNamedStatements(text) {
  const out = new Map();
  let name = null;
  let lines = [];
  const flush = () => {
    if (name === null) return;
    // Trailing comment lines and the `;` go: a prepared statement is one
    // statement and nothing after it.
    while (lines.length > 0 && (lines.at(-1).trim() === '' || lines.at(-1).trim().startsWith('--'))) lines.pop();
    out.set(name, lines.join('\n').trim().replace(/;$/, ''));
  };
  for (const line of text.split('\n')) {
    const m = /^-- name: (\S+)\s*$/.exec(line);
    if (m) {
      flush();
      name = m[1];
      lines = [];
    } else if (name !== null) {
      lines.push(line);
    }
  }
  flush();
  return out;
}

/** The statements of `host_store.sql`, read once. */
let shared;

/**
 * The store's statements on one connection, prepared on first use.
 */
export class Statements {
  #db;
  #prepared = new Map();

  /** @param {import('./sqlite.mjs').Database} db */
  constructor(db) {
    this.#db = db;
    shared ??= parseNamedStatements(sharedSql('host_store.sql'));
  }

  /**
   * The prepared statement `name`.
   * @param {string} name
   * @returns {import('./sqlite.mjs').Statement}
   */
  get(name) {
    let stmt = this.#prepared.get(name);
    if (!stmt) {
      const sql = shared.get(name);
      if (sql === undefined) throw new HostFailure('internal', `host_store.sql has no statement ${JSON.stringify(name)}`);
      stmt = this.#db.prepare(sql);
      this.#prepared.set(name, stmt);
    }
    return stmt;
  }

  /**
   * Runs a statement that writes; returns its changes count.
   * @param {string} name
   * @param {Record<string, unknown>} [params]
   */
  run(name, params) {
    return this.get(name).run(params);
  }

  /**
   * The first row of a statement that reads, or undefined.
   * @param {string} name
   * @param {Record<string, unknown>} [params]
   */
  one(name, params) {
    return this.get(name).get(params);
  }

  /**
   * Every row of a statement that reads.
   * @param {string} name
   * @param {Record<string, unknown>} [params]
   */
  all(name, params) {
    return this.get(name).all(params);
  }

  /**
   * Whether a `... AS yes` statement says 1.
   * @param {string} name
   * @param {Record<string, unknown>} [params]
   */
  yes(name, params) {
    return Number(this.one(name, params)?.yes ?? 0) === 1;
  }
}
