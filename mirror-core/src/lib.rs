//! The domain of bb-snyk-mirror: inventory of both sides, the plan (a pure function), apply with a
//! journal, and snyk-api-import's file formats.
//!
//! This crate is being built (see the mirror-core issue); it depends on both clients.

pub use bitbucket_cloud_client;
pub use snyk_client;
