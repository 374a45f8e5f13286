use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;
use crate::alert::decode_sqs_body;
use crate::resources::Tags;
use crate::slack::action_token::DEFAULT_MAX_AGE;
use crate::slack::text::TRUNCATION_MARK;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events/",
            $name
        ))
    };
}

const KEY: &[u8] = b"test key for slack buttons, 32 bytes+";

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap()
}

fn signer() -> ActionSigner {
    ActionSigner::new(KEY).unwrap()
}

fn options(retry: bool, mentions: &[&str]) -> RenderOptions {
    RenderOptions {
        route: RouteRef {
            namespace: "data".into(),
            name: "emr-failures".into(),
        },
        mentions: mentions.iter().map(|m| m.to_string()).collect(),
        acknowledge: true,
        retry,
        snooze: false,
    }
}

fn emr_failure() -> Alert {
    let mut alert = decode_sqs_body(fixture!("emr_cluster_terminated_with_errors.json"));
    alert.apply_tags(Tags::from([
        ("Team".to_string(), "data".to_string()),
        ("Feature".to_string(), "billing".to_string()),
    ]));
    alert
}

fn buttons(message: &SlackMessage) -> Vec<Value> {
    let mut found = Vec::new();
    for block in &message.blocks {
        if block["type"] == "actions" {
            found.extend(block["elements"].as_array().unwrap().iter().cloned());
        }
        if block["accessory"].is_object() {
            found.push(block["accessory"].clone());
        }
    }
    found
}

fn all_text(message: &SlackMessage) -> String {
    serde_json::to_string(&message.blocks).unwrap()
}

#[test]
fn failed_emr_cluster_has_acknowledge_and_signed_retry() {
    let alert = emr_failure();
    let signer = signer();
    let signing = ButtonSigning {
        signer: &signer,
        now: now(),
    };
    let message = render_alert(&alert, &options(true, &[]), Some(signing));
    assert!(
        limit_violations(&message).is_empty(),
        "{:?}",
        limit_violations(&message)
    );
    let header = message.blocks[0]["text"]["text"].as_str().unwrap();
    assert_eq!(
        header,
        "🚨 Firing: EMR cluster Development Cluster (j-123456789ABC) terminated with errors"
    );
    assert!(
        message
            .text
            .starts_with("[Firing] EMR cluster Development Cluster")
    );
    let buttons = buttons(&message);
    assert_eq!(buttons.len(), 2);
    assert_eq!(buttons[0]["text"]["text"], "Acknowledge");
    assert_eq!(buttons[1]["text"]["text"], "Retry");
    let retry = signer
        .verify(
            buttons[1]["value"].as_str().unwrap(),
            now(),
            DEFAULT_MAX_AGE,
        )
        .unwrap();
    assert_eq!(retry.action, ButtonAction::Retry);
    assert_eq!(retry.cluster_id.as_deref(), Some("j-123456789ABC"));
    assert_eq!(retry.original_cluster_id.as_deref(), Some("j-123456789ABC"));
    assert_eq!(retry.fingerprint, alert.fingerprint);
    assert_eq!(retry.route.name, "emr-failures");
    let ack = signer
        .verify(
            buttons[0]["value"].as_str().unwrap(),
            now(),
            DEFAULT_MAX_AGE,
        )
        .unwrap();
    assert_eq!(ack.action, ButtonAction::Acknowledge);
    assert_eq!(ack.cluster_id, None);
    let text = all_text(&message);
    assert!(text.contains("Feature: billing · Team: data"), "tags shown");
    assert!(
        text.contains("clusterDetails/j-123456789ABC|Open in EMR"),
        "console link"
    );
    assert!(text.contains("*Reason code:* VALIDATION_ERROR"));
}

