//! tmp
#![allow(missing_docs)]
pub mod bindings;
pub struct PendingSlot;
