//! Slack Block Kit messages for alerts, groups of alerts, and their later updates.
//!
//! Every message stays within Slack's limits (50 blocks, 3,000 characters per section text,
//! 150 per header, 75 per button label, 2,000 per button value); long content is cut with a
//! visible "…(truncated)" rather than rejected, and the plain-text `text` fallback is always set.
//!
//! Blocks carry stable ids so that the interaction endpoint can update a message it only knows
//! from Slack's payload: [`ACTIONS_BLOCK_ID`] holds the buttons of a single-alert message,
//! [`STATUS_BLOCK_ID`] its status lines, and each alert of a group is a section whose id is
//! [`ALERT_BLOCK_PREFIX`] followed by the alert's fingerprint.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::action_token::{ActionPayload, ActionSigner, ButtonAction, RouteRef, SnoozeChoice};
use super::text::{
    MAX_ACTION_ELEMENTS, MAX_BLOCKS, MAX_BUTTON_TEXT, MAX_BUTTON_VALUE, MAX_CONTEXT_ELEMENTS,
    MAX_FALLBACK_TEXT, MAX_FIELD_TEXT, MAX_FIELDS, MAX_HEADER_TEXT, MAX_ID, MAX_SECTION_TEXT,
    escape, link, plain, slack_date, truncate, user_mention,
};
use crate::alert::{Alert, Fingerprint};
use crate::resources::{AlertRoute, AlertState, Severity};

/// Block id of the actions block of a single-alert message.
pub const ACTIONS_BLOCK_ID: &str = "alertops_actions";
/// Block id of the context block with status lines (fired, resolved, acknowledged, retries).
pub const STATUS_BLOCK_ID: &str = "alertops_status";
/// Prefix of the block id of each alert's section in a group message.
pub const ALERT_BLOCK_PREFIX: &str = "alertops_alert:";
/// Prefix of the action id of an Acknowledge button (followed by the fingerprint).
pub const ACKNOWLEDGE_ACTION_PREFIX: &str = "alertops_ack:";
/// Prefix of the action id of a Retry button (followed by the fingerprint).
pub const RETRY_ACTION_PREFIX: &str = "alertops_retry:";
/// Prefix of the action id of a Snooze button (followed by the choice and the fingerprint).
pub const SNOOZE_ACTION_PREFIX: &str = "alertops_snooze:";

/// Characters of an alert's summary shown in a group message.
const GROUP_SUMMARY_CHARS: usize = 300;

/// A Slack message: the `text` fallback (notifications, old clients) and the blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlackMessage {
    /// Plain-text fallback, always set.
    pub text: String,
    /// Block Kit blocks.
    pub blocks: Vec<Value>,
}

impl SlackMessage {
    /// The JSON body fields of `chat.postMessage`, `chat.update` and incoming webhooks
    /// (`{"text": ..., "blocks": [...]}`); add `channel` and `ts` as the call needs.
    pub fn to_json(&self) -> Value {
        json!({ "text": self.text, "blocks": self.blocks })
    }
}

/// How a route wants its messages: who to mention and which buttons to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// The route rendering the message; buttons name it so the interaction endpoint applies its
    /// policy.
    pub route: RouteRef,
    /// Mentions added to firing alerts of severity High or above (`<!subteam^S1>`, `<@U1>`).
    pub mentions: Vec<String>,
    /// Show Acknowledge buttons.
    pub acknowledge: bool,
    /// Show Retry buttons on failed EMR clusters.
    pub retry: bool,
    /// Show Snooze buttons on firing alerts.
    pub snooze: bool,
}

impl RenderOptions {
    /// The options an AlertRoute asks for.
    pub fn for_route(route: &AlertRoute) -> Self {
        let actions = route.spec.actions.clone().unwrap_or_default();
        RenderOptions {
            route: RouteRef {
                namespace: route.metadata.namespace.clone().unwrap_or_default(),
                name: route.metadata.name.clone().unwrap_or_default(),
            },
            mentions: route
                .spec
                .slack
                .as_ref()
                .map(|s| s.mentions.clone())
                .unwrap_or_default(),
            acknowledge: actions.acknowledge,
            retry: actions.retry.is_some_and(|r| r.enabled),
            snooze: actions.snooze.is_some_and(|s| s.enabled),
        }
    }
}

