//! A guest built against `skillsmith:sync@0.3.0` (`wit-future/`): what a
//! host meets when the component and the host disagree on the contract's
//! version. It must be refused at load time, before any code of it runs.

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "sync",
        path: "wit-future",
    });
}

use bindings::exports::skillsmith::sync::engine;
use bindings::skillsmith::sync::host;

struct Future;

// The export shims are `#[unsafe(export_name)]` functions.
#[allow(unsafe_code)]
mod export {
    use super::{Future, bindings};
    bindings::export!(Future with_types_in bindings);
}

impl engine::Guest for Future {
    fn run(registry: String) -> Result<String, String> {
        host::log(&registry);
        Ok(registry)
    }
}
