// What a sync component may ask of this host, decided from its world
// before any of its code runs (docs/embedding.md §2 and §7):
//
// - the contract version: every `skillsmith:sync/...` name it imports or
//   exports must be semver-compatible with the one this host implements,
//   and it must export `skillsmith:sync/engine`. jco binds imports by
//   unversioned name, so nothing else would notice a mismatch;
// - the grants: it may import `skillsmith:sync/*` and the empty WASI
//   interfaces of `wasi:io` and `wasi:cli` that wasi.mjs provides, and
//   nothing else. A component importing clocks, files, sockets or random is
//   refused, naming what it asked for.

import { HostFailure } from './failure.mjs';

/** The contract this host implements (§2). */
export const WIT_VERSION = '0.2.0';
export const WIT_PACKAGE = `skillsmith:sync@${WIT_VERSION}`;
const ENGINE_EXPORT = `skillsmith:sync/engine@${WIT_VERSION}`;

/** The WASI 0.2 interfaces granted, each provided empty by wasi.mjs. */
export const GRANTED_WASI = Object.freeze([
  'wasi:io/error',
  'wasi:io/poll',
  'wasi:io/streams',
  'wasi:cli/environment',
  'wasi:cli/exit',
  'wasi:cli/stdin',
  'wasi:cli/stdout',
  'wasi:cli/stderr',
  'wasi:cli/terminal-input',
  'wasi:cli/terminal-output',
  'wasi:cli/terminal-stdin',
  'wasi:cli/terminal-stdout',
  'wasi:cli/terminal-stderr',
]);

/** The interfaces of the contract a component may import. */
export const GRANTED_CONTRACT = Object.freeze([
  'skillsmith:sync/types',
  'skillsmith:sync/http',
  'skillsmith:sync/store',
  'skillsmith:sync/host',
]);

/**
 * @typedef {object} World
 * @property {string[]} imports names as the WIT prints them, with versions
 *   (`wasi:io/poll@0.2.6`), or a bare name for an inline import
 * @property {string[]} exports
 */

/**
 * Reads the component's own world from `componentWit`'s text: the
 * `import` and `export` items at the top level of its `world` block.
 * @param {string} wit
 * @returns {World}
 */
export function parseWorld(wit) {
  /** @type {World} */
  const world = { imports: [], exports: [] };
  let depth = 0;
  let inWorld = false;
  for (const raw of wit.split('\n')) {
    const line = raw.trim();
    if (!inWorld && depth === 0 && /^world\s+\S+\s*\{/.test(line)) {
      inWorld = true;
    } else if (inWorld && depth === 1) {
      // `import ns:pkg/iface@1.2.3;`, or `import name: func(...)` /
      // `import name: interface {` for an item without a package.
      const m = /^(import|export)\s+([^\s;:]+(?::[^\s;:{(]+)?)/.exec(line);
      if (m) {
        const name = m[2].replace(/:$/, '');
        world[m[1] === 'import' ? 'imports' : 'exports'].push(name);
      }
    }
    depth += (line.match(/\{/g) ?? []).length - (line.match(/\}/g) ?? []).length;
    if (inWorld && depth === 0 && line.includes('}')) break;
  }
  return world;
}

/** `ns:pkg/iface@1.2.3` without its version. */
export function unversioned(name) {
  const at = name.lastIndexOf('@');
  return at < 0 ? name : name.slice(0, at);
}

/** The version of `ns:pkg/iface@1.2.3`, or undefined. */
function versionOf(name) {
  const at = name.lastIndexOf('@');
  return at < 0 ? undefined : name.slice(at + 1);
}

/**
 * Semver compatibility as wasmtime's linker applies it: same major, and
 * for 0.x also the same minor (so 0.2.1 may stand in for 0.2.0, 0.3.0 may
 * not).
 * @param {string | undefined} a
 * @param {string} b
 */
export function semverCompatible(a, b) {
  if (a === undefined) return false;
  const [am, an] = a.split('.');
  const [bm, bn] = b.split('.');
  return am === bm && (am !== '0' || an === bn);
}

/**
 * Refuses a component built for another version of the contract (§2).
 * @param {World} world
 */
export function checkContractVersion(world) {
  const ours = (n) => n.startsWith('skillsmith:sync/');
  const imports = world.imports.filter(ours);
  const exports = world.exports.filter(ours);
  const foreign = [...imports, ...exports].filter((n) => !semverCompatible(versionOf(n), WIT_VERSION));
  const engine = exports.some((n) => unversioned(n) === 'skillsmith:sync/engine');
  if (foreign.length > 0 || !engine) {
    throw new HostFailure(
      'component',
      `the sync component does not match this host: the host implements ${WIT_PACKAGE} and ` +
        `needs the export ${ENGINE_EXPORT}; the component exports [${exports.join(', ')}] ` +
        `and imports [${imports.join(', ')}]`,
      { action: `use a component built for ${WIT_PACKAGE} (scripts/build-component.sh builds one from this checkout)` },
    );
  }
}

/**
 * Refuses a component that imports anything this host does not grant.
 * `bound` is the list of import names jco will bind (without versions),
 * checked too, so that nothing the WIT text hides can slip through.
 * @param {World} world
 * @param {string[]} bound
 */
export function refuseUngranted(world, bound) {
  const granted = new Set([...GRANTED_CONTRACT, ...GRANTED_WASI]);
  const asked = new Map();
  for (const name of world.imports) asked.set(unversioned(name), name);
  for (const name of bound) if (!asked.has(unversioned(name))) asked.set(unversioned(name), name);
  const refused = [];
  for (const [base, name] of asked) {
    // WASI 0.2.x only: another WASI version has other signatures.
    const wasiVersionOk = !base.startsWith('wasi:') || (versionOf(name) ?? '0.2.').startsWith('0.2.');
    if (!granted.has(base) || !wasiVersionOk) refused.push(name);
  }
  if (refused.length > 0) {
    throw new HostFailure(
      'component',
      `the sync component asks for what this host does not grant: it imports [${refused.join(', ')}]; ` +
        'a sync component may import only skillsmith:sync/*, and the empty wasi:io and wasi:cli ' +
        `interfaces (${GRANTED_WASI.map((n) => n.slice(5)).join(', ')})`,
      { action: 'use the sync component built from this checkout (scripts/build-component.sh); this one is not it' },
    );
  }
}
