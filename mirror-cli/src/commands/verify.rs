//! `verify`: both sides read, nothing written, every difference named with its reason.

use anyhow::Result;
use mirror_core::Verification;
use mirror_render::Render as _;

use crate::commands::plan::read_plan;
use crate::context::Ctx;
use crate::exit;
use crate::output::Out;

/// Reads Bitbucket and Snyk in full, prints every difference and the closing line; exit 0
/// when every difference is explained, 1 when any is not.
pub async fn command(ctx: &Ctx, out: Out) -> Result<u8> {
    let verification = Verification::of(&read_plan(ctx, out, false).await?);
    let code = if verification.holds() {
        exit::OK
    } else {
        exit::FAILURES
    };
    if out.human() {
        print!("{}", verification.render());
    } else {
        println!(
            "{}",
            serde_json::json!({"verification": verification, "exit_code": code})
        );
    }
    Ok(code)
}