/// Signs buttons; without it messages have no buttons.
#[derive(Clone, Copy, Debug)]
pub struct ButtonSigning<'a> {
    /// The key holder.
    pub signer: &'a ActionSigner,
    /// Issued-at of the tokens.
    pub now: DateTime<Utc>,
}

/// How far a retry got, for [`mark_retry_progress`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryProgress {
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The route's cap.
    pub max_attempts: u32,
    /// Slack user id of who pressed Retry.
    pub user_id: String,
    /// Where the attempt stands.
    pub status: RetryStatus,
}

/// Where a retry attempt stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryStatus {
    /// The retry Job was created.
    Started,
    /// RunJobFlow accepted the new cluster.
    Submitted {
        /// Id of the new cluster.
        new_cluster_id: String,
    },
    /// The attempt failed before a cluster started.
    Failed {
        /// Why, for people.
        reason: String,
    },
    /// The press was refused (not allowed, attempts used up); the button stays.
    Refused {
        /// Why, for people.
        reason: String,
    },
}

/// One alert as its own message. Resolved alerts render as resolved and without buttons, for
/// `chat.update` of the message the firing alert posted.
pub fn render_alert(
    alert: &Alert,
    options: &RenderOptions,
    signing: Option<ButtonSigning<'_>>,
) -> SlackMessage {
    let resolved = alert.state == AlertState::Resolved;
    let mut blocks = Vec::new();
    blocks.push(header(&format!(
        "{} {}: {}",
        state_emoji(alert),
        alert_label(alert),
        alert.title
    )));

    let mut main = String::new();
    let mention_line = mentions_for(alert, options);
    if let Some(line) = &mention_line {
        main.push_str(line);
        main.push('\n');
    }
    if resolved {
        match alert.time {
            Some(at) => main.push_str(&format!("*Resolved at {}*\n", slack_date(at))),
            None => main.push_str("*Resolved*\n"),
        }
    }
    if alert.summary.trim().is_empty() {
        main.push_str("_No reason given._");
    } else {
        main.push_str(&escape(&alert.summary));
    }
    blocks.push(section(&main));

    let fields = summary_fields(alert);
    if !fields.is_empty() {
        blocks.push(json!({
            "type": "section",
            "fields": fields.iter().take(MAX_FIELDS).map(|f| mrkdwn(&truncate(f, MAX_FIELD_TEXT))).collect::<Vec<_>>(),
        }));
    }
    if !alert.details.is_empty() {
        let lines = alert
            .details
            .iter()
            // The summary fields already show the state.
            .filter(|d| {
                !(d.label == "State" && alert.source_state.as_deref() == Some(d.value.as_str()))
            })
            .map(|d| format!("*{}:* {}", escape(&d.label), escape(&d.value)))
            .collect::<Vec<_>>()
            .join("\n");
        blocks.push(section(&lines));
    }
    if !resolved && let Some(excerpt) = &alert.log_excerpt {
        blocks.extend(super::log_lines::log_excerpt_blocks(excerpt));
    }
    if let Some(context) = tags_and_links(alert) {
        blocks.push(context);
    }
    if !resolved && let Some(signing) = signing {
        let buttons = buttons_for(alert, options, signing);
        if !buttons.is_empty() {
            blocks.push(json!({
                "type": "actions",
                "block_id": ACTIONS_BLOCK_ID,
                "elements": buttons,
            }));
        }
    }
    let status = match (resolved, alert.time) {
        (true, Some(at)) => format!("Resolved at {}", slack_date(at)),
        (true, None) => "Resolved".to_string(),
        (false, Some(at)) => format!("{} at {}", alert_label(alert), slack_date(at)),
        (false, None) => alert_label(alert).to_string(),
    };
    blocks.push(json!({
        "type": "context",
        "block_id": STATUS_BLOCK_ID,
        "elements": [mrkdwn(&truncate(&status, MAX_FIELD_TEXT))],
    }));

    // The fallback is what notifications and mobile clients show, and Slack parses it as
    // mrkdwn: AWS text in it is escaped like in the blocks. The route's own mentions are the only
    // live ones.
    let mut text = format!("[{}] {}", alert_label(alert), escape(&alert.title));
    if !alert.summary.is_empty() {
        text.push_str(": ");
        text.push_str(&escape(&alert.summary));
    }
    if let Some(line) = mention_line {
        text = format!("{line} {text}");
    }
    SlackMessage {
        text: truncate(&text, MAX_FALLBACK_TEXT),
        blocks,
    }
}

