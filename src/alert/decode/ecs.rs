//! "ECS Service Action", "ECS Deployment State Change" and "ECS Task State Change" events.

use serde_json::Value;

use super::eventbridge::EventHead;
use super::util::{console_origin, is_region_code, last_segment, parse_arn, str_field};
use crate::alert::model::{Alert, Fingerprint};
use crate::resources::{AlertKind, AlertState, Severity};

/// Scale, steady-state and failure events of a service. The fingerprint includes the event name,
/// so each kind of trouble of one service keeps its own message.
pub(super) fn decode_service_action(head: &EventHead<'_>) -> Alert {
    let detail = head.detail;
    let event_type = str_field(detail, "eventType").unwrap_or("");
    let event_name = str_field(detail, "eventName").unwrap_or("");
    // The service is in `resources`; events from create-service/update-service may name it
    // in `serviceName` or `service` instead.
    let service_arn = head
        .resources
        .iter()
        .find(|r| r.contains(":service/"))
        .copied()
        .or(str_field(detail, "serviceName"))
        .or(str_field(detail, "service"))
        .unwrap_or("");
    let cluster_arn = str_field(detail, "clusterArn");
    let service_name = service_name(service_arn);
    let cluster_name = cluster_arn.map(|c| last_segment(arn_resource(c)));

    let fingerprint = Fingerprint::of(AlertKind::EcsServiceAction, &[service_arn, event_name]);
    let (state, severity) = match event_type {
        "ERROR" => (AlertState::Firing, Severity::High),
        "WARN" => (AlertState::Firing, Severity::Warning),
        _ => (AlertState::Info, Severity::Info),
    };
    let service_label = if service_name.is_empty() {
        "ECS service".to_string()
    } else {
        format!("ECS service {service_name}")
    };
    let title = match event_name {
        "" => format!("{service_label}: {}", head.detail_type),
        name => format!("{service_label}: {name}"),
    };
    let mut alert = Alert::new(AlertKind::EcsServiceAction, state, fingerprint, title);
    head.fill(&mut alert);
    alert.source_state = Some(event_name.to_string()).filter(|s| !s.is_empty());
    alert.severity = Some(severity);
    alert.resource = Some(service_arn.to_string()).filter(|s| !s.is_empty());
    let reason = str_field(detail, "reason");
    alert.summary = reason
        .map(str::to_string)
        .or_else(|| service_event_description(event_name).map(str::to_string))
        .unwrap_or_else(|| format!("{event_type} {event_name}").trim().to_string());

    alert.push_detail("Service", service_name);
    if let Some(cluster) = cluster_name {
        alert.push_detail("Cluster", cluster);
    }
    alert.push_detail("Event", format!("{event_name} ({event_type})"));
    if let Some(reason) = reason {
        alert.push_detail("Reason", reason);
    }
    let providers = string_list(detail.get("capacityProviderArns"))
        .iter()
        .map(|p| last_segment(p).to_string())
        .collect::<Vec<_>>();
    if !providers.is_empty() {
        alert.push_detail("Capacity providers", providers.join(", "));
    }
    if let (Some(region), Some(cluster)) = (head.region.filter(|r| is_region_code(r)), cluster_name)
        && !service_name.is_empty()
    {
        alert.push_link(
            "Open in ECS",
            format!(
                "{}/ecs/v2/clusters/{cluster}/services/{service_name}/health?region={region}",
                console_origin(region)
            ),
        );
    }
    alert
}

