// Loading a sync component (docs/embedding.md §1, §2): finding the file,
// reading its world, refusing it (grants.mjs) before any of its code runs,
// transpiling it with jco, and compiling its core modules with their
// memories capped (limits.mjs). The result is handed to each run's worker,
// which instantiates it afresh.
//
// jco's transpile (about half a second) runs at load, from the bytes, so
// that any file given with `--component` works with no manual step; its
// output is cached on disk under the SHA-256 of the component and jco's
// version, so a second load of the same file only reads the cache. The
// checks run on every load, cached or not.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { HostFailure } from './failure.mjs';
import { checkContractVersion, parseWorld, refuseUngranted } from './grants.mjs';
import { DEFAULT_LIMITS, capMemories } from './limits.mjs';

/** The name jco gives the generated files (`component.js`, `component.core.wasm` ...). */
const NAME = 'component';

/** Bumped when the transpile options below change, so old caches are not read. */
const CACHE_FORMAT = 2;

/**
 * @typedef {object} LoadedComponent
 * @property {string} path
 * @property {string} sha256
 * @property {import('./grants.mjs').World} world
 * @property {string} source the generated ES module (`instantiate(getCoreModule, imports, instantiateCore)`)
 * @property {Record<string, WebAssembly.Module>} modules the core modules, compiled with capped memories
 * @property {number} memoryBytes the cap of each memory
 * @property {boolean} cached whether the transpile came from the cache
 */

// ---- finding it ---------------------------------------------------------------

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * The component of the checkout this host lives in: the first directory
 * up from here with `target/skillsmith-sync.wasm` beside `wit/world.wit`.
 * @param {string} [from]
 * @returns {string}
 */
export function findComponent(from = HERE) {
  let checkout;
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'wit', 'world.wit'))) {
      checkout ??= dir;
      const wasm = join(dir, 'target', 'skillsmith-sync.wasm');
      if (existsSync(wasm)) return wasm;
    }
    if (dirname(dir) === dir) break;
  }
  if (checkout) {
    throw new HostFailure('component', `the sync component is not built: ${join(checkout, 'target', 'skillsmith-sync.wasm')} does not exist`, {
      action: `build it with ${join(checkout, 'scripts', 'build-component.sh')}, or pass --component PATH`,
    });
  }
  throw new HostFailure('component', `no sync component was found: ${HERE} is not inside a Skillsmith checkout`, {
    action: 'pass --component PATH to a skillsmith-sync.wasm',
  });
}

// ---- the transpile cache ------------------------------------------------------------

/** Where transpiled components are kept. */
export function defaultCacheDir() {
  if (process.env.SKILLSMITH_CACHE_DIR) return join(process.env.SKILLSMITH_CACHE_DIR, 'node-host');
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'skillsmith', 'node-host');
}

/** jco-transpile's version, part of the cache key. */
function transpilerVersion() {
  const entry = fileURLToPath(import.meta.resolve('@bytecodealliance/jco-transpile'));
  for (let dir = dirname(entry); dirname(dir) !== dir; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
      if (pkg.name === '@bytecodealliance/jco-transpile') return pkg.version;
    }
  }
  return 'unknown';
}

/**
 * @typedef {object} Transpiled
 * @property {import('./grants.mjs').World} world
 * @property {string[]} bound the imports jco binds
 * @property {Record<string, Uint8Array>} files
 */

/** The cached transpile of `key`, or null (absent or unreadable). */
function readCache(dir) {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    /** @type {Record<string, Uint8Array>} */
    const files = {};
    for (const f of manifest.files) files[f] = readFileSync(join(dir, f));
    return { world: manifest.world, bound: manifest.bound, files };
  } catch {
    return null;
  }
}

/**
 * Writes a transpile to the cache: into a fresh directory that is then
 * renamed into place, so a reader never sees half of one. A cache that
 * cannot be written costs only the next load's time.
 * @param {string} dir
 * @param {Transpiled} t
 * @returns {string | null} why it was not written, or null
 */
function writeCache(dir, t) {
  let tmp;
  try {
    mkdirSync(dirname(dir), { recursive: true });
    tmp = mkdtempSync(`${dir}.tmp-`);
    for (const [f, bytes] of Object.entries(t.files)) writeFileSync(join(tmp, f), bytes);
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify({ world: t.world, bound: t.bound, files: Object.keys(t.files) }));
    renameSync(tmp, dir);
    return null;
  } catch (e) {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    // Another process wrote the same entry first: as good as ours.
    return existsSync(join(dir, 'manifest.json')) ? null : String(e?.code ?? e);
  }
}

