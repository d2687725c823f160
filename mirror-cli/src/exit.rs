//! The exit codes of `bb-snyk-mirror`, kept beside the report and the errors they are read
//! from, so that the binary and tests of custom flows agree on them.

use bitbucket_cloud_client::ErrorKind;

use mirror_core::Report;

/// Done.
pub const OK: u8 = 0;
/// Finished with failures (failed imports, conflicts), or a run that stopped on an API error.
pub const FAILURES: u8 = 1;
/// Usage or configuration error: nothing was changed.
pub const USAGE: u8 = 2;
/// Credentials rejected: nothing was changed.
pub const AUTH: u8 = 3;
/// Interrupted; run again to resume.
pub const INTERRUPTED: u8 = 4;

/// The exit code of a run that ended with an error of this kind.
pub fn for_error(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Auth => AUTH,
        ErrorKind::Config | ErrorKind::NotFound | ErrorKind::Gone => USAGE,
        _ => FAILURES,
    }
}

/// The exit code of a run that produced this report.
pub fn for_report(report: &Report) -> u8 {
    if report.interrupted {
        INTERRUPTED
    } else if report.has_failures() {
        FAILURES
    } else {
        OK
    }
}