/// A service deployment started, completed or failed (`SERVICE_DEPLOYMENT_FAILED` comes from the
/// deployment circuit breaker). Severity follows `eventType` as for service actions: ERROR is
/// High, WARN Warning, INFO information. One message per deployment: the fingerprint is the
/// service and the deployment id. Kind stays `EventBridgeEvent` so routes that selected these
/// events before keep them.
pub(super) fn decode_deployment_state_change(head: &EventHead<'_>) -> Alert {
    let detail = head.detail;
    let event_type = str_field(detail, "eventType").unwrap_or("");
    let event_name = str_field(detail, "eventName").unwrap_or("");
    let deployment_id = str_field(detail, "deploymentId").unwrap_or("");
    let service_arn = head
        .resources
        .iter()
        .find(|r| r.contains(":service/"))
        .copied()
        .unwrap_or("");
    let service_name = service_name(service_arn);
    // `service/<cluster>/<name>`; the older `service/<name>` names no cluster.
    let cluster_name = parse_arn(service_arn)
        .map(|a| a.resource)
        .and_then(|r| r.strip_prefix("service/"))
        .and_then(|r| r.split_once('/'))
        .map(|(cluster, _)| cluster);
    let fingerprint = Fingerprint::of(
        AlertKind::EventBridgeEvent,
        &[
            "aws.ecs",
            "ECS Deployment State Change",
            service_arn,
            deployment_id,
        ],
    );
    let (state, severity) = match event_type {
        "ERROR" => (AlertState::Firing, Severity::High),
        "WARN" => (AlertState::Firing, Severity::Warning),
        _ => (AlertState::Info, Severity::Info),
    };
    let what = match event_name {
        "SERVICE_DEPLOYMENT_FAILED" => "deployment failed",
        "SERVICE_DEPLOYMENT_COMPLETED" => "deployment completed",
        "SERVICE_DEPLOYMENT_IN_PROGRESS" => "deployment in progress",
        _ => "deployment changed state",
    };
    let service_label = if service_name.is_empty() {
        "ECS service".to_string()
    } else {
        format!("ECS service {service_name}")
    };
    let mut alert = Alert::new(
        AlertKind::EventBridgeEvent,
        state,
        fingerprint,
        format!("{service_label}: {what}"),
    );
    head.fill(&mut alert);
    alert.source_state = Some(event_name.to_string()).filter(|s| !s.is_empty());
    alert.severity = Some(severity);
    alert.resource = Some(service_arn.to_string()).filter(|s| !s.is_empty());
    let reason = str_field(detail, "reason");
    alert.summary = reason
        .map(str::to_string)
        .or_else(|| service_event_description(event_name).map(str::to_string))
        .unwrap_or_else(|| format!("{event_type} {event_name}").trim().to_string());
    alert.push_detail("Service", service_name);
    if let Some(cluster) = cluster_name {
        alert.push_detail("Cluster", cluster);
    }
    alert.push_detail("Deployment", deployment_id);
    alert.push_detail("Event", format!("{event_name} ({event_type})"));
    if let Some(reason) = reason {
        alert.push_detail("Reason", reason);
    }
    if let (Some(region), Some(cluster)) = (head.region.filter(|r| is_region_code(r)), cluster_name)
        && !service_name.is_empty()
    {
        alert.push_link(
            "Open deployments in ECS",
            format!(
                "{}/ecs/v2/clusters/{cluster}/services/{service_name}/deployments?region={region}",
                console_origin(region)
            ),
        );
    }
    alert
}