// ---- loading ---------------------------------------------------------------------

/** The layer bytes of a component (a core module has 01 00 00 00). */
const COMPONENT_LAYER = [0x0d, 0x00, 0x01, 0x00];

/**
 * @param {Uint8Array} bytes
 * @param {string} path
 */
function checkIsComponent(bytes, path) {
  const magic = bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (!magic) {
    throw new HostFailure('component', `${path} is not a WebAssembly file`, {
      action: 'pass --component PATH to a skillsmith-sync.wasm built by scripts/build-component.sh',
    });
  }
  if (!COMPONENT_LAYER.every((b, i) => bytes[4 + i] === b)) {
    throw new HostFailure('component', `${path} is a core WebAssembly module, not a component`, {
      action: 'pass --component PATH to a skillsmith-sync.wasm built by scripts/build-component.sh',
    });
  }
}

/**
 * Reads the world and transpiles, refusing the component on the way.
 * @param {Uint8Array} bytes
 * @param {string} path
 * @returns {Promise<Transpiled>}
 */
async function transpile(bytes, path) {
  const [{ componentWit }, { transpileBytes }] = await Promise.all([
    import('@bytecodealliance/jco-transpile/wasm-tools'),
    import('@bytecodealliance/jco-transpile'),
  ]);
  let wit;
  try {
    wit = await componentWit(bytes);
  } catch (e) {
    throw new HostFailure('component', `${path} is not a valid WebAssembly component (${e?.message ?? e})`, {
      action: 'rebuild it with scripts/build-component.sh',
    });
  }
  const world = parseWorld(wit);
  // Refused from the world alone, before jco is asked to do anything with it.
  checkContractVersion(world);
  refuseUngranted(world, []);
  const out = await transpileBytes(bytes, {
    name: NAME,
    instantiation: 'sync',
    // Every core module as a file, none inlined as base64: each must go
    // through getCoreModule, where its memory is capped.
    base64Cutoff: 0,
    emitTypescriptDeclarations: false,
    minify: false,
    optimize: false,
    wasiShim: false,
    // An export's `err` is thrown as the value itself (guest-worker.mjs).
    noComponentErrorWrapping: true,
  });
  const files = {};
  for (const [f, data] of Object.entries(out.files)) if (f.endsWith('.js') || f.endsWith('.wasm')) files[f] = data;
  return { world, bound: out.imports, files };
}

/**
 * Loads the component at `path`.
 * @param {string} path
 * @param {{ memoryBytes?: number, cacheDir?: string | null }} [options]
 *   `cacheDir: null` turns the cache off
 * @returns {Promise<LoadedComponent>}
 */
export async function loadComponent(path, { memoryBytes = DEFAULT_LIMITS.memoryBytes, cacheDir = defaultCacheDir() } = {}) {
  let bytes;
  try {
    if (!statSync(path).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    bytes = readFileSync(path);
  } catch (e) {
    throw new HostFailure('component', `cannot read the sync component ${path} (${e?.code ?? e})`, {
      action: 'check the path given to --component, or build the component with scripts/build-component.sh',
    });
  }
  checkIsComponent(bytes, path);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const entry = cacheDir ? join(cacheDir, `${sha256}-jco-transpile-${transpilerVersion()}-${CACHE_FORMAT}`) : null;
  let t = entry ? readCache(entry) : null;
  const cached = t !== null;
  if (!t) {
    t = await transpile(bytes, path);
    if (entry) writeCache(entry, t);
  }
  // On every load, also from the cache: what was refused stays refused.
  checkContractVersion(t.world);
  refuseUngranted(t.world, t.bound);
  const source = t.files[`${NAME}.js`];
  if (!source) throw new HostFailure('internal', `jco produced no ${NAME}.js for ${path}`);
  /** @type {Record<string, WebAssembly.Module>} */
  const modules = {};
  for (const [f, data] of Object.entries(t.files)) {
    if (!f.endsWith('.wasm')) continue;
    try {
      modules[f] = new WebAssembly.Module(capMemories(data, memoryBytes));
    } catch (e) {
      if (e instanceof HostFailure) throw e;
      throw new HostFailure('component', `a core module of ${path} does not compile (${e?.message ?? e})`, {
        action: 'rebuild it with scripts/build-component.sh',
      });
    }
  }
  return { path, sha256, world: t.world, source: Buffer.from(source).toString('utf8'), modules, memoryBytes, cached };
}
