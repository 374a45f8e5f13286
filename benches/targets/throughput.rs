//! Consumer CPU throughput on one thread: every SQS body is decoded, matched against a route and
//! rendered into the JSON body Slack receives (buttons signed), as the consumer does per alert.
//! Every alert is rendered, matched or not, so the number is a lower bound.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use alertops::alert::{Alert, decode_sqs_body, matches};
use alertops::resources::{
    AlertKind, AlertMatch, AlertState, Severity, TagOperator, TagRequirement,
};
use alertops::slack::{
    ActionSigner, ButtonSigning, RenderOptions, RouteRef, render_alert, render_group,
};
use chrono::Utc;

use crate::Row;

/// Alerts per second per core the design asks for.
const TARGET_PER_SECOND: f64 = 1_000.0;

/// Alerts listed in one storm-control message.
const GROUP_SIZE: usize = 20;

/// The fixtures of tests/fixtures/events and their share of the mix: alarms first, then the
/// EMR and ECS events, plain messages, and a few malformed bodies (which still become alerts).
const MIX: &[(&str, usize)] = &[
    ("cloudwatch_alarm_single_metric.json", 20),
    ("cloudwatch_alarm_metric_math.json", 10),
    ("cloudwatch_alarm_ok.json", 10),
    ("emr_cluster_terminated_with_errors.json", 8),
    ("emr_cluster_terminated_user_request_raw.json", 4),
    ("ecs_task_stopped.json", 10),
    ("ecs_service_task_start_impaired.json", 5),
    ("ecs_service_task_placement_failure_raw.json", 5),
    ("ecs_service_steady_state.json", 5),
    ("eventbridge_ec2_state_change.json", 5),
    ("sns_plain_text.json", 8),
    ("sns_message_not_json.json", 2),
    ("not_json.txt", 2),
    ("unknown_shape.json", 2),
    ("truncated_envelope.json", 1),
    ("truncated_event_raw.json", 1),
];

/// How long each measurement runs.
pub struct Scale {
    run_for: Duration,
}

impl Scale {
    /// The real measurement.
    pub fn full() -> Scale {
        Scale {
            run_for: Duration::from_secs(3),
        }
    }

    /// A quick pass that only proves the measurement works.
    pub fn smoke() -> Scale {
        Scale {
            run_for: Duration::from_millis(50),
        }
    }
}

/// Measures both paths: one message per alert, and storm groups of [`GROUP_SIZE`].
pub fn measure(scale: Scale) -> Vec<Row> {
    let bodies = match mix() {
        Ok(bodies) => bodies,
        Err(error) => {
            return vec![Row::checked(
                "consumer throughput",
                format!("no fixtures: {error}"),
                "fixtures readable",
                false,
            )];
        }
    };
    let route_match = route_match();
    let options = render_options();
    let signer = match ActionSigner::new(b"a bench key long enough for hmac-sha256 signing") {
        Ok(signer) => signer,
        Err(error) => {
            return vec![Row::checked(
                "consumer throughput",
                format!("signer: {error}"),
                "signer builds",
                false,
            )];
        }
    };
    let signing = ButtonSigning {
        signer: &signer,
        now: Utc::now(),
    };

    let matched = bodies
        .iter()
        .filter(|body| matches(&route_match, &decode_sqs_body(body)))
        .count();

    let single = rate(&scale, bodies.len(), || {
        let mut bytes = 0;
        for body in &bodies {
            let alert = decode_sqs_body(body);
            black_box(matches(&route_match, &alert));
            let message = render_alert(&alert, &options, Some(signing));
            bytes += to_wire(&message.to_json());
        }
        bytes
    });
    let grouped = rate(&scale, bodies.len(), || {
        let mut bytes = 0;
        for chunk in bodies.chunks(GROUP_SIZE) {
            let alerts: Vec<Alert> = chunk
                .iter()
                .map(|body| decode_sqs_body(body))
                .filter(|alert| {
                    black_box(matches(&route_match, alert));
                    true
                })
                .collect();
            let message = render_group(&alerts, &options, Some(signing));
            bytes += to_wire(&message.to_json());
        }
        bytes
    });
    vec![
        Row::info(
            "  mix: SQS bodies (matched by the route)",
            format!("{} ({matched})", bodies.len()),
        ),
        Row::checked(
            "throughput, one message per alert",
            format!("{single:.0} alerts/s"),
            format!(">= {TARGET_PER_SECOND:.0} alerts/s per core"),
            single >= TARGET_PER_SECOND,
        ),
        Row::checked(
            format!("throughput, storm groups of {GROUP_SIZE}"),
            format!("{grouped:.0} alerts/s"),
            format!(">= {TARGET_PER_SECOND:.0} alerts/s per core"),
            grouped >= TARGET_PER_SECOND,
        ),
    ]
}

/// Alerts per second of `pass` (which handles `alerts_per_pass` alerts), after a warm-up pass.
fn rate(scale: &Scale, alerts_per_pass: usize, mut pass: impl FnMut() -> usize) -> f64 {
    black_box(pass());
    let started = Instant::now();
    let mut passes = 0usize;
    while passes == 0 || started.elapsed() < scale.run_for {
        black_box(pass());
        passes += 1;
    }
    (passes * alerts_per_pass) as f64 / started.elapsed().as_secs_f64()
}

/// The request body as the Slack client sends it.
fn to_wire(body: &serde_json::Value) -> usize {
    serde_json::to_vec(body).map(|b| b.len()).unwrap_or(0)
}

/// The SQS bodies of the mix, interleaved deterministically (not grouped by kind).
fn mix() -> Result<Vec<String>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let mut bodies = Vec::new();
    for (file, weight) in MIX {
        let path = dir.join(file);
        let body = std::fs::read_to_string(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        bodies.extend(std::iter::repeat_n(body, *weight));
    }
    // A fixed-seed shuffle (xorshift), so runs are comparable.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..bodies.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bodies.swap(i, (state % (i as u64 + 1)) as usize);
    }
    Ok(bodies)
}

/// A typical route: the incident kinds, firing and resolved, Warning and above, not sandbox.
fn route_match() -> AlertMatch {
    AlertMatch {
        kinds: vec![
            AlertKind::CloudWatchAlarm,
            AlertKind::EmrClusterStateChange,
            AlertKind::EcsServiceAction,
            AlertKind::EcsTaskStateChange,
            AlertKind::Message,
        ],
        states: vec![AlertState::Firing, AlertState::Resolved],
        min_severity: Some(Severity::Warning),
        tags: vec![TagRequirement {
            key: "Environment".into(),
            operator: TagOperator::NotIn,
            values: vec!["sandbox".into()],
        }],
    }
}

fn render_options() -> RenderOptions {
    RenderOptions {
        route: RouteRef {
            namespace: "payments".into(),
            name: "oncall".into(),
        },
        mentions: vec!["<!subteam^S0PAYMENTS>".into()],
        acknowledge: true,
        retry: true,
        snooze: false,
    }
}
