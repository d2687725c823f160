//! A verification for people: every difference, one per line, then the closing line.

use mirror_core::verify::{FindingKind, Verification};

/// Every difference, one per line, then the closing line.
pub(crate) fn render(verification: &Verification) -> String {
    let mut out = String::new();
    for d in &verification.differences {
        let mark = if d.explained { "=" } else { "!" };
        // A difference of Snyk's side names its subject itverification.
        if d.kind == FindingKind::Snyk {
            out.push_str(&format!("{mark} {}\n", d.reason));
        } else {
            out.push_str(&format!("{mark} {}: {}\n", d.subject, d.reason));
        }
    }
    out.push_str(&verification.closing_line());
    out.push('\n');
    out
}
