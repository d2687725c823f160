//! A typed client for the Snyk API (v1 and REST): orgs, integrations, import and targets.
//!
//! This crate is being built (see the snyk-client issue). The HTTP plumbing it will use lives in
//! [`api_support`].

pub use api_support;
