//! Deciding: the rules, the drift analysis, the plan (a pure function of the configuration,
//! both sides and the history), and what it compares and verifies.

pub(crate) mod action;
pub mod conflict;
pub mod differences;
pub(crate) mod drift;
pub mod metadata;
pub(crate) mod patterns;
pub mod plan;
pub mod rules;
pub mod scope;
pub mod verify;
