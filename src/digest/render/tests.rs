use chrono::TimeZone;

use super::*;
use crate::digest::consolidate::consolidate;
use crate::digest::consolidate::tests::{alarm, emr_failure};

fn context() -> DigestContext {
    DigestContext {
        schedule: "data/twice-daily".into(),
        subject_prefix: Some("[prod]".into()),
        window_start: Some(Utc.with_ymd_and_hms(2024, 5, 1, 3, 0, 0).unwrap()),
        window_end: Utc.with_ymd_and_hms(2024, 5, 1, 15, 0, 0).unwrap(),
        time_zone: chrono_tz::America::Los_Angeles,
        possibly_expired: None,
    }
}

#[test]
fn a_span_whose_alerts_may_have_expired_is_reported_in_both_parts() {
    let mut late = context();
    late.possibly_expired = Some((
        Utc.with_ymd_and_hms(2024, 4, 29, 3, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2024, 4, 30, 11, 0, 0).unwrap(),
    ));
    let email = render_email(&late, &sample());
    for part in [&email.text, &email.html] {
        assert!(part.contains("may have expired"), "{part}");
        assert!(part.contains("2024-04-30 04:00 PDT"), "{part}");
    }
    assert!(!render_email(&context(), &sample()).text.contains("expired"));
}

fn sample() -> DigestSummary {
    let mut alerts = Vec::new();
    for i in 0..8 {
        alerts.push(emr_failure(
            &format!("j-{i}"),
            Some("data"),
            Some("ingest"),
            "VALIDATION_ERROR",
            "Subnet is required",
            i,
        ));
    }
    for i in 0..3 {
        alerts.push(emr_failure(
            &format!("j-b{i}"),
            Some("web"),
            None,
            "BOOTSTRAP_FAILURE",
            "Bootstrap action 1 <script>alert('x')</script> failed",
            20 + i,
        ));
    }
    alerts.push(alarm("cpu-high", Some("web"), "Threshold & more", 1));
    consolidate(&alerts)
}

#[test]
fn subject_names_schedule_total_window_and_top_reason() {
    let subject = subject(&context(), &sample());
    assert_eq!(
        subject,
        "[prod] Alert digest twice-daily: 12 alerts, 2024-04-30 20:00 PDT – 2024-05-01 08:00 PDT — top: VALIDATION_ERROR: Subnet is required (8)"
    );
}

#[test]
fn window_on_one_day_names_the_date_once() {
    let mut context = context();
    context.window_start = Some(Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap());
    assert_eq!(context.window(), "2024-05-01 02:00 – 08:00 PDT");
    context.window_start = None;
    assert_eq!(context.window(), "until 2024-05-01 08:00 PDT");
}

#[test]
fn alert_text_is_escaped_in_html_and_plain_in_text() {
    let email = render_email(&context(), &sample());
    assert!(!email.html.contains("<script>"));
    assert!(
        email
            .html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
    );
    assert!(email.html.contains("Threshold &amp; more"));
    assert!(email.text.contains("<script>alert('x')</script>"));
    assert!(email.text.contains("latest: Threshold & more"));
}

#[test]
fn top_reason_and_busiest_team_come_first() {
    let email = render_email(&context(), &sample());
    for part in [&email.html, &email.text] {
        let validation = part.find("VALIDATION_ERROR: Subnet is required").unwrap();
        let bootstrap = part.find("BOOTSTRAP_FAILURE").unwrap();
        assert!(validation < bootstrap);
        let data = part.find("Team data: 8 alerts").unwrap();
        let web = part.find("Team web: 4 alerts").unwrap();
        assert!(data < web);
    }
    assert!(
        email
            .text
            .contains("      8  VALIDATION_ERROR: Subnet is required (teams: data)")
    );
}

#[test]
fn long_lists_are_capped_with_a_count_of_the_rest() {
    let email = render_email(&context(), &sample());
    // 8 clusters in the top group, 5 named.
    assert!(email.html.contains("etl-j-4 (j-4) +3 more"));
    assert!(!email.html.contains("etl-j-5 (j-5)"));
    assert!(email.text.contains("involved: etl-j-0 (j-0), etl-j-1 (j-1), etl-j-2 (j-2), etl-j-3 (j-3), etl-j-4 (j-4) +3 more"));

    let many: Vec<_> = (0..(MAX_GROUPS_PER_TEAM + 2))
        .map(|i| {
            emr_failure(
                &format!("j-{i}"),
                Some("data"),
                None,
                &format!("E{i:02}"),
                "x",
                1,
            )
        })
        .chain((0..(MAX_TOP_REASONS)).map(|_| alarm("a", Some("data"), "r", 1)))
        .collect();
    let email = render_email(&context(), &consolidate(&many));
    // 17 EMR reasons and one alarm reason in one team: 15 listed.
    assert!(email.html.contains("+3 more groups (3 alerts)"));
    assert!(email.text.contains("+3 more groups (3 alerts)"));
    let more_reasons = MAX_GROUPS_PER_TEAM + 2 + 1 - MAX_TOP_REASONS;
    assert!(email.text.contains(&format!(
        "+{more_reasons} more reasons ({more_reasons} alerts)"
    )));
}

