//! Host bindings for the `skillsmith:sync` world, generated from `wit/`.

wasmtime::component::bindgen!({
    world: "sync",
    path: "../wit",
    imports: { default: trappable },
    with: {
        "skillsmith:sync/http.pending": crate::PendingSlot,
    },
});
