//! The host side of the `http/pending` resource, which the bindings map to
//! [`PendingSlot`].

/// The value of the `http/pending` resource: a request in flight (an
/// embedder's `Pending`), until its result is taken by `wait`. Not
/// generic because the bindings name one type for the resource.
pub struct PendingSlot(pub(crate) Option<Box<dyn std::any::Any + Send>>);

impl std::fmt::Debug for PendingSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "PendingSlot(in flight)"
        } else {
            "PendingSlot(taken)"
        })
    }
}
