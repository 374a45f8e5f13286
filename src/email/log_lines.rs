//! The log lines of a firing log alarm in an email: a heading, the lines in a `<pre>` block
//! (escaped), and the Logs Insights link; the plain-text part gets the same, indented.

use super::html::{self, Html};
use crate::alert::LogExcerpt;

/// The HTML fragment and the plain-text lines that show `excerpt`.
pub fn render_log_excerpt(excerpt: &LogExcerpt) -> (Html, String) {
    let mut body = Html::empty();
    let mut text = String::new();
    let groups = excerpt.log_groups.join(", ");
    let window = format!(
        "{} – {} UTC",
        excerpt.window_start.format("%Y-%m-%d %H:%M:%S"),
        excerpt.window_end.format("%H:%M:%S")
    );
    if let Some(reason) = &excerpt.unavailable {
        let line = format!("Log lines unavailable: {reason}");
        body.push(html::paragraph(Html::text(&line)));
        text.push_str(&format!("{line}\n"));
    } else if excerpt.lines.is_empty() {
        let line = format!("Matching log lines: none found in {groups} between {window}.");
        body.push(html::paragraph(Html::text(&line)));
        text.push_str(&format!("{line}\n"));
    } else {
        let heading = format!("Matching log lines (newest first, {groups}, {window})");
        body.push(html::heading(3, &heading));
        let lines: Vec<String> = excerpt
            .lines
            .iter()
            .map(|line| format!("{} {}", line.time.format("%H:%M:%S%.3fZ"), line.message))
            .collect();
        body.push(html::preformatted(&lines.join("\n")));
        text.push_str(&format!("{heading}:\n"));
        for line in &lines {
            text.push_str(&format!("    {line}\n"));
        }
        if excerpt.more {
            body.push(html::paragraph(html::muted(Html::text(
                "More lines matched than are shown.",
            ))));
            text.push_str("    (more lines matched than are shown)\n");
        }
    }
    if let Some(url) = &excerpt.insights_url {
        body.push(html::paragraph(html::link(
            url,
            "Open the window in CloudWatch Logs Insights",
        )));
        text.push_str(&format!("CloudWatch Logs Insights: {url}\n"));
    }
    (body, text)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::alert::LogLine;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn lines_are_escaped_in_a_pre_block_and_plain_in_the_text_part() {
        let excerpt = LogExcerpt {
            log_groups: vec!["/app/checkout".into()],
            window_start: at("2024-05-01T09:57:00Z"),
            window_end: at("2024-05-01T10:00:00Z"),
            lines: vec![LogLine {
                time: at("2024-05-01T09:59:40Z"),
                message: "ERROR <script>alert(1)</script> & \"quoted\"".into(),
            }],
            more: true,
            insights_url: Some("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights$3F".into()),
            unavailable: None,
        };
        let (html, text) = render_log_excerpt(&excerpt);
        let html = html.as_str();
        assert!(html.contains("<pre "), "{html}");
        assert!(
            html.contains("09:59:40.000Z ERROR &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;</pre>"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(
            html.contains("href=\"https://us-east-1.console.aws.amazon.com/"),
            "{html}"
        );
        assert!(
            text.contains("    09:59:40.000Z ERROR <script>alert(1)</script> & \"quoted\"\n"),
            "{text}"
        );
        assert!(text.contains("(more lines matched than are shown)"));
        assert!(text.contains("CloudWatch Logs Insights: https://"));
    }
}
