//! A typed client for the Bitbucket Cloud REST API 2.0.
//!
//! This crate is being built (see the bitbucket-cloud-client issue): authentication with every
//! current credential kind, workspace and repository listings with pagination, and a sandbox.
//! The HTTP plumbing it will use lives in [`api_support`].

pub use api_support;
