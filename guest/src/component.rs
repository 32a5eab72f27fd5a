//! The `skillsmith:sync` component glue: WIT bindings, a [`Host`] over the
//! imports, and the exports calling [`engine::run`] and [`schedule::decide`].
//! The conversions between WIT and domain types are [`crate::wit_conversions!`],
//! shared with the host; all logic lives in the plain-Rust modules, where it is
//! tested natively.

// Generated code is documented from the WIT where the WIT has docs, and uses
// `unsafe` for the canonical ABI.
#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "sync",
        path: "../wit",
    });
}

use bindings::exports::skillsmith::sync::{engine as wit_engine, schedule as wit_schedule};
use bindings::skillsmith::sync::{host, http, store};

use crate::convert::Convert;
use crate::domain::{self, Host};
use crate::{engine, schedule};

// Decoding a page allocates for nearly every field of every record, and
// dlmalloc, the standard library's allocator on wasm32, made that a good
// part of what the component costs over the same code built natively
// (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

struct Component;

// The export shims are `#[unsafe(export_name)]` functions.
#[allow(unsafe_code)]
mod export {
    use super::{Component, bindings};
    bindings::export!(Component with_types_in bindings);
}

impl wit_engine::Guest for Component {
    fn run(
        options: wit_engine::SyncOptions,
    ) -> Result<wit_engine::SyncReport, wit_engine::SyncError> {
        engine::run(&mut WitHost, options.convert()).convert()
    }
}

impl wit_schedule::Guest for Component {
    fn decide(
        config: wit_schedule::ScheduleConfig,
        now_ms: i64,
        jitter_seed: u64,
    ) -> wit_schedule::Decision {
        schedule::decide(config.convert(), now_ms, jitter_seed).convert()
    }
}

/// [`Host`] over the component's imports.
struct WitHost;

impl Host for WitHost {
    type Pending = http::Pending;

    fn http_send(&mut self, request: domain::HttpRequest) -> http::Pending {
        http::send(&request.convert())
    }

    fn http_wait(
        &mut self,
        pending: http::Pending,
    ) -> Result<domain::HttpResponse, domain::HttpError> {
        pending.wait().convert()
    }

    fn read_state(&mut self) -> Result<domain::SyncState, domain::StoreError> {
        store::read_state().convert()
    }

    fn local_versions(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<domain::LocalVersion>>, domain::StoreError> {
        store::local_versions(ids).convert()
    }

    fn registry_ids(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, domain::StoreError> {
        store::registry_ids(after, limit).map_err(Convert::convert)
    }

    fn registry_rows(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<domain::RegistryRow>>, domain::StoreError> {
        store::registry_rows(ids).convert()
    }

    fn begin_run(&mut self, mode: domain::SyncMode) -> Result<u64, domain::StoreError> {
        store::begin_run(mode.convert()).map_err(Convert::convert)
    }

    fn apply_page(&mut self, run: u64, page: domain::Page) -> Result<(), domain::StoreError> {
        store::apply_page(run, &page.convert()).map_err(Convert::convert)
    }

    fn finish_run(
        &mut self,
        run: u64,
        outcome: domain::RunOutcome,
    ) -> Result<(), domain::StoreError> {
        store::finish_run(run, &outcome.convert()).map_err(Convert::convert)
    }

    fn log(&mut self, level: domain::Level, message: &str) {
        host::log(level.convert(), message);
    }

    fn progress(&mut self, report: domain::Progress) -> domain::Directive {
        host::progress(report.convert()).convert()
    }

    fn sleep(&mut self, ms: u64) -> domain::Directive {
        host::sleep(ms).convert()
    }

    fn random(&mut self) -> u64 {
        host::random()
    }
}

/// The bindings' import and export trees under the names
/// [`crate::wit_conversions!`] expects.
mod wit {
    pub use super::bindings::exports::skillsmith::sync as exports;
    pub use super::bindings::skillsmith::sync as imports;
}
use wit::{exports, imports};

crate::wit_conversions!(imports, exports);