/// A task changed status. Stopped tasks whose containers failed, or that failed to start, fire;
/// Spot interruptions fire as warnings; every other change is information.
pub(super) fn decode_task_state_change(head: &EventHead<'_>) -> Alert {
    let detail = head.detail;
    let task_arn = str_field(detail, "taskArn")
        .or(head.resources.first().copied())
        .unwrap_or("");
    let task_id = last_segment(arn_resource(task_arn));
    let cluster_name = str_field(detail, "clusterArn").map(|c| last_segment(arn_resource(c)));
    let last_status = str_field(detail, "lastStatus").unwrap_or("");
    let stop_code = str_field(detail, "stopCode");
    let stopped_reason = str_field(detail, "stoppedReason");
    let group = str_field(detail, "group");

    let containers = detail
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut container_lines = Vec::new();
    let mut failed_containers = Vec::new();
    for container in &containers {
        let name = str_field(container, "name").unwrap_or("?");
        let exit_code = container.get("exitCode").and_then(Value::as_i64);
        let reason = str_field(container, "reason");
        let mut line = name.to_string();
        if let Some(code) = exit_code {
            line.push_str(&format!(": exit code {code}"));
            if code != 0 {
                failed_containers.push(format!("{name} exited with code {code}"));
            }
        } else if let Some(status) = str_field(container, "lastStatus") {
            line.push_str(&format!(": {status}"));
        }
        if let Some(reason) = reason {
            line.push_str(&format!(" ({reason})"));
        }
        container_lines.push(line);
    }

    let stopped = last_status == "STOPPED";
    let (state, severity) = match stop_code {
        _ if !stopped => (AlertState::Info, Severity::Info),
        Some("TaskFailedToStart") => (AlertState::Firing, Severity::High),
        Some("SpotInterruption" | "TerminationNotice") => (AlertState::Firing, Severity::Warning),
        _ if !failed_containers.is_empty() => (AlertState::Firing, Severity::High),
        _ => (AlertState::Info, Severity::Info),
    };

    let owner = match group.and_then(|g| g.split_once(':')) {
        Some(("service", name)) => format!("of service {name}"),
        Some(("family", name)) => format!("of family {name}"),
        _ => task_id.to_string(),
    };
    let status_word = if last_status.is_empty() {
        "changed status".to_string()
    } else {
        last_status.to_ascii_lowercase()
    };
    let title = format!("ECS task {owner} {status_word}");
    let fingerprint = Fingerprint::of(AlertKind::EcsTaskStateChange, &[task_arn]);
    let mut alert = Alert::new(AlertKind::EcsTaskStateChange, state, fingerprint, title);
    head.fill(&mut alert);
    alert.source_state = Some(last_status.to_string()).filter(|s| !s.is_empty());
    alert.severity = Some(severity);
    alert.resource = Some(task_arn.to_string()).filter(|s| !s.is_empty());
    let mut summary = Vec::new();
    if let Some(reason) = stopped_reason {
        summary.push(reason.to_string());
    }
    summary.extend(failed_containers);
    alert.summary = if summary.is_empty() {
        format!("Task {task_id} is {last_status}")
            .trim()
            .to_string()
    } else {
        summary.join("; ")
    };

    alert.push_detail("Task", task_id);
    if let Some(cluster) = cluster_name {
        alert.push_detail("Cluster", cluster);
    }
    if let Some(group) = group {
        alert.push_detail("Group", group);
    }
    if let Some(definition) = str_field(detail, "taskDefinitionArn") {
        alert.push_detail("Task definition", last_segment(arn_resource(definition)));
    }
    let desired = str_field(detail, "desiredStatus").unwrap_or("");
    alert.push_detail(
        "Status",
        if desired.is_empty() {
            last_status.to_string()
        } else {
            format!("{last_status} (desired {desired})")
        },
    );
    if let Some(code) = stop_code {
        alert.push_detail("Stop code", code);
    }
    if !container_lines.is_empty() {
        alert.push_detail("Containers", container_lines.join("\n"));
    }
    if let (Some(region), Some(cluster)) = (head.region.filter(|r| is_region_code(r)), cluster_name)
        && !task_id.is_empty()
    {
        alert.push_link(
            "Open in ECS",
            format!(
                "{}/ecs/v2/clusters/{cluster}/tasks/{task_id}/configuration?region={region}",
                console_origin(region)
            ),
        );
    }
    alert
}

/// The resource part of an ARN, or the text itself when it is not an ARN.
fn arn_resource(text: &str) -> &str {
    parse_arn(text).map(|a| a.resource).unwrap_or(text)
}

/// `arn:...:service/cluster/name` and the older `arn:...:service/name` → `name`.
fn service_name(service: &str) -> &str {
    last_segment(arn_resource(service))
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What the Amazon ECS developer guide says each service event means, for events without a reason.
fn service_event_description(event_name: &str) -> Option<&'static str> {
    Some(match event_name {
        "SERVICE_STEADY_STATE" => "The service is healthy and at the desired number of tasks.",
        "TASKSET_STEADY_STATE" => "The task set is healthy and at the desired number of tasks.",
        "CAPACITY_PROVIDER_STEADY_STATE" => {
            "A capacity provider associated with the service reached a steady state."
        }
        "SERVICE_DESIRED_COUNT_UPDATED" => {
            "The service scheduler updated the computed desired count of the service."
        }
        "TASKS_STOPPED" => "The service stopped running tasks.",
        "SERVICE_DEPLOYMENT_IN_PROGRESS" => "A service deployment is in progress.",
        "SERVICE_DEPLOYMENT_COMPLETED" => "The service deployment completed.",
        "SERVICE_DEPLOYMENT_FAILED" => "The service deployment failed.",
        "SERVICE_TASK_START_IMPAIRED" => "The service is unable to consistently start tasks.",
        "SERVICE_DISCOVERY_INSTANCE_UNHEALTHY" => {
            "A task registered for service discovery is unhealthy."
        }
        "SERVICE_DAEMON_PLACEMENT_CONSTRAINT_VIOLATED" => {
            "A daemon task no longer meets the service's placement constraints."
        }
        "ECS_OPERATION_THROTTLED" => "The service scheduler was throttled by the ECS API.",
        "SERVICE_DISCOVERY_OPERATION_THROTTLED" => {
            "The service scheduler was throttled by the AWS Cloud Map API."
        }
        "SERVICE_TASK_PLACEMENT_FAILURE" => "The service scheduler is unable to place a task.",
        "SERVICE_TASK_CONFIGURATION_FAILURE" => {
            "The service scheduler is unable to place a task because of a configuration error."
        }
        _ => return None,
    })
}
