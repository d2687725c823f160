//! Acting: apply in stages, the import protocol and scheduler, the journal every remote change
//! goes through, and what a run reports.

pub(crate) mod apply;
pub mod credentials;
pub mod import;
pub mod journal;
pub mod report;
pub mod runs;
