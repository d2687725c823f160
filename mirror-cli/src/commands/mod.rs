//! One module per command (snyk-api-import's five share `compat`); each takes what it needs
//! from `crate::context` and nothing calls back into the dispatcher (`crate::run`).

pub mod compat;
pub mod deliveries;
pub mod demo;
pub mod doctor;
pub mod hooks;
pub mod integrations;
pub mod plan;
pub mod practice;
pub mod runs;
pub mod serve;
pub mod sync;
pub mod verify;
