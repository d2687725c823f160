//! Reading both sides: the ports the core talks through, the adapters over the two clients,
//! the listings kept between runs, and the inventory a plan is made from.

pub mod adapters;
pub(crate) mod both;
pub mod inventory;
pub mod listing;
pub mod ports;
pub mod snyk_listing;