/// The text of a thread reply about `alert` under the message that shows it: the fallback line
/// of the alert, after `change` (what changed, e.g. a new reason) when there is one. Escaped
/// like every fallback.
pub fn render_thread_reply(alert: &Alert, options: &RenderOptions, change: Option<&str>) -> String {
    let line = render_alert(alert, options, None).text;
    let text = match change {
        Some(change) => format!("*{}:* {line}", escape(change)),
        None => line,
    };
    truncate(&text, MAX_FALLBACK_TEXT)
}

/// Many alerts in one message (storm control). Each alert is one section with an Acknowledge
/// button; Retry buttons for failed EMR clusters share one actions block. Alerts beyond what 50
/// blocks hold are counted in a closing line.
pub fn render_group(
    alerts: &[Alert],
    options: &RenderOptions,
    signing: Option<ButtonSigning<'_>>,
) -> SlackMessage {
    render_group_headed(alerts, None, options, signing)
}

/// [`render_group`] for alerts that share message-attribute values (a route's
/// `grouping.byAttributes`): `heading` (plain text such as `correlation_id 9f2c`, untrusted)
/// is shown escaped under the header and leads the fallback text.
pub fn render_group_headed(
    alerts: &[Alert],
    heading: Option<&str>,
    options: &RenderOptions,
    signing: Option<ButtonSigning<'_>>,
) -> SlackMessage {
    let firing = alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .count();
    let resolved = alerts
        .iter()
        .filter(|a| a.state == AlertState::Resolved)
        .count();
    let other = alerts.len() - firing - resolved;
    let mut counts = Vec::new();
    if firing > 0 {
        counts.push(format!("{firing} firing"));
    }
    if resolved > 0 {
        counts.push(format!("{resolved} resolved"));
    }
    if other > 0 {
        counts.push(format!("{other} other"));
    }
    let emoji = if firing > 0 { "🔥" } else { "✅" };
    let headline = format!("{emoji} {} alerts: {}", alerts.len(), counts.join(", "));

    let mut blocks = vec![header(&headline)];
    let heading_line = heading.map(|h| format!("*Grouped by* {}", escape(h)));
    if let Some(line) = &heading_line {
        blocks.push(section(line));
    }
    let mention_line = alerts.iter().find_map(|a| mentions_for(a, options));
    if let Some(line) = &mention_line {
        blocks.push(section(line));
    }

    let retry_buttons: Vec<Value> = match signing {
        Some(signing) if options.retry => alerts
            .iter()
            .filter_map(|a| retry_button(a, options, signing, true))
            .take(MAX_ACTION_ELEMENTS)
            .collect(),
        _ => Vec::new(),
    };
    // Header, mentions, retry actions and the closing context are the fixed blocks.
    let fixed = blocks.len() + usize::from(!retry_buttons.is_empty()) + 1;
    let room = MAX_BLOCKS - fixed;
    let shown = alerts.len().min(room);
    for alert in &alerts[..shown] {
        blocks.push(group_section(alert, options, signing));
    }
    if !retry_buttons.is_empty() {
        blocks.push(json!({
            "type": "actions",
            "block_id": ACTIONS_BLOCK_ID,
            "elements": retry_buttons,
        }));
    }
    let mut footer = format!(
        "Route {}/{}",
        escape(&options.route.namespace),
        escape(&options.route.name)
    );
    if shown < alerts.len() {
        footer.push_str(&format!(
            " · …and {} more alerts not shown",
            alerts.len() - shown
        ));
    }
    blocks.push(json!({
        "type": "context",
        "block_id": STATUS_BLOCK_ID,
        "elements": [mrkdwn(&footer)],
    }));

    let titles = alerts
        .iter()
        .map(|a| format!("[{}] {}", alert_label(a), escape(&a.title)))
        .collect::<Vec<_>>()
        .join("; ");
    let mut text = match &heading_line {
        Some(line) => format!("{headline} ({line}). {titles}"),
        None => format!("{headline}. {titles}"),
    };
    if let Some(line) = mention_line {
        text = format!("{line} {text}");
    }
    SlackMessage {
        text: truncate(&text, MAX_FALLBACK_TEXT),
        blocks,
    }
}

