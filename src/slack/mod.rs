//! Slack: Block Kit rendering of alerts and tamper-evident button payloads.
//!
//! Rendering is pure; [`client`] is the only part that talks to Slack. The consumer posts what [`render_alert`] and
//! [`render_group`] return; the interaction endpoint verifies button values with
//! [`ButtonVerifier::verify`] and updates messages with [`mark_acknowledged`] and
//! [`mark_retry_progress`].

pub(crate) mod action_token;
pub(crate) mod client;
pub(crate) mod log_lines;
pub(crate) mod notes;
pub(crate) mod render;
pub mod snooze;
pub(crate) mod storm;
pub(crate) mod target;
pub mod text;

pub use action_token::{
    ActionPayload, ActionSigner, ActionTokenError, ButtonAction, ButtonVerifier, DEFAULT_MAX_AGE,
    RouteRef, SnoozeChoice, route_key, route_key_text,
};
pub use client::{PostedMessage, SlackClient, SlackError, SlackSettings, SlackTarget};
pub use notes::{
    human_duration, human_std_duration, render_reminder, render_snooze_ended, render_snoozed,
};
pub use render::{
    ACKNOWLEDGE_ACTION_PREFIX, ACTIONS_BLOCK_ID, ALERT_BLOCK_PREFIX, ButtonSigning,
    RETRY_ACTION_PREFIX, RenderOptions, RetryProgress, RetryStatus, SNOOZE_ACTION_PREFIX,
    STATUS_BLOCK_ID, SlackMessage, limit_violations, mark_acknowledged, mark_retry_progress,
    mark_snoozed, render_alert, render_group, render_group_headed, render_thread_reply,
};
pub use storm::{StormLine, StormSummary, render_storm_summary};
pub use target::{SlackTargetError, resolve_target};
