//! `deliveries`: what `serve` has queued, and what it set aside after it kept failing.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;

use crate::cli::Global;
use crate::exit;
use crate::output::Out;
use crate::settings;

/// `deliveries`: the queue and the deliveries set aside. Reads the state directory only.
pub fn list(g: &Global, out: Out) -> Result<u8> {
    let dir = settings::state_dir(g);
    let state = mirror_core::advanced::journal::read_state(&dir)?;
    let when = |at: u64| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at)).to_string()
    };
    if !out.human() {
        let queued: Vec<serde_json::Value> = state
            .pending
            .values()
            .map(|p| {
                serde_json::json!({
                    "uuid": p.uuid,
                    "workspace": p.workspace,
                    "deliveries": p.requests.len(),
                    "deleted": p.deleted,
                })
            })
            .collect();
        let set_aside: Vec<serde_json::Value> = state
            .set_aside
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("time".to_owned(), when(s.at).into());
                }
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"queued": queued, "set_aside": set_aside, "exit_code": exit::OK})
        );
        return Ok(exit::OK);
    }
    println!(
        "Queued: {} deliveries for {} repositories.",
        state.pending_deliveries,
        state.pending.len()
    );
    for p in state.pending.values() {
        println!(
            "  {} {} ({} deliveries{})",
            p.workspace,
            p.uuid,
            p.requests.len(),
            if p.deleted { ", deleted" } else { "" }
        );
    }
    if state.set_aside.is_empty() {
        println!("Nothing set aside.");
        return Ok(exit::OK);
    }
    println!(
        "Set aside after failing again and again ({} repositories; the next full reconcile covers them):",
        state.set_aside.len()
    );
    for s in &state.set_aside {
        println!(
            "  {} {} ({} deliveries, {} tries, {}): {}",
            s.workspace,
            s.uuid,
            s.deliveries,
            s.tries,
            when(s.at),
            s.why
        );
    }
    Ok(exit::OK)
}