/// The message after `user_id` acknowledged the alert `fingerprint`: its Acknowledge button is
/// gone and "Acknowledged by <@U..> at ..." is shown (in the alert's section for a group).
pub fn mark_acknowledged(
    message: &SlackMessage,
    fingerprint: &Fingerprint,
    user_id: &str,
    at: DateTime<Utc>,
) -> SlackMessage {
    let line = format!(
        "✅ Acknowledged by {} at {}",
        user_mention(user_id),
        slack_date(at)
    );
    let ack_id = format!("{ACKNOWLEDGE_ACTION_PREFIX}{fingerprint}");
    let mut updated = message.clone();
    remove_buttons(&mut updated.blocks, &ack_id);
    if !append_to_group_section(&mut updated.blocks, fingerprint, &line, None) {
        set_status_line(&mut updated.blocks, &line, None);
    }
    updated
}

/// The message after `user_id` snoozed the alert `fingerprint` until `until`: a status line
/// saying so (the buttons stay: snoozing again moves the end).
pub fn mark_snoozed(
    message: &SlackMessage,
    fingerprint: &Fingerprint,
    user_id: &str,
    until: DateTime<Utc>,
) -> SlackMessage {
    let line = format!(
        "😴 Snoozed by {} until {}",
        user_mention(user_id),
        slack_date(until)
    );
    let mut updated = message.clone();
    if !append_to_group_section(&mut updated.blocks, fingerprint, &line, Some("😴 Snoozed")) {
        set_status_line(&mut updated.blocks, &line, Some("😴 Snoozed"));
    }
    updated
}

/// The message after a retry of the alert `fingerprint` moved on: "Retry 2/3 started by <@U..>",
/// then the new cluster id or the failure. The Retry button goes away unless the press was
/// refused. A later update of the same attempt replaces its line.
pub fn mark_retry_progress(
    message: &SlackMessage,
    fingerprint: &Fingerprint,
    progress: &RetryProgress,
) -> SlackMessage {
    let key = format!("Retry {}/{}", progress.attempt, progress.max_attempts);
    let who = user_mention(&progress.user_id);
    let line = match &progress.status {
        RetryStatus::Started => format!("🔁 {key} started by {who}"),
        RetryStatus::Submitted { new_cluster_id } => format!(
            "🔁 {key} started by {who}: new cluster `{}`",
            escape(new_cluster_id)
        ),
        RetryStatus::Failed { reason } => {
            format!("⚠️ {key} by {who} failed: {}", escape(reason))
        }
        RetryStatus::Refused { reason } => {
            format!("⛔ Retry refused for {who}: {}", escape(reason))
        }
    };
    let line = truncate(&line, MAX_FIELD_TEXT / 2);
    let mut updated = message.clone();
    if !matches!(progress.status, RetryStatus::Refused { .. }) {
        remove_buttons(
            &mut updated.blocks,
            &format!("{RETRY_ACTION_PREFIX}{fingerprint}"),
        );
    }
    let replace = (!matches!(progress.status, RetryStatus::Refused { .. })).then_some(key.as_str());
    if !append_to_group_section(&mut updated.blocks, fingerprint, &line, replace) {
        set_status_line(&mut updated.blocks, &line, replace);
    }
    updated
}