#[test]
fn html_and_text_carry_the_same_counts() {
    let email = render_email(&context(), &sample());
    for needle in [
        "12 alerts across 2 teams with 3 distinct reasons",
        "Team data: 8 alerts",
        "Team web: 4 alerts",
        "ingest 8",
    ] {
        assert!(email.html.contains(needle), "html lacks {needle}");
        assert!(email.text.contains(needle), "text lacks {needle}");
    }
    assert!(email.html.starts_with("<!DOCTYPE html>"));
    assert!(email.text.contains("Times are in America/Los_Angeles."));
}

#[test]
fn empty_digest_says_so() {
    let email = render_email(&context(), &DigestSummary::default());
    assert_eq!(
        email.subject,
        "[prod] Alert digest twice-daily: no alerts, 2024-04-30 20:00 PDT – 2024-05-01 08:00 PDT"
    );
    assert!(email.text.contains("No alerts, 2024-04-30 20:00 PDT"));
    assert!(!email.html.contains("Top reasons"));
}

#[test]
fn subject_is_one_bounded_line() {
    let mut context = context();
    context.subject_prefix = Some("[a\nb]".into());
    let alerts = vec![emr_failure("j-1", None, None, "E", &"y".repeat(500), 1)];
    let subject = subject(&context, &consolidate(&alerts));
    assert!(!subject.contains('\n'));
    assert!(subject.starts_with("[a b] Alert digest"));
    assert!(subject.chars().count() <= MAX_SUBJECT);
}

#[test]
fn slack_summary_is_short_and_escaped() {
    let message = render_slack_summary(&context(), &sample(), 2);
    let text = message.blocks[0]["text"]["text"].as_str().unwrap();
    assert!(text.starts_with("*Alert digest data/twice-daily: 12 alerts,"));
    assert!(text.contains("• 8 × VALIDATION_ERROR: Subnet is required"));
    assert!(text.contains("&lt;script&gt;"));
    assert!(text.contains("Teams: data 8, web 4"));
    assert!(text.ends_with("_Full digest emailed to 2 recipients._"));
    assert!(crate::slack::limit_violations(&message).is_empty());
}

#[test]
fn slack_summary_escapes_injected_mentions_everywhere() {
    use crate::slack::text::{INJECTIONS, live_injections};
    let evil = INJECTIONS.join(" ");
    let alerts = vec![emr_failure(
        "j-1",
        Some(&evil),
        Some(&evil),
        &evil,
        &evil,
        1,
    )];
    let mut context = context();
    context.schedule = format!("data/{evil}");
    let message = render_slack_summary(&context, &consolidate(&alerts), 1);
    assert_eq!(
        live_injections(&message.text),
        Vec::<&str>::new(),
        "{}",
        message.text
    );
    let blocks = serde_json::to_string(&message.blocks).unwrap();
    assert_eq!(live_injections(&blocks), Vec::<&str>::new(), "{blocks}");
}

/// Issue 14: a snooze holds alerts back from Slack, never from the digest, which lists them
/// marked as snoozed.
#[test]
fn snoozed_alerts_are_listed_and_marked() {
    let alerts = vec![
        alarm("cpu-high", Some("web"), "Threshold crossed", 1),
        alarm("cpu-high", Some("web"), "Threshold crossed", 2),
        alarm("disk-full", Some("web"), "Disk full", 3),
    ];
    let cpu = alerts[0].fingerprint.clone();
    let summary =
        crate::digest::consolidate::consolidate_marking(&alerts, &[], |a| a.fingerprint == cpu);
    assert_eq!((summary.total, summary.snoozed), (3, 2));
    let email = render_email(&context(), &summary);
    assert!(
        email.text.contains("snoozed in Slack: 2 alerts"),
        "{}",
        email.text
    );
    assert!(email.html.contains("snoozed in Slack: 2 alerts"));
    assert_eq!(
        email.text.matches("snoozed in Slack").count(),
        1,
        "only the snoozed group"
    );
    let unmarked = render_email(&context(), &consolidate(&alerts));
    assert!(!unmarked.text.contains("snoozed"));
}

/// Issue 13: the schedule's correlation attributes are listed per row, escaped, and only those
/// it names.
#[test]
fn correlation_attributes_are_listed_per_row_escaped() {
    let mut alerts = vec![
        alarm("cpu-high", Some("web"), "Threshold crossed", 1),
        alarm("cpu-high", Some("web"), "Threshold crossed", 2),
        alarm("disk-full", Some("web"), "Disk full", 3),
    ];
    alerts[0]
        .attributes
        .insert("correlation_id".into(), "<script>x()</script>".into());
    alerts[1]
        .attributes
        .insert("correlation_id".into(), "req-2".into());
    alerts[1]
        .attributes
        .insert("secret_token".into(), "not-named".into());
    let names = vec!["correlation_id".to_string()];
    let summary = crate::digest::consolidate::consolidate_marking(&alerts, &names, |_| false);
    let email = render_email(&context(), &summary);
    assert!(
        email.html.contains(
            "Correlation: correlation_id &lt;script&gt;x()&lt;/script&gt;, correlation_id req-2"
        ),
        "{}",
        email.html
    );
    assert!(!email.html.contains("<script>"), "inert: {}", email.html);
    assert!(
        email
            .text
            .contains("Correlation: correlation_id <script>x()</script>, correlation_id req-2"),
        "plain text carries the value as written: {}",
        email.text
    );
    assert_eq!(
        email.text.matches("Correlation:").count(),
        1,
        "only the row whose alerts carried one"
    );
    assert!(!email.text.contains("not-named") && !email.html.contains("not-named"));
}