#[test]
fn retry_only_on_failed_clusters_of_routes_that_enable_it() {
    let signer = signer();
    let signing = Some(ButtonSigning {
        signer: &signer,
        now: now(),
    });
    let no_retry = render_alert(&emr_failure(), &options(false, &[]), signing);
    assert_eq!(buttons(&no_retry).len(), 1, "acknowledge only");
    let terminated = decode_sqs_body(fixture!("emr_cluster_terminated_user_request_raw.json"));
    let message = render_alert(&terminated, &options(true, &[]), signing);
    assert!(
        buttons(&message)
            .iter()
            .all(|b| b["text"]["text"] != "Retry")
    );
    let alarm = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    let message = render_alert(&alarm, &options(true, &[]), signing);
    assert!(
        buttons(&message)
            .iter()
            .all(|b| b["text"]["text"] != "Retry")
    );
    let unsigned = render_alert(&emr_failure(), &options(true, &[]), None);
    assert!(buttons(&unsigned).is_empty(), "no key, no buttons");
    let mut quiet = options(true, &[]);
    quiet.acknowledge = false;
    let message = render_alert(&emr_failure(), &quiet, signing);
    let labels: Vec<_> = buttons(&message)
        .iter()
        .map(|b| b["text"]["text"].clone())
        .collect();
    assert_eq!(labels, vec![Value::from("Retry")]);
}