/// Every way `message` breaks Slack's limits, empty when it is valid. The renderers never
/// produce violations; this checks that, and messages edited elsewhere.
pub fn limit_violations(message: &SlackMessage) -> Vec<String> {
    let mut problems = Vec::new();
    if message.text.trim().is_empty() {
        problems.push("empty text fallback".to_string());
    }
    if message.blocks.len() > MAX_BLOCKS {
        problems.push(format!("{} blocks", message.blocks.len()));
    }
    let chars = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
    for (i, block) in message.blocks.iter().enumerate() {
        let kind = block["type"].as_str().unwrap_or("");
        if chars(&block["block_id"]) > MAX_ID {
            problems.push(format!("block {i}: block_id too long"));
        }
        match kind {
            "header" if chars(&block["text"]["text"]) > MAX_HEADER_TEXT => {
                problems.push(format!("block {i}: header over {MAX_HEADER_TEXT}"));
            }
            "section" => {
                if chars(&block["text"]["text"]) > MAX_SECTION_TEXT {
                    problems.push(format!("block {i}: section text over {MAX_SECTION_TEXT}"));
                }
                let fields = block["fields"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                if fields.len() > MAX_FIELDS {
                    problems.push(format!("block {i}: {} fields", fields.len()));
                }
                if fields.iter().any(|f| chars(&f["text"]) > MAX_FIELD_TEXT) {
                    problems.push(format!("block {i}: field over {MAX_FIELD_TEXT}"));
                }
                if !block["accessory"].is_null() {
                    problems.extend(button_violations(i, &block["accessory"]));
                }
            }
            "context" => {
                let elements = block["elements"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                if elements.len() > MAX_CONTEXT_ELEMENTS {
                    problems.push(format!("block {i}: {} context elements", elements.len()));
                }
                if elements.iter().any(|e| chars(&e["text"]) > MAX_FIELD_TEXT) {
                    problems.push(format!("block {i}: context element over {MAX_FIELD_TEXT}"));
                }
            }
            "actions" => {
                let elements = block["elements"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                if elements.is_empty() || elements.len() > MAX_ACTION_ELEMENTS {
                    problems.push(format!("block {i}: {} action elements", elements.len()));
                }
                for element in elements {
                    problems.extend(button_violations(i, element));
                }
            }
            _ => {}
        }
    }
    problems
}

fn button_violations(block: usize, button: &Value) -> Vec<String> {
    let chars = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
    let mut problems = Vec::new();
    if chars(&button["text"]["text"]) > MAX_BUTTON_TEXT {
        problems.push(format!(
            "block {block}: button label over {MAX_BUTTON_TEXT}"
        ));
    }
    if chars(&button["value"]) > MAX_BUTTON_VALUE {
        problems.push(format!(
            "block {block}: button value over {MAX_BUTTON_VALUE}"
        ));
    }
    if chars(&button["action_id"]) > MAX_ID {
        problems.push(format!("block {block}: action_id too long"));
    }
    problems
}

fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&plain(text), MAX_HEADER_TEXT), "emoji": true },
    })
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": mrkdwn(&truncate(text, MAX_SECTION_TEXT)) })
}

/// The label of an alert's state; a plain message is not an alert and is not called "Firing".
fn alert_label(alert: &Alert) -> &'static str {
    if alert.kind == crate::resources::AlertKind::Message && alert.state == AlertState::Firing {
        "Message"
    } else {
        state_label(alert.state)
    }
}

fn state_label(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "Firing",
        AlertState::Resolved => "Resolved",
        AlertState::InsufficientData => "Insufficient data",
        AlertState::Info => "Info",
    }
}

