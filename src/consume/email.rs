//! The immediate email of a route: one email per delivered group, rendered from the same alert
//! model as the Slack message (pure; [`crate::email::send_email`] sends it).

use crate::alert::Alert;
use crate::email::EmailMessage;
use crate::email::html::{self, Align, Html};
use crate::email::text::{one_line, truncate};
use crate::resources::AlertState;

/// Longest subject line, in characters (mail clients cut long subjects anyway).
const MAX_SUBJECT: usize = 200;
/// Longest summary shown per alert, in characters.
const MAX_SUMMARY: usize = 2_000;

fn state_label(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "FIRING",
        AlertState::Resolved => "RESOLVED",
        AlertState::InsufficientData => "INSUFFICIENT DATA",
        AlertState::Info => "INFO",
    }
}

/// The subject: `[prefix] STATE: title`, or `[prefix] N alerts (F firing): first title` for a
/// group, on one line and at most [`MAX_SUBJECT`] characters.
pub fn subject(alerts: &[Alert], prefix: Option<&str>) -> String {
    let mut subject = String::new();
    if let Some(prefix) = prefix.map(one_line).filter(|p| !p.is_empty()) {
        subject.push_str(&prefix);
        subject.push(' ');
    }
    match alerts {
        [] => subject.push_str("no alerts"),
        [alert] => {
            subject.push_str(state_label(alert.state));
            subject.push_str(": ");
            subject.push_str(&one_line(&alert.title));
        }
        [first, ..] => {
            let firing = alerts
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .count();
            subject.push_str(&format!(
                "{} alerts ({firing} firing): {}",
                alerts.len(),
                one_line(&first.title)
            ));
        }
    }
    truncate(&subject, MAX_SUBJECT)
}

/// The email of `alerts` for the route `route` (`namespace/name`): the subject above, and an
/// HTML and a plain-text part listing each alert with its state, severity, resource, time,
/// summary, details and links.
pub fn render(route: &str, alerts: &[Alert], prefix: Option<&str>) -> EmailMessage {
    let subject = subject(alerts, prefix);
    let mut body = Html::empty();
    body.push(html::heading(1, &subject));
    body.push(html::paragraph(html::muted(Html::text(&format!(
        "AlertRoute {route} · {} alert{}",
        alerts.len(),
        if alerts.len() == 1 { "" } else { "s" }
    )))));
    let mut text = format!("{subject}\nAlertRoute {route}\n");
    for alert in alerts {
        let state = state_label(alert.state);
        let title = one_line(&alert.title);
        body.push(html::heading(2, &format!("{state}: {title}")));
        text.push_str(&format!("\n== {state}: {title}\n"));
        let mut rows: Vec<Vec<Html>> = Vec::new();
        let mut row = |label: &str, value: &str| {
            rows.push(vec![Html::text(label), Html::text(value)]);
            text.push_str(&format!("{label}: {value}\n"));
        };
        if let Some(severity) = alert.severity {
            row("Severity", severity.as_str());
        }
        if let Some(resource) = &alert.resource {
            row("Resource", &one_line(resource));
        }
        if let Some(time) = alert.time {
            row("Time", &time.to_rfc3339());
        }
        if let Some(account) = &alert.account {
            row("Account", account);
        }
        if let Some(region) = &alert.region {
            row("Region", region);
        }
        for detail in &alert.details {
            row(&one_line(&detail.label), &one_line(&detail.value));
        }
        row("Fingerprint", alert.fingerprint.as_str());
        if !alert.summary.trim().is_empty() {
            let summary = truncate(alert.summary.trim(), MAX_SUMMARY);
            body.push(html::paragraph(Html::text(&summary)));
            text.push_str(&format!("{summary}\n"));
        }
        body.push(html::table(
            &[("Field", Align::Left), ("Value", Align::Left)],
            &rows,
        ));
        if !alert.links.is_empty() {
            let links = alert.links.iter().map(|link| {
                text.push_str(&format!("{}: {}\n", one_line(&link.label), link.url));
                Html::concat([
                    html::link(&link.url, &one_line(&link.label)),
                    html::line_break(),
                ])
            });
            let links = Html::concat(links.collect::<Vec<_>>());
            body.push(html::paragraph(links));
        }
        if alert.state == AlertState::Firing
            && let Some(excerpt) = &alert.log_excerpt
        {
            let (lines_html, lines_text) = crate::email::log_lines::render_log_excerpt(excerpt);
            body.push(lines_html);
            text.push_str(&lines_text);
        }
    }
    EmailMessage {
        html: html::document(&subject, body),
        text,
        subject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Fingerprint, Link};
    use crate::resources::{AlertKind, Severity};

    fn alert(fp: &str, state: AlertState, title: &str) -> Alert {
        let mut a = Alert::new(
            AlertKind::CloudWatchAlarm,
            state,
            Fingerprint::from_raw(fp),
            title.to_string(),
        );
        a.severity = Some(Severity::Critical);
        a.summary = "CPU > 80 <b>for</b> 5 minutes".into();
        a.links = vec![Link {
            label: "Runbook".into(),
            url: "https://runbooks.example/cpu".into(),
        }];
        a
    }

    #[test]
    fn one_alert_has_its_state_in_the_subject_and_escaped_html() {
        let email = render(
            "team/payments",
            &[alert("f1", AlertState::Firing, "payments <cpu>\nhigh")],
            Some("[prod]"),
        );
        assert_eq!(email.subject, "[prod] FIRING: payments <cpu> high");
        assert!(email.html.contains("payments &lt;cpu&gt; high"));
        assert!(!email.html.contains("<b>for</b>"), "alert text is escaped");
        assert!(email.html.contains("href=\"https://runbooks.example/cpu\""));
        assert!(email.text.contains("Severity: Critical"));
        assert!(email.text.contains("Fingerprint: f1"));
        assert!(email.text.contains("Runbook: https://runbooks.example/cpu"));
    }

    #[test]
    fn correlation_attributes_a_route_names_are_rows_escaped() {
        let mut a = alert("f1", AlertState::Firing, "feed");
        a.attributes
            .insert("request_id".into(), "<i>req-42</i>".into());
        a.attributes.insert("other".into(), "hidden".into());
        a.show_attributes(&["request_id".to_string()]);
        let email = render("team/feed", &[a], None);
        assert!(
            email.text.contains("request_id: <i>req-42</i>"),
            "{}",
            email.text
        );
        assert!(
            email.html.contains("&lt;i&gt;req-42&lt;/i&gt;"),
            "{}",
            email.html
        );
        assert!(!email.text.contains("hidden"));
    }

    #[test]
    fn a_group_counts_its_alerts_and_fits_one_line() {
        let alerts = vec![
            alert("a", AlertState::Firing, &"x".repeat(500)),
            alert("b", AlertState::Resolved, "b"),
        ];
        let email = render("team/r", &alerts, None);
        assert!(
            email.subject.starts_with("2 alerts (1 firing): xxx"),
            "{}",
            email.subject
        );
        assert_eq!(email.subject.chars().count(), MAX_SUBJECT);
        assert!(!email.subject.contains('\n'));
        assert!(email.text.contains("== RESOLVED: b"));
        assert_eq!(email.html.matches("<h2 ").count(), 2);
    }
}
