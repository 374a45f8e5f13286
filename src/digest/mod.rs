//! The digest workload (`alertops digest`): drain a DigestSchedule's queue, consolidate, send one
//! email, delete only what was sent.

pub mod consolidate;

pub use consolidate::{AlertGroup, DigestSummary, ReasonTotal, TeamSummary, consolidate};
pub mod render;

pub use render::{DigestContext, render_email, render_slack_summary};
