//! The storm summary: one Slack message for the backlog a Slack outage left, instead of a flood.
//!
//! It says how long Slack was unreachable and how many alerts arrived meanwhile, counts them per
//! source kind and state, and lists the most important problems (firing first, then by
//! severity, then by how many notifications each sent), each with its count. Every text that
//! came from AWS is escaped.

use std::time::Duration;

use serde_json::{Value, json};

use super::notes::human_std_duration;
use super::render::{RenderOptions, SlackMessage};
use super::text::{MAX_FALLBACK_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT, escape, plain, truncate};
use crate::resources::{AlertKind, AlertState, Severity};

/// Problems listed by name; the rest are counted.
pub const MAX_LISTED: usize = 15;
/// Characters of a problem's title in the list.
const TITLE_CHARS: usize = 120;

/// One problem (one fingerprint) of the backlog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StormLine {
    /// The alert's title (untrusted).
    pub title: String,
    /// What sent it.
    pub kind: AlertKind,
    /// Its severity.
    pub severity: Severity,
    /// Its latest state.
    pub state: AlertState,
    /// Notifications it sent during the outage.
    pub notifications: usize,
    /// Whether it is also posted on its own (buttons, mentions, a message to update later).
    pub posted_individually: bool,
}

/// What the summary tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StormSummary {
    /// How long Slack was unreachable, when known.
    pub outage: Option<Duration>,
    /// Every problem of the backlog, most important first.
    pub lines: Vec<StormLine>,
}

impl StormSummary {
    /// Notifications in the backlog.
    pub fn notifications(&self) -> usize {
        self.lines.iter().map(|l| l.notifications).sum()
    }
}

fn kind_label(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::CloudWatchAlarm => "CloudWatch alarms",
        AlertKind::EmrClusterStateChange => "EMR clusters",
        AlertKind::EcsServiceAction => "ECS services",
        AlertKind::EcsTaskStateChange => "ECS tasks",
        AlertKind::EventBridgeEvent => "other events",
        AlertKind::Message => "messages",
    }
}

fn state_word(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
        AlertState::InsufficientData => "insufficient data",
        AlertState::Info => "info",
    }
}

/// Renders the summary for a route.
pub fn render_storm_summary(summary: &StormSummary, options: &RenderOptions) -> SlackMessage {
    let problems = summary.lines.len();
    let notifications = summary.notifications();
    let firing = summary
        .lines
        .iter()
        .filter(|l| l.state == AlertState::Firing)
        .count();
    let headline = match summary.outage {
        Some(outage) => format!(
            "⚠️ Slack was unreachable for {}: {notifications} alerts arrived meanwhile",
            human_std_duration(outage)
        ),
        // A backlog found in the queue: Slack, or the consumer, was away.
        None => format!("⚠️ {notifications} alerts were waiting to be delivered"),
    };

    let mut kinds: Vec<(AlertKind, usize)> = Vec::new();
    for line in &summary.lines {
        match kinds.iter_mut().find(|(k, _)| *k == line.kind) {
            Some((_, n)) => *n += line.notifications,
            None => kinds.push((line.kind, line.notifications)),
        }
    }
    kinds.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let by_kind = kinds
        .iter()
        .map(|(k, n)| format!("{n} from {}", kind_label(*k)))
        .collect::<Vec<_>>()
        .join(", ");
    let individually = summary
        .lines
        .iter()
        .filter(|l| l.posted_individually)
        .count();
    let mut overview = format!("*{problems} problems*, {firing} still firing. {by_kind}.");
    if individually > 0 {
        overview.push_str(&format!(
            " {individually} of them follow as their own messages (firing High or Critical, or \
             updates of messages posted before)."
        ));
    }

    let listed: Vec<String> = summary
        .lines
        .iter()
        .take(MAX_LISTED)
        .map(|l| {
            let times = if l.notifications == 1 {
                String::new()
            } else {
                format!(" ×{}", l.notifications)
            };
            format!(
                "• *{}* {} — {}{times}",
                l.severity.as_str(),
                escape(&truncate(&l.title, TITLE_CHARS)),
                state_word(l.state),
            )
        })
        .collect();
    let mut list = listed.join("\n");
    if problems > MAX_LISTED {
        list.push_str(&format!("\n…and {} more problems", problems - MAX_LISTED));
    }

    let blocks: Vec<Value> = vec![
        json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(&plain(&headline), MAX_HEADER_TEXT), "emoji": true},
        }),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&overview, MAX_SECTION_TEXT)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&list, MAX_SECTION_TEXT)}}),
        json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!(
                "Route {}/{} · storm summary after a Slack outage",
                escape(&options.route.namespace),
                escape(&options.route.name)
            )}],
        }),
    ];
    SlackMessage {
        text: truncate(&format!("{headline}. {overview}"), MAX_FALLBACK_TEXT),
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::RouteRef;
    use crate::slack::render::limit_violations;

    fn options() -> RenderOptions {
        RenderOptions {
            route: RouteRef {
                namespace: "team".into(),
                name: "ops".into(),
            },
            mentions: vec![],
            acknowledge: true,
            retry: false,
            snooze: false,
        }
    }

    fn line(title: &str, state: AlertState, notifications: usize) -> StormLine {
        StormLine {
            title: title.into(),
            kind: AlertKind::CloudWatchAlarm,
            severity: Severity::Warning,
            state,
            notifications,
            posted_individually: false,
        }
    }

    #[test]
    fn the_summary_counts_lists_the_first_problems_and_escapes_aws_text() {
        let mut lines: Vec<StormLine> = (0..30)
            .map(|i| line(&format!("alarm-{i:02}"), AlertState::Resolved, 2))
            .collect();
        lines.insert(0, line("<!channel> disk full", AlertState::Firing, 7));
        let summary = StormSummary {
            outage: Some(Duration::from_secs(2 * 3600 + 5 * 60)),
            lines,
        };
        let message = render_storm_summary(&summary, &options());
        assert!(limit_violations(&message).is_empty());
        let all = format!(
            "{}{}",
            message.text,
            serde_json::to_string(&message.blocks).unwrap()
        );
        assert!(
            all.contains("unreachable for 2 h 5 min: 67 alerts"),
            "{all}"
        );
        assert!(all.contains("31 problems*, 1 still firing"), "{all}");
        assert!(
            all.contains("&lt;!channel&gt; disk full — firing ×7"),
            "{all}"
        );
        assert!(!all.contains("<!channel>"), "no live mention from AWS text");
        assert!(all.contains("alarm-13"), "15 listed");
        assert!(!all.contains("alarm-14"), "the 16th is only counted");
        assert!(all.contains("…and 16 more problems"), "{all}");
    }
}