#[test]
fn original_cluster_of_a_retried_cluster_goes_in_the_token() {
    let mut alert = emr_failure();
    alert.apply_tags(Tags::from([(
        crate::alert::ORIGINAL_CLUSTER_TAG.to_string(),
        "j-ORIGINAL".to_string(),
    )]));
    let signer = signer();
    let message = render_alert(
        &alert,
        &options(true, &[]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    let retry = buttons(&message)
        .into_iter()
        .find(|b| b["text"]["text"] == "Retry")
        .unwrap();
    let payload = signer
        .verify(retry["value"].as_str().unwrap(), now(), DEFAULT_MAX_AGE)
        .unwrap();
    assert_eq!(payload.original_cluster_id.as_deref(), Some("j-ORIGINAL"));
    assert_eq!(payload.cluster_id.as_deref(), Some("j-123456789ABC"));
}

#[test]
fn resolved_alarm_renders_as_resolved_without_buttons() {
    let ok = decode_sqs_body(fixture!("cloudwatch_alarm_ok.json"));
    let signer = signer();
    let message = render_alert(
        &ok,
        &options(true, &["<!subteam^S1>"]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    assert_eq!(message.blocks[0]["text"]["text"], "✅ Resolved: EXAMPLE");
    assert!(buttons(&message).is_empty());
    let text = all_text(&message);
    assert!(text.contains("*Resolved at <!date^1433354007^"), "{text}");
    assert!(!text.contains("subteam"), "no mentions on resolved alerts");
    assert!(message.text.starts_with("[Resolved] EXAMPLE"));
    let status = message.blocks.last().unwrap();
    assert_eq!(status["block_id"], STATUS_BLOCK_ID);
    assert!(
        status["elements"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Resolved at ")
    );
}

#[test]
fn mentions_only_for_high_and_critical_firing_alerts() {
    let opts = options(false, &["<!subteam^S0123>", "<@U0123>"]);
    let critical = render_alert(&emr_failure(), &opts, None);
    assert_eq!(
        critical.blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .lines()
            .next(),
        Some("<!subteam^S0123> <@U0123>")
    );
    assert!(
        critical
            .text
            .starts_with("<!subteam^S0123> <@U0123> [Firing]")
    );
    let warning = decode_sqs_body(fixture!("ecs_service_task_start_impaired.json"));
    let message = render_alert(&warning, &opts, None);
    assert!(!all_text(&message).contains("subteam"));
    let mut untagged_alarm = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    assert!(!all_text(&render_alert(&untagged_alarm, &opts, None)).contains("subteam"));
    untagged_alarm.apply_tags(Tags::from([("Severity".to_string(), "High".to_string())]));
    let high = render_alert(&untagged_alarm, &opts, None);
    assert!(all_text(&high).contains("subteam"));
    assert_eq!(high.blocks[0]["text"]["text"], "🔴 Firing: EXAMPLE");
}

#[test]
fn aws_text_cannot_inject_mentions() {
    let alert = decode_sqs_body(fixture!("sns_message_not_json.json"));
    let message = render_alert(&alert, &options(false, &[]), None);
    let text = all_text(&message);
    assert!(
        text.contains("deploy &lt;failed&gt; &amp; rolled back"),
        "{text}"
    );
    let mut evil = alert.clone();
    evil.summary = "<!channel> wake up".into();
    assert!(!all_text(&render_alert(&evil, &options(false, &[]), None)).contains("<!channel>"));
}

#[test]
fn oversized_content_is_truncated_visibly_within_limits() {
    let mut alert = emr_failure();
    alert.title = "T".repeat(500);
    alert.summary = "S & < ".repeat(3000);
    for i in 0..300 {
        alert.push_detail(&format!("key {i}"), "v".repeat(100));
    }
    for i in 0..200 {
        alert.tags.insert(format!("tag{i}"), "x".repeat(100));
        alert.push_link(
            "Runbook",
            format!("https://example.com/{}", "p".repeat(300)),
        );
    }
    alert.account = Some("r".repeat(5000));
    let signer = signer();
    let message = render_alert(
        &alert,
        &options(true, &["<@U1>"]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    assert_eq!(limit_violations(&message), Vec::<String>::new());
    let header = message.blocks[0]["text"]["text"].as_str().unwrap();
    assert!(header.ends_with(TRUNCATION_MARK));
    assert!(all_text(&message).contains(TRUNCATION_MARK));
    assert!(message.text.chars().count() <= 3000);
    assert_eq!(buttons(&message).len(), 2, "buttons survive long content");
}

#[test]
fn group_lists_alerts_with_per_alert_acknowledge_and_shared_retry() {
    let alerts = vec![
        emr_failure(),
        decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json")),
        decode_sqs_body(fixture!("ecs_service_steady_state.json")),
        decode_sqs_body(fixture!("cloudwatch_alarm_ok.json")),
    ];
    let signer = signer();
    let message = render_group(
        &alerts,
        &options(true, &[]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    assert!(limit_violations(&message).is_empty());
    assert_eq!(
        message.blocks[0]["text"]["text"],
        "🔥 4 alerts: 2 firing, 1 resolved, 1 other"
    );
    let sections: Vec<_> = message
        .blocks
        .iter()
        .filter(|b| {
            b["block_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(ALERT_BLOCK_PREFIX))
        })
        .collect();
    assert_eq!(sections.len(), 4);
    assert_eq!(
        sections
            .iter()
            .filter(|s| s["accessory"].is_object())
            .count(),
        2,
        "resolved alerts and information (the ECS steady state) have no Acknowledge"
    );
    let actions = message
        .blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(actions["elements"].as_array().unwrap().len(), 1);
    assert_eq!(
        actions["elements"][0]["text"]["text"],
        "Retry j-123456789ABC"
    );
    assert!(message.text.contains("[Firing] EXAMPLE"));
}

#[test]
fn large_group_stays_within_fifty_blocks() {
    let alert = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    let alerts = vec![alert; 120];
    let message = render_group(&alerts, &options(false, &["<@U1>"]), None);
    assert!(message.blocks.len() <= 50);
    assert!(limit_violations(&message).is_empty());
    let footer = message.blocks.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert!(footer.contains("more alerts not shown"), "{footer}");
    assert!(message.text.chars().count() <= 3000);
}

#[test]
fn acknowledging_a_single_alert_removes_only_its_button() {
    let alert = emr_failure();
    let signer = signer();
    let message = render_alert(
        &alert,
        &options(true, &[]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    // The interaction endpoint gets the message back as JSON from Slack.
    let from_slack: SlackMessage = serde_json::from_value(message.to_json()).unwrap();
    let acked = mark_acknowledged(&from_slack, &alert.fingerprint, "U0ABC123", now());
    let labels: Vec<_> = buttons(&acked)
        .iter()
        .map(|b| b["text"]["text"].clone())
        .collect();
    assert_eq!(labels, vec![Value::from("Retry")]);
    let status = acked
        .blocks
        .iter()
        .find(|b| b["block_id"] == STATUS_BLOCK_ID)
        .unwrap();
    let last = status["elements"].as_array().unwrap().last().unwrap();
    assert!(
        last["text"]
            .as_str()
            .unwrap()
            .starts_with("✅ Acknowledged by <@U0ABC123> at <!date^1700000000^")
    );
    assert!(limit_violations(&acked).is_empty());
}

#[test]
fn acknowledging_in_a_group_touches_only_that_alert() {
    let first = emr_failure();
    let second = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    let signer = signer();
    let message = render_group(
        &[first.clone(), second.clone()],
        &options(false, &[]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    let acked = mark_acknowledged(&message, &second.fingerprint, "U9", now());
    let section = |fp: &Fingerprint| {
        acked
            .blocks
            .iter()
            .find(|b| b["block_id"] == format!("{ALERT_BLOCK_PREFIX}{fp}"))
            .unwrap()
            .clone()
    };
    assert!(section(&first.fingerprint)["accessory"].is_object());
    let second_section = section(&second.fingerprint);
    assert!(second_section["accessory"].is_null());
    assert!(
        second_section["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Acknowledged by <@U9>")
    );
}

#[test]
fn retry_progress_replaces_its_line_and_removes_the_button() {
    let alert = emr_failure();
    let signer = signer();
    let message = render_alert(
        &alert,
        &options(true, &[]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    let refused = mark_retry_progress(
        &message,
        &alert.fingerprint,
        &RetryProgress {
            attempt: 0,
            max_attempts: 3,
            user_id: "U7".into(),
            status: RetryStatus::Refused {
                reason: "you are not in allowedUsers".into(),
            },
        },
    );
    assert_eq!(
        buttons(&refused).len(),
        2,
        "a refused press keeps the button"
    );
    let progress = |status| RetryProgress {
        attempt: 2,
        max_attempts: 3,
        user_id: "U0123".into(),
        status,
    };
    let started = mark_retry_progress(
        &refused,
        &alert.fingerprint,
        &progress(RetryStatus::Started),
    );
    let labels: Vec<_> = buttons(&started)
        .iter()
        .map(|b| b["text"]["text"].clone())
        .collect();
    assert_eq!(labels, vec![Value::from("Acknowledge")]);
    let status_lines = |m: &SlackMessage| -> Vec<String> {
        m.blocks
            .iter()
            .find(|b| b["block_id"] == STATUS_BLOCK_ID)
            .unwrap()["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(status_lines(&started).contains(&"🔁 Retry 2/3 started by <@U0123>".to_string()));
    let submitted = mark_retry_progress(
        &started,
        &alert.fingerprint,
        &progress(RetryStatus::Submitted {
            new_cluster_id: "j-NEW".into(),
        }),
    );
    let lines = status_lines(&submitted);
    assert_eq!(
        lines.len(),
        status_lines(&started).len(),
        "same attempt, same line"
    );
    assert!(lines.contains(&"🔁 Retry 2/3 started by <@U0123>: new cluster `j-NEW`".to_string()));
    let acked = mark_acknowledged(&submitted, &alert.fingerprint, "U1", now());
    assert!(
        acked.blocks.iter().all(|b| b["type"] != "actions"),
        "an empty actions block is dropped"
    );
    assert!(limit_violations(&acked).is_empty());
}

#[test]
fn status_block_never_exceeds_ten_elements() {
    let alert = emr_failure();
    let mut message = render_alert(&alert, &options(true, &[]), None);
    for attempt in 1..=20 {
        message = mark_retry_progress(
            &message,
            &alert.fingerprint,
            &RetryProgress {
                attempt,
                max_attempts: 20,
                user_id: "U1".into(),
                status: RetryStatus::Failed {
                    reason: "RunJobFlow throttled".into(),
                },
            },
        );
    }
    assert!(limit_violations(&message).is_empty());
    let status = message
        .blocks
        .iter()
        .find(|b| b["block_id"] == STATUS_BLOCK_ID)
        .unwrap();
    let elements = status["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 10);
    assert!(
        elements[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Firing at")
    );
    assert!(
        elements[9]["text"]
            .as_str()
            .unwrap()
            .contains("Retry 20/20")
    );
}

#[test]
fn options_come_from_the_route() {
    let route: AlertRoute = serde_yaml_ng::from_str(
        r#"
apiVersion: alertops.dev/v1alpha1
kind: AlertRoute
metadata: { name: emr-failures, namespace: data }
spec:
  sources: [{ alarmPolicy: emr }]
  slack:
    botTokenSecretRef: { name: slack, key: token }
    channel: C0123
    mentions: ["<!subteam^S1>"]
  actions:
    retry: { enabled: true, maxAttempts: 3, allowedUsers: [U1] }
"#,
    )
    .unwrap();
    let options = RenderOptions::for_route(&route);
    assert_eq!(options.route.namespace, "data");
    assert_eq!(options.route.name, "emr-failures");
    assert_eq!(options.mentions, vec!["<!subteam^S1>".to_string()]);
    assert!(options.acknowledge, "acknowledge defaults to on");
    assert!(options.retry);
}

#[test]
fn a_button_that_cannot_be_signed_is_left_out_not_fatal() {
    let mut alert = emr_failure();
    alert.resource = Some("j-".repeat(1500));
    let signer = signer();
    let message = render_alert(
        &alert,
        &options(true, &[]),
        Some(ButtonSigning {
            signer: &signer,
            now: now(),
        }),
    );
    let labels: Vec<_> = buttons(&message)
        .iter()
        .map(|b| b["text"]["text"].clone())
        .collect();
    assert_eq!(labels, vec![Value::from("Acknowledge")]);
    assert!(limit_violations(&message).is_empty());
}

/// An alert whose every AWS-supplied text carries all of [`INJECTIONS`].
fn injected_alert() -> Alert {
    use crate::slack::text::INJECTIONS;
    let evil = INJECTIONS.join(" ");
    let mut alert = emr_failure();
    alert.title = format!("cluster {evil}");
    alert.summary = format!("reason {evil}");
    alert.resource = Some(format!("j-1 {evil}"));
    alert.source_state = Some(format!("STATE {evil}"));
    alert.push_detail("Message", format!("detail {evil}"));
    alert.apply_tags(Tags::from([("Owner".to_string(), evil.clone())]));
    alert
}

#[test]
fn injected_mentions_and_links_are_escaped_in_fallback_text_and_blocks() {
    use crate::slack::text::live_injections;
    let alert = injected_alert();
    // Route-configured mentions stay live: they are the only mentions a post may carry.
    let opts = options(true, &["<!subteam^S0123>"]);
    let signer = signer();
    let signing = ButtonSigning {
        signer: &signer,
        now: now(),
    };
    let single = render_alert(&alert, &opts, Some(signing));
    assert_eq!(
        live_injections(&single.text),
        Vec::<&str>::new(),
        "fallback: {}",
        single.text
    );
    assert_eq!(live_injections(&all_text(&single)), Vec::<&str>::new());
    assert!(
        single.text.starts_with("<!subteam^S0123> "),
        "{}",
        single.text
    );
    assert!(single.text.contains("&lt;!channel&gt;"), "{}", single.text);

    let group = render_group(&[alert.clone(), emr_failure()], &opts, Some(signing));
    assert_eq!(
        live_injections(&group.text),
        Vec::<&str>::new(),
        "group fallback: {}",
        group.text
    );
    assert_eq!(live_injections(&all_text(&group)), Vec::<&str>::new());

    let progress = RetryProgress {
        attempt: 1,
        max_attempts: 3,
        user_id: "<!channel>".into(),
        status: RetryStatus::Failed {
            reason: crate::slack::text::INJECTIONS.join(" "),
        },
    };
    let updated = mark_retry_progress(&single, &alert.fingerprint, &progress);
    assert_eq!(live_injections(&all_text(&updated)), Vec::<&str>::new());
    let acked = mark_acknowledged(&group, &alert.fingerprint, "<@U123>", now());
    assert_eq!(live_injections(&all_text(&acked)), Vec::<&str>::new());
}

#[test]
fn info_events_have_no_acknowledge_button() {
    let signer = signer();
    let signing = ButtonSigning {
        signer: &signer,
        now: now(),
    };
    let steady = decode_sqs_body(fixture!("ecs_service_steady_state.json"));
    assert_eq!(steady.state, AlertState::Info);
    assert!(buttons(&render_alert(&steady, &options(true, &[]), Some(signing))).is_empty());
    let group = render_group(
        &[steady, emr_failure()],
        &options(false, &[]),
        Some(signing),
    );
    assert_eq!(
        buttons(&group).len(),
        1,
        "only the failure can be acknowledged"
    );
}

#[test]
fn severity_never_says_default_and_messages_are_not_firing() {
    let alarm = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    assert_eq!(alarm.severity, None);
    let message = render_alert(&alarm, &options(false, &[]), None);
    let text = all_text(&message);
    assert!(!text.contains("(default)"), "{text}");
    assert!(text.contains("*Severity*\\nWarning"), "{text}");

    let plain = decode_sqs_body(fixture!("sns_plain_text.json"));
    let message = render_alert(&plain, &options(false, &[]), None);
    assert_eq!(
        message.blocks[0]["text"]["text"],
        "📨 Message: Nightly backup failed"
    );
    assert!(
        message.text.starts_with("[Message] Nightly backup failed"),
        "{}",
        message.text
    );
}

#[test]
fn snooze_buttons_carry_their_signed_choice_on_firing_alerts_only() {
    let signer = crate::slack::ActionSigner::new(&[7u8; 32]).unwrap();
    let signing = ButtonSigning {
        signer: &signer,
        now: now(),
    };
    let mut with_snooze = options(false, &[]);
    with_snooze.snooze = true;
    let alert = emr_failure();
    let message = render_alert(&alert, &with_snooze, Some(signing));
    assert!(limit_violations(&message).is_empty());
    let actions = message
        .blocks
        .iter()
        .find(|b| b["block_id"] == ACTIONS_BLOCK_ID)
        .expect("actions");
    let snoozes: Vec<&serde_json::Value> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action_id"]
                .as_str()
                .unwrap()
                .starts_with(SNOOZE_ACTION_PREFIX)
        })
        .collect();
    let labels: Vec<&str> = snoozes
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["Snooze 1 h", "Snooze 4 h", "Snooze until tomorrow 09:00"]
    );
    let chosen: Vec<Option<SnoozeChoice>> = snoozes
        .iter()
        .map(|b| {
            let token = signer
                .verify(
                    b["value"].as_str().unwrap(),
                    now(),
                    chrono::Duration::days(1),
                )
                .unwrap();
            assert_eq!(token.action, crate::slack::ButtonAction::Snooze);
            token.snooze
        })
        .collect();
    assert_eq!(chosen, SnoozeChoice::ALL.map(Some).to_vec());

    let without = render_alert(&alert, &options(false, &[]), Some(signing));
    assert!(!without.to_json().to_string().contains(SNOOZE_ACTION_PREFIX));
    let mut resolved = alert.clone();
    resolved.state = AlertState::Resolved;
    assert!(
        !render_alert(&resolved, &with_snooze, Some(signing))
            .to_json()
            .to_string()
            .contains(SNOOZE_ACTION_PREFIX)
    );
}

#[test]
fn a_snoozed_message_says_who_and_until_when_and_keeps_its_buttons() {
    let alert = emr_failure();
    let message = render_alert(&alert, &options(false, &[]), None);
    let until = now() + chrono::Duration::hours(4);
    let once = mark_snoozed(&message, &alert.fingerprint, "U0ALICE", until);
    let twice = mark_snoozed(&once, &alert.fingerprint, "U0BOB", until);
    let text = twice.to_json().to_string();
    assert!(text.contains("Snoozed by <@U0BOB> until"), "{text}");
    assert!(
        !text.contains("U0ALICE"),
        "a new snooze replaces the line: {text}"
    );
}

#[test]
fn correlation_attributes_a_route_names_are_shown_escaped() {
    let mut alert = decode_sqs_body(fixture!("sns_message_attributes.json"));
    let before = alert.details.len();
    alert.show_attributes(&[
        "correlation_id".to_string(),
        "request_id".to_string(),
        "not_sent".to_string(),
    ]);
    let labels: Vec<&str> = alert.details[before..]
        .iter()
        .map(|d| d.label.as_str())
        .collect();
    assert_eq!(
        labels,
        vec!["correlation_id", "request_id"],
        "route order, absent skipped"
    );
    let text = all_text(&render_alert(&alert, &options(false, &[]), None));
    assert!(text.contains("9f2c-user-a-post-17"), "{text}");
    assert!(text.contains("&lt;!channel&gt; req-42"), "{text}");
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(
        !text.contains("u1"),
        "attributes the route does not name stay out: {text}"
    );
}

/// Issue 13: a group of alerts sharing message-attribute values is headed by them, escaped in
/// the blocks and the fallback text, and still fits Slack's limits.
#[test]
fn a_group_by_attribute_is_headed_by_its_escaped_values() {
    use crate::slack::text::{INJECTIONS, live_injections};
    let alert = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    let alerts = vec![alert; 60];
    let heading = format!("correlation_id {}", INJECTIONS.join(" "));
    let message = render_group_headed(&alerts, Some(&heading), &options(false, &[]), None);
    assert!(limit_violations(&message).is_empty());
    assert!(message.blocks.len() <= 50);
    assert_eq!(
        message.blocks[1]["text"]["text"],
        "*Grouped by* correlation_id &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt;"
    );
    assert!(
        message
            .text
            .contains("(*Grouped by* correlation_id &lt;!channel&gt;"),
        "{}",
        message.text
    );
    let body = serde_json::to_string(&message.to_json()).unwrap();
    assert_eq!(live_injections(&body), Vec::<&str>::new(), "{body}");
    let plain = render_group(&alerts[..2], &options(false, &[]), None);
    assert!(
        !serde_json::to_string(&plain.blocks)
            .unwrap()
            .contains("Grouped by")
    );
}
