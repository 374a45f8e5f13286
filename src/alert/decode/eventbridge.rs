//! EventBridge events (`version, id, detail-type, source, account, time, region, resources,
//! detail`): dispatch to the EMR and ECS decoders, and a generic decoder for everything else.

use serde_json::Value;

use super::util::{parse_time, scalar_text, str_field};
use super::{cloudwatch, ecs, emr};
use crate::alert::model::{Alert, Fingerprint};
use crate::resources::{AlertKind, AlertState, Severity};

/// The envelope fields every EventBridge event has.
pub(super) struct EventHead<'a> {
    pub source: &'a str,
    pub detail_type: &'a str,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub time: Option<&'a str>,
    pub resources: Vec<&'a str>,
    pub detail: &'a Value,
}

impl<'a> EventHead<'a> {
    fn read(value: &'a Value) -> Self {
        EventHead {
            source: str_field(value, "source").unwrap_or(""),
            detail_type: str_field(value, "detail-type").unwrap_or(""),
            account: str_field(value, "account"),
            region: str_field(value, "region"),
            time: str_field(value, "time"),
            resources: value
                .get("resources")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
            detail: value.get("detail").unwrap_or(&Value::Null),
        }
    }

    /// Copies account, region and time onto an alert.
    pub fn fill(&self, alert: &mut Alert) {
        alert.account = self.account.map(str::to_string);
        alert.region = self.region.map(str::to_string);
        alert.time = self.time.and_then(parse_time);
    }
}

/// An EventBridge event names its source and detail type.
pub(super) fn is_event(value: &Value) -> bool {
    str_field(value, "source").is_some() && str_field(value, "detail-type").is_some()
}

pub(super) fn decode(value: &Value) -> Alert {
    let head = EventHead::read(value);
    match (head.source, head.detail_type) {
        ("aws.emr", "EMR Cluster State Change") => emr::decode_cluster_state_change(&head),
        ("aws.emr", "EMR Step Status Change") => emr::decode_step_status_change(&head),
        ("aws.ecs", "ECS Service Action") => ecs::decode_service_action(&head),
        ("aws.ecs", "ECS Deployment State Change") => ecs::decode_deployment_state_change(&head),
        ("aws.ecs", "ECS Task State Change") => ecs::decode_task_state_change(&head),
        ("aws.cloudwatch", "CloudWatch Alarm State Change") => {
            cloudwatch::decode_alarm_event(&head)
        }
        _ => decode_generic(&head),
    }
}

/// Any other event: identified by source, detail type and resources; shown with its detail's
/// top-level scalar fields.
fn decode_generic(head: &EventHead<'_>) -> Alert {
    let mut resources = head.resources.clone();
    resources.sort_unstable();
    let mut parts = vec![head.source, head.detail_type];
    parts.extend(resources.iter().copied());
    let fingerprint = Fingerprint::of(AlertKind::EventBridgeEvent, &parts);

    let short_resource = head
        .resources
        .first()
        .map(|r| super::util::last_segment(r.rsplit(':').next().unwrap_or(r)));
    let title = match short_resource {
        Some(r) => format!("{}: {r}", head.detail_type),
        None => head.detail_type.to_string(),
    };
    let mut alert = Alert::new(
        AlertKind::EventBridgeEvent,
        AlertState::Firing,
        fingerprint,
        title,
    );
    head.fill(&mut alert);
    alert.resource = head.resources.first().map(|r| r.to_string());
    alert.severity = detail_severity(head.detail);
    if let Some(severity) = alert.severity
        && severity == Severity::Info
    {
        alert.state = AlertState::Info;
    }

    let mut summary = Vec::new();
    if let Some(object) = head.detail.as_object() {
        for key in object.keys().take(12) {
            if let Some(text) = scalar_text(head.detail, key) {
                summary.push(format!("{key}: {text}"));
                alert.push_detail(key, text);
            }
        }
    }
    alert.summary = if summary.is_empty() {
        format!("{} event from {}", head.detail_type, head.source)
    } else {
        summary.join(", ")
    };
    alert.push_detail("Source", head.source);
    if !head.resources.is_empty() {
        alert.push_detail("Resources", head.resources.join(", "));
    }
    alert
}

/// `detail.severity` when an event has one: words (`CRITICAL`, `ERROR`, `WARN`, `INFO`) or
/// GuardDuty-style numbers (7+ high, 4+ medium, below that low).
pub(super) fn detail_severity(detail: &Value) -> Option<Severity> {
    match detail.get("severity")? {
        Value::String(text) => Severity::parse(text),
        Value::Number(n) => n.as_f64().map(|score| {
            if score >= 7.0 {
                Severity::High
            } else if score >= 4.0 {
                Severity::Warning
            } else {
                Severity::Info
            }
        }),
        _ => None,
    }
}
