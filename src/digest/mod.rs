//! The digest workload (`alertops digest`): drain a DigestSchedule's queue, consolidate by team,
//! feature and failure reason, send one email (and optionally a Slack summary), and delete the
//! messages only after SES accepted the email.
//!
//! [`consolidate`](mod@consolidate), [`render`] and [`schedule`] (cron maths and the queue
//! retention it needs, shared by the reconciler and the lint) are pure; [`queue`] and [`run`]
//! do the I/O.

pub(crate) mod command;
pub(crate) mod consolidate;
pub(crate) mod queue;
pub(crate) mod render;
pub(crate) mod run;
pub mod schedule;
pub mod sent;

pub use consolidate::{AlertGroup, DigestSummary, ReasonTotal, TeamSummary, consolidate};
pub use render::{DigestContext, render_email, render_slack_summary};
pub use run::{
    AcceptedDigest, DigestError, DigestReport, DigestSettings, SlackSummaryOutcome, run_digest,
    run_digest_with, send_digest_with,
};