/// Firing alerts look urgent, by severity; resolved ones look done.
fn state_emoji(alert: &Alert) -> &'static str {
    if alert.kind == crate::resources::AlertKind::Message && alert.state == AlertState::Firing {
        return "📨";
    }
    match alert.state {
        AlertState::Firing => match alert.effective_severity() {
            Severity::Critical => "🚨",
            Severity::High => "🔴",
            Severity::Warning => "🟠",
            Severity::Info => "🔵",
        },
        AlertState::Resolved => "✅",
        AlertState::InsufficientData => "⚪",
        AlertState::Info => "ℹ️",
    }
}

/// The route's mentions, for firing alerts of severity High or above.
fn mentions_for(alert: &Alert, options: &RenderOptions) -> Option<String> {
    (alert.state == AlertState::Firing
        && alert.effective_severity() >= Severity::High
        && !options.mentions.is_empty())
    .then(|| options.mentions.join(" "))
}

fn summary_fields(alert: &Alert) -> Vec<String> {
    // The severity routes act on: what the source or a tag said, Warning otherwise (see the
    // README's severity table). Shown as the one value, never with a "(default)" aside.
    let mut fields = vec![format!(
        "*Severity*\n{}",
        alert.effective_severity().as_str()
    )];
    let mut push = |label: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            fields.push(format!("*{label}*\n{}", escape(value)));
        }
    };
    push("Resource", alert.resource.as_deref());
    push("Account", alert.account.as_deref());
    push("Region", alert.region.as_deref());
    push("State", alert.source_state.as_deref());
    if let Some(at) = alert.time {
        fields.push(format!("*Time*\n{}", slack_date(at)));
    }
    fields
}

fn tags_and_links(alert: &Alert) -> Option<Value> {
    let mut elements = Vec::new();
    if !alert.tags.is_empty() {
        let tags = alert
            .tags
            .iter()
            // AWS's own tags and alertops' bookkeeping (ownership, runbook: shown as a link)
            // mean nothing to the people reading the alert.
            .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("alertops.dev/"))
            .filter(|(k, _)| k.as_str() != crate::alert::SEVERITY_TAG)
            .map(|(k, v)| format!("{}: {}", escape(k), escape(v)))
            .collect::<Vec<_>>()
            .join(" · ");
        if !tags.is_empty() {
            elements.push(mrkdwn(&truncate(&tags, MAX_FIELD_TEXT)));
        }
    }
    if !alert.links.is_empty() {
        // Links are not cut: a truncated URL is worse than a missing one.
        let mut text = String::new();
        for l in &alert.links {
            let next = link(&l.url, &l.label);
            if text.chars().count() + next.chars().count() + 3 > MAX_FIELD_TEXT {
                break;
            }
            if !text.is_empty() {
                text.push_str(" · ");
            }
            text.push_str(&next);
        }
        if !text.is_empty() {
            elements.push(mrkdwn(&text));
        }
    }
    (!elements.is_empty()).then(|| json!({ "type": "context", "elements": elements }))
}

fn buttons_for(alert: &Alert, options: &RenderOptions, signing: ButtonSigning<'_>) -> Vec<Value> {
    let mut buttons = Vec::new();
    if let Some(ack) = ack_button(alert, options, signing) {
        buttons.push(ack);
    }
    if let Some(retry) = retry_button(alert, options, signing, false) {
        buttons.push(retry);
    }
    buttons.extend(snooze_buttons(alert, options, signing));
    buttons
}

