//! The digest workload (`alertops digest`): drain a DigestSchedule's queue, consolidate, send one
//! email, delete only what was sent.

pub mod consolidate;

pub use consolidate::{AlertGroup, DigestSummary, ReasonTotal, TeamSummary, consolidate};
pub mod render;

pub use render::{DigestContext, render_email, render_slack_summary};
pub mod queue;
pub mod run;

pub use run::{
    DigestError, DigestReport, DigestSettings, SlackSummaryOutcome, SlackTargetError, run_digest,
    run_digest_with, slack_target,
};
