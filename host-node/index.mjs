// The Node host of the skillsmith:sync component, as a library: what
// cli.mjs uses, and what tests/js-host drives directly.
//
//   const result = await sync({ dbPath, registry });   // one sync, sync.mjs
//
// The parts, for a host that wants only some of them: loading and checking
// a component (component.mjs, grants.mjs), running it in a limited worker
// (guest.mjs, limits.mjs), the HTTP policy (http.mjs), the catalogue
// (schema.mjs, store.mjs) and the failure kinds (failure.mjs).

export { decideSchedule, sync } from './sync.mjs';
export { defaultCacheDir, findComponent, loadComponent } from './component.mjs';
export { WIT_PACKAGE, WIT_VERSION, checkContractVersion, parseWorld, refuseUngranted } from './grants.mjs';
export { runGuest } from './guest.mjs';
export { DEFAULT_LIMITS } from './limits.mjs';
export { DEFAULT_HTTP_POLICY, HttpImport } from './http.mjs';
export { LAYOUT_VERSION, allowedTiers, openCatalogue } from './schema.mjs';
export { CatalogueStore } from './store.mjs';
export { bindingName, openDatabase, sqliteCode } from './sqlite.mjs';
export { HostFailure, exitCode } from './failure.mjs';
export { ImportFailure } from './rpc.mjs';
export { INTERRUPTED_MESSAGE, LEASE_TTL_MS } from './lease.mjs';
