//! "EMR Cluster State Change" events.

use serde_json::Value;

use super::eventbridge::{EventHead, detail_severity};
use super::util::{console_origin, is_region_code, str_field};
use crate::alert::model::{Alert, EMR_FAILED_STATE, Fingerprint};
use crate::resources::{AlertKind, AlertState, Severity};

pub(super) fn decode_cluster_state_change(head: &EventHead<'_>) -> Alert {
    let detail = head.detail;
    let cluster_id = str_field(detail, "clusterId").unwrap_or("unknown cluster");
    let name = str_field(detail, "name");
    let state = str_field(detail, "state").unwrap_or("");
    let (reason_code, reason_message) = state_change_reason(detail.get("stateChangeReason"));

    let failed = state == EMR_FAILED_STATE;
    let fingerprint = Fingerprint::of(AlertKind::EmrClusterStateChange, &[cluster_id]);
    let cluster = match name {
        Some(name) => format!("{name} ({cluster_id})"),
        None => cluster_id.to_string(),
    };
    let title = if state.is_empty() {
        format!("EMR cluster {cluster} changed state")
    } else {
        format!(
            "EMR cluster {cluster} {}",
            state.to_ascii_lowercase().replace('_', " ")
        )
    };
    let mut alert = Alert::new(
        AlertKind::EmrClusterStateChange,
        if failed {
            AlertState::Firing
        } else {
            AlertState::Info
        },
        fingerprint,
        title,
    );
    head.fill(&mut alert);
    alert.source_state = Some(state.to_string()).filter(|s| !s.is_empty());
    alert.resource = Some(cluster_id.to_string());
    alert.severity = detail_severity(detail).or(failed.then_some(Severity::High));

    let message = str_field(detail, "message");
    alert.summary = reason_message
        .clone()
        .or(message.map(str::to_string))
        .unwrap_or_default();
    alert.push_detail("Cluster", cluster);
    alert.push_detail("State", state);
    if let Some(code) = reason_code {
        alert.push_detail("Reason code", code);
    }
    if let Some(message) = message
        && reason_message.is_some()
    {
        alert.push_detail("Message", message);
    }
    if let Some(region) = head.region.filter(|r| is_region_code(r)) {
        alert.push_link(
            "Open in EMR",
            format!(
                "{}/emr/home?region={region}#/clusterDetails/{cluster_id}",
                console_origin(region)
            ),
        );
    }
    alert
}

/// `stateChangeReason` is a JSON string (`"{\"code\":\"VALIDATION_ERROR\",\"message\":...}"`);
/// an object is accepted too, and a string that is not JSON is taken as the message.
fn state_change_reason(value: Option<&Value>) -> (Option<String>, Option<String>) {
    let parsed;
    let reason = match value {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() => {
                parsed = v;
                &parsed
            }
            _ => return (None, Some(text.clone()).filter(|t| !t.trim().is_empty())),
        },
        Some(v @ Value::Object(_)) => v,
        _ => return (None, None),
    };
    (
        str_field(reason, "code").map(str::to_string),
        str_field(reason, "message").map(str::to_string),
    )
}