/// One Snooze button per choice, on firing alerts of routes that allow snoozing. The choice is
/// in the signed value, so a press cannot ask for another length.
fn snooze_buttons(
    alert: &Alert,
    options: &RenderOptions,
    signing: ButtonSigning<'_>,
) -> Vec<Value> {
    if !options.snooze || alert.state != AlertState::Firing {
        return Vec::new();
    }
    SnoozeChoice::ALL
        .into_iter()
        .filter_map(|choice| {
            let payload = ActionPayload {
                action: ButtonAction::Snooze,
                route: options.route.clone(),
                fingerprint: alert.fingerprint.clone(),
                cluster_id: None,
                original_cluster_id: None,
                snooze: Some(choice),
                issued_at: signing.now,
            };
            let label = match choice {
                SnoozeChoice::UntilTomorrowMorning => "Snooze until tomorrow 09:00".to_string(),
                other => format!("Snooze {}", other.label()),
            };
            let code = serde_json::to_value(choice).ok()?;
            button(
                &label,
                &format!(
                    "{SNOOZE_ACTION_PREFIX}{}:{}",
                    code.as_str()?,
                    alert.fingerprint
                ),
                &payload,
                signing.signer,
                None,
            )
        })
        .collect()
}

fn ack_button(alert: &Alert, options: &RenderOptions, signing: ButtonSigning<'_>) -> Option<Value> {
    // Resolved alerts and information (a steady state, a normal termination) leave nothing
    // for anyone to acknowledge.
    if !options.acknowledge || matches!(alert.state, AlertState::Resolved | AlertState::Info) {
        return None;
    }
    let payload = ActionPayload {
        action: ButtonAction::Acknowledge,
        route: options.route.clone(),
        fingerprint: alert.fingerprint.clone(),
        cluster_id: None,
        original_cluster_id: None,
        snooze: None,
        issued_at: signing.now,
    };
    button(
        "Acknowledge",
        &format!("{ACKNOWLEDGE_ACTION_PREFIX}{}", alert.fingerprint),
        &payload,
        signing.signer,
        Some("primary"),
    )
}

/// A Retry button, only on a failed EMR cluster and only when the route enables retries.
fn retry_button(
    alert: &Alert,
    options: &RenderOptions,
    signing: ButtonSigning<'_>,
    with_cluster_in_label: bool,
) -> Option<Value> {
    if !options.retry {
        return None;
    }
    let cluster_id = alert.failed_emr_cluster_id()?;
    let payload = ActionPayload {
        action: ButtonAction::Retry,
        route: options.route.clone(),
        fingerprint: alert.fingerprint.clone(),
        cluster_id: Some(cluster_id.to_string()),
        original_cluster_id: alert.original_emr_cluster_id().map(str::to_string),
        snooze: None,
        issued_at: signing.now,
    };
    let label = if with_cluster_in_label {
        format!("Retry {cluster_id}")
    } else {
        "Retry".to_string()
    };
    button(
        &label,
        &format!("{RETRY_ACTION_PREFIX}{}", alert.fingerprint),
        &payload,
        signing.signer,
        Some("danger"),
    )
}

/// A signed button; `None` when the token cannot be made (too long for Slack), so the message
/// still goes out without it.
fn button(
    label: &str,
    action_id: &str,
    payload: &ActionPayload,
    signer: &ActionSigner,
    style: Option<&str>,
) -> Option<Value> {
    let value = signer.sign(payload).ok()?;
    let mut button = json!({
        "type": "button",
        "text": { "type": "plain_text", "text": truncate(&plain(label), MAX_BUTTON_TEXT), "emoji": true },
        "action_id": truncate(action_id, MAX_ID),
        "value": value,
    });
    if let Some(style) = style {
        button["style"] = json!(style);
    }
    Some(button)
}

