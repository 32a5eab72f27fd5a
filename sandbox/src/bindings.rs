//! Host bindings for the `skillsmith:sync` world, generated from `wit/`.
//!
//! Every import is `trappable`: its outer `wasmtime::Result` is for host
//! bugs that must stop the guest (a missing host, a full resource table),
//! while the WIT-level `result` inside is the guest's to handle. The
//! `http/pending` resource is backed by [`crate::pending::PendingSlot`].

wasmtime::component::bindgen!({
    world: "sync",
    path: "../wit",
    imports: { default: trappable },
    with: {
        "skillsmith:sync/http.pending": crate::pending::PendingSlot,
    },
});
