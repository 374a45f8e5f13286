//! The log lines of a firing log alarm in its Slack post: a code block of the newest matching
//! lines, escaped, and a link to CloudWatch Logs Insights for the alarm's window. Only
//! single-alert posts show them; a group names its alerts only.

use serde_json::{Value, json};

use super::text::{MAX_FIELD_TEXT, MAX_SECTION_TEXT, escape, link, truncate};
use crate::alert::LogExcerpt;

/// Characters of one escaped line kept in the code block: five lines and the heading stay
/// within a section's 3,000 characters even when every character needed an entity.
const MAX_ESCAPED_LINE: usize = 450;
/// Characters of the log group names in the heading.
const MAX_GROUPS_TEXT: usize = 200;

/// A line for a mrkdwn code block: escaped like all AWS text, and unable to close the block
/// early (a run of three backticks gets zero-width spaces between them).
pub fn code_line(text: &str) -> String {
    truncate(&escape(text), MAX_ESCAPED_LINE).replace("```", "`\u{200b}`\u{200b}`")
}

/// The blocks that show `excerpt`: a section with the lines (or why there are none) and a
/// context with the Logs Insights link when there is one.
pub fn log_excerpt_blocks(excerpt: &LogExcerpt) -> Vec<Value> {
    let groups = truncate(
        &excerpt
            .log_groups
            .iter()
            .map(|g| escape(g))
            .collect::<Vec<_>>()
            .join(", "),
        MAX_GROUPS_TEXT,
    );
    let window = format!(
        "{}–{} UTC",
        excerpt.window_start.format("%H:%M:%S"),
        excerpt.window_end.format("%H:%M:%S")
    );
    let text = if let Some(reason) = &excerpt.unavailable {
        format!("*Log lines unavailable:* {}", escape(reason))
    } else if excerpt.lines.is_empty() {
        format!("*Matching log lines:* none found in {groups} between {window}.")
    } else {
        let mut text = format!("*Matching log lines* (newest first, {groups}, {window}):\n```");
        let lines: Vec<String> = excerpt
            .lines
            .iter()
            .map(|line| {
                format!(
                    "{} {}",
                    line.time.format("%H:%M:%S%.3fZ"),
                    code_line(&line.message)
                )
            })
            .collect();
        text.push_str(&lines.join("\n"));
        text.push_str("```");
        if excerpt.more {
            text.push_str("\n_More lines matched than are shown._");
        }
        text
    };
    let mut blocks = vec![json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": truncate(&text, MAX_SECTION_TEXT) },
    })];
    if let Some(url) = &excerpt.insights_url {
        blocks.push(json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": truncate(&link(url, "Open the window in CloudWatch Logs Insights"), MAX_FIELD_TEXT),
            }],
        }));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::alert::LogLine;
    use crate::slack::text::live_injections;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn excerpt(lines: &[&str]) -> LogExcerpt {
        LogExcerpt {
            log_groups: vec!["/app/checkout".into()],
            window_start: at("2024-05-01T09:57:00Z"),
            window_end: at("2024-05-01T10:00:00Z"),
            lines: lines
                .iter()
                .map(|m| LogLine {
                    time: at("2024-05-01T09:59:40Z"),
                    message: m.to_string(),
                })
                .collect(),
            more: false,
            insights_url: Some("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights$3FqueryDetail$3D$257E$2528".into()),
            unavailable: None,
        }
    }

    #[test]
    fn lines_go_in_a_code_block_escaped_and_unable_to_close_it() {
        let blocks = log_excerpt_blocks(&excerpt(&[
            "ERROR <script>alert(1)</script> & <@U123> <!channel>",
            "ERROR ``` breaks out?",
        ]));
        let text = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;@U123&gt;"),
            "{text}"
        );
        assert!(live_injections(text).is_empty(), "{text}");
        assert_eq!(
            text.matches("```").count(),
            2,
            "only the block's own fences: {text}"
        );
        assert!(text.contains("09:59:40.000Z ERROR"), "{text}");
        let context = blocks[1]["elements"][0]["text"].as_str().unwrap();
        assert!(
            context.starts_with("<https://us-east-1.console.aws.amazon.com/"),
            "{context}"
        );
        assert!(context.ends_with("|Open the window in CloudWatch Logs Insights>"));
    }

    #[test]
    fn five_long_lines_of_entities_stay_within_a_section() {
        let worst = "<".repeat(300);
        let blocks = log_excerpt_blocks(&excerpt(&[worst.as_str(); 5]));
        let text = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(text.chars().count() <= MAX_SECTION_TEXT);
        assert!(
            text.ends_with("```"),
            "the block is closed: {}",
            &text[text.len() - 40..]
        );
    }

    fn options() -> crate::slack::RenderOptions {
        crate::slack::RenderOptions {
            route: crate::slack::RouteRef {
                namespace: "team".into(),
                name: "route".into(),
            },
            mentions: Vec::new(),
            acknowledge: true,
            retry: false,
            snooze: false,
        }
    }

    fn firing_log_alarm(fingerprint: &str) -> crate::alert::Alert {
        use crate::resources::{AlertKind, AlertState};
        let mut alert = crate::alert::Alert::new(
            AlertKind::CloudWatchAlarm,
            AlertState::Firing,
            crate::alert::Fingerprint::from_raw(fingerprint),
            "checkout-errors".into(),
        );
        alert.log_excerpt = Some(excerpt(&["ERROR payment declined"]));
        alert
    }

    /// Lines on an individual firing post only: a group lists its alerts, and the resolution
    /// that rewrites the post drops them.
    #[test]
    fn only_a_single_firing_post_shows_the_lines() {
        use crate::resources::AlertState;
        use crate::slack::{limit_violations, render_alert, render_group};
        let alert = firing_log_alarm("a");
        let single = render_alert(&alert, &options(), None);
        assert!(limit_violations(&single).is_empty());
        let json = single.to_json().to_string();
        assert!(
            json.contains("ERROR payment declined") && json.contains("Logs Insights"),
            "{json}"
        );
        let group = render_group(&[alert.clone(), firing_log_alarm("b")], &options(), None);
        assert!(
            !group
                .to_json()
                .to_string()
                .contains("ERROR payment declined")
        );
        let mut resolved = alert;
        resolved.state = AlertState::Resolved;
        let json = render_alert(&resolved, &options(), None)
            .to_json()
            .to_string();
        assert!(!json.contains("ERROR payment declined"), "{json}");
    }

    #[test]
    fn an_unavailable_excerpt_says_why_and_empty_says_none() {
        let mut unavailable = excerpt(&[]);
        unavailable.unavailable = Some("FilterLogEvents failed with AccessDeniedException".into());
        let text = log_excerpt_blocks(&unavailable)[0]["text"]["text"].to_string();
        assert!(
            text.contains(
                "Log lines unavailable:* FilterLogEvents failed with AccessDeniedException"
            ),
            "{text}"
        );
        let none = log_excerpt_blocks(&excerpt(&[]))[0]["text"]["text"].to_string();
        assert!(
            none.contains("none found in /app/checkout between 09:57:00–10:00:00 UTC"),
            "{none}"
        );
    }
}
