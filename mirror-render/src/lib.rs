//! How bb-snyk-mirror shows its values to people.
//!
//! [`mirror_core`] answers with values — a [`Plan`], a [`Report`], a [`Verification`] — and
//! never decides how they look. This crate is where they become text: a summary table, one
//! line per action under its org, colours for each line's sign when asked. The binary and the
//! examples print with it; a tool of your own can print the values its own way.
//!
//! ```
//! use mirror_render::{Render, RenderOptions};
//! # fn show(plan: &mirror_core::Plan) {
//! print!("{}", plan.render());
//! print!("{}", mirror_render::plan_with(plan, RenderOptions::default().summary_only(true)));
//! # }
//! ```

mod plan;
mod report;
mod verification;

use mirror_core::{Plan, Report, Verification};

pub use plan::{RenderOptions, plan_with};

/// A value shown to people as text (no colour).
pub trait Render {
    /// The value for people.
    fn render(&self) -> String;
}

impl Render for Plan {
    /// The summary table, the actions grouped by org, and the summary's line again at the end
    /// (see [`plan_with`]).
    fn render(&self) -> String {
        plan_with(self, RenderOptions::default())
    }
}

impl Render for Report {
    /// The summary, then one line per conflict, failure, change and warning.
    fn render(&self) -> String {
        report::render(self)
    }
}

impl Render for Verification {
    /// Every difference, one per line, then the closing line.
    fn render(&self) -> String {
        verification::render(self)
    }
}
