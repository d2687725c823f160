//! Library examples of custom import flows for bb-snyk-mirror's crates. The examples themselves
//! live in `examples/` and arrive with the examples issue.
