//! What becomes of a delivery offered to the mirror.

/// What became of a delivery offered to [`crate::Mirror::queue_delivery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Queued in the journal (on disk): it will be reconciled.
    Queued,
    /// Its `X-Request-UUID` was seen before (a retry or a replay): nothing more to do.
    Duplicate,
    /// Its workspace is out of scope and the repository is not mirrored: ignored.
    OutOfScope {
        /// Why, naming the configuration.
        why: String,
    },
}