fn group_section(
    alert: &Alert,
    options: &RenderOptions,
    signing: Option<ButtonSigning<'_>>,
) -> Value {
    let mut text = format!(
        "{} *{}* — {}",
        state_emoji(alert),
        escape(&alert.title),
        alert_label(alert)
    );
    if let Some(severity) = alert.severity {
        text.push_str(&format!(", {}", severity.as_str()));
    }
    if !alert.summary.trim().is_empty() {
        text.push('\n');
        text.push_str(&escape(&truncate(&alert.summary, GROUP_SUMMARY_CHARS)));
    }
    let mut facts: Vec<String> = [&alert.resource, &alert.account, &alert.region]
        .into_iter()
        .flatten()
        .map(|s| escape(s))
        .collect();
    if let Some(at) = alert.time {
        facts.push(slack_date(at));
    }
    if let Some(l) = alert.links.first() {
        facts.push(link(&l.url, &l.label));
    }
    if !facts.is_empty() {
        text.push('\n');
        text.push_str(&facts.join(" · "));
    }
    let mut block = json!({
        "type": "section",
        "block_id": format!("{ALERT_BLOCK_PREFIX}{}", alert.fingerprint),
        "text": mrkdwn(&truncate(&text, MAX_SECTION_TEXT)),
    });
    if let Some(signing) = signing
        && let Some(ack) = ack_button(alert, options, signing)
    {
        block["accessory"] = ack;
    }
    block
}

/// Removes the buttons with `action_id` wherever they are: in actions blocks (dropping blocks
/// left empty) and as section accessories.
fn remove_buttons(blocks: &mut Vec<Value>, action_id: &str) {
    for block in blocks.iter_mut() {
        if block["accessory"]["action_id"].as_str() == Some(action_id)
            && let Some(object) = block.as_object_mut()
        {
            object.remove("accessory");
        }
        if block["type"] == "actions"
            && let Some(elements) = block["elements"].as_array_mut()
        {
            elements.retain(|e| e["action_id"].as_str() != Some(action_id));
        }
    }
    blocks.retain(|b| {
        b["type"] != "actions" || b["elements"].as_array().is_some_and(|e| !e.is_empty())
    });
}

/// Adds `line` to the group section of `fingerprint`, replacing a line containing `replace`.
/// Returns false when the message has no such section (a single-alert message).
fn append_to_group_section(
    blocks: &mut [Value],
    fingerprint: &Fingerprint,
    line: &str,
    replace: Option<&str>,
) -> bool {
    let block_id = format!("{ALERT_BLOCK_PREFIX}{fingerprint}");
    let Some(block) = blocks
        .iter_mut()
        .find(|b| b["block_id"].as_str() == Some(block_id.as_str()))
    else {
        return false;
    };
    let current = block["text"]["text"].as_str().unwrap_or("");
    let mut lines: Vec<&str> = current
        .lines()
        .filter(|l| replace.is_none_or(|key| !l.contains(key)))
        .collect();
    // Keep the new line whole: cut the existing text instead.
    let budget = MAX_SECTION_TEXT.saturating_sub(line.chars().count() + 1);
    let kept = truncate(&lines.join("\n"), budget);
    lines = vec![kept.as_str(), line];
    block["text"] = mrkdwn(&lines.join("\n"));
    true
}

/// Adds `line` to the status context block (creating it if needed), replacing an element
/// containing `replace`. When the block is full the oldest line after the first goes.
fn set_status_line(blocks: &mut Vec<Value>, line: &str, replace: Option<&str>) {
    let element = mrkdwn(&truncate(line, MAX_FIELD_TEXT));
    if let Some(block) = blocks
        .iter_mut()
        .find(|b| b["block_id"].as_str() == Some(STATUS_BLOCK_ID))
        && let Some(elements) = block["elements"].as_array_mut()
    {
        if let Some(key) = replace
            && let Some(existing) = elements
                .iter_mut()
                .find(|e| e["text"].as_str().is_some_and(|t| t.contains(key)))
        {
            *existing = element;
            return;
        }
        if elements.len() >= MAX_CONTEXT_ELEMENTS {
            elements.remove(1.min(elements.len() - 1));
        }
        elements.push(element);
        return;
    }
    if blocks.len() >= MAX_BLOCKS {
        blocks.truncate(MAX_BLOCKS - 1);
    }
    blocks.push(json!({
        "type": "context",
        "block_id": STATUS_BLOCK_ID,
        "elements": [element],
    }));
}

#[cfg(test)]
mod tests;
