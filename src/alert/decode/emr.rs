//! "EMR Cluster State Change" and "EMR Step Status Change" events.

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
    // The event's own severity when it has one; otherwise a failure is High and every other
    // state (starting, a normal termination) is information, like the state itself.
    alert.severity = detail_severity(detail).or(Some(if failed {
        Severity::High
    } else {
        Severity::Info
    }));

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

/// A step changed state. A failed or cancelled step fires (severity from the event's own
/// `severity`, High for a failure without one); the other states are information. Kind stays
/// `EventBridgeEvent` so routes that selected these events before keep them.
pub(super) fn decode_step_status_change(head: &EventHead<'_>) -> Alert {
    let detail = head.detail;
    let cluster_id = str_field(detail, "clusterId").unwrap_or("unknown cluster");
    let step_id = str_field(detail, "stepId").unwrap_or("unknown step");
    let name = str_field(detail, "name");
    let state = str_field(detail, "state").unwrap_or("");
    let failed = matches!(state, "FAILED" | "CANCELLED" | "INTERRUPTED");
    let fingerprint = Fingerprint::of(
        AlertKind::EventBridgeEvent,
        &["aws.emr", "EMR Step Status Change", cluster_id, step_id],
    );
    let step = match name {
        Some(name) => format!("{name} ({step_id})"),
        None => step_id.to_string(),
    };
    let state_words = if state.is_empty() {
        "changed state".to_string()
    } else {
        state.to_ascii_lowercase().replace('_', " ")
    };
    let title = format!("EMR step {step} on {cluster_id} {state_words}");
    let mut alert = Alert::new(
        AlertKind::EventBridgeEvent,
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
    alert.severity = if failed {
        detail_severity(detail)
            .filter(|s| *s > Severity::Info)
            .or(Some(Severity::High))
    } else {
        Some(Severity::Info)
    };
    alert.summary = str_field(detail, "message")
        .map(str::to_string)
        .unwrap_or_else(|| format!("Step {step} is {state}"));
    alert.push_detail("Step", step);
    alert.push_detail("Cluster", cluster_id);
    alert.push_detail("State", state);
    if let Some(action) = str_field(detail, "actionOnFailure") {
        alert.push_detail("Action on failure", action);
    }
    if let Some(log) = str_field(detail, "logUri") {
        alert.push_detail("Logs", log);
    }
    if let Some(region) = head.region.filter(|r| is_region_code(r)) {
        alert.push_link(
            "Open step in EMR",
            format!(
                "{}/emr/home?region={region}#/clusterDetails/{cluster_id}",
                console_origin(region)
            ),
        );
    }
    alert
}
