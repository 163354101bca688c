//! Temporary harness.
#![allow(dead_code)]
#[path = "e2e/events_schema.rs"]
mod events_schema;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/resume.rs"]
mod resume;
#[path = "e2e/support.rs"]
mod support;
#[path = "e2e/tdd_cycle.rs"]
mod tdd_cycle;
