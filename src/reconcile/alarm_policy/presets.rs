//! Ready-made EventBridge patterns for the events our users alert on most.

use serde_json::{Map, Value, json};

use crate::resources::alarm_policy::{EcsPresetOptions, EmrPresetOptions, EventPreset};

/// The event pattern of a preset with its options.
pub fn pattern(
    preset: EventPreset,
    emr: Option<&EmrPresetOptions>,
    ecs: Option<&EcsPresetOptions>,
) -> Value {
    match preset {
        EventPreset::EmrClusterFailed => {
            let mut detail = Map::new();
            detail.insert("state".into(), json!(["TERMINATED_WITH_ERRORS"]));
            if let Some(names) = emr.map(|o| &o.cluster_names).filter(|n| !n.is_empty()) {
                detail.insert("name".into(), json!(names));
            }
            json!({
                "source": ["aws.emr"],
                "detail-type": ["EMR Cluster State Change"],
                "detail": detail,
            })
        }
        EventPreset::EcsServiceAction => {
            let mut detail = Map::new();
            let types = ecs
                .map(|o| o.event_types.clone())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| vec!["WARN".into(), "ERROR".into()]);
            detail.insert("eventType".into(), json!(types));
            if let Some(names) = ecs.map(|o| &o.event_names).filter(|n| !n.is_empty()) {
                detail.insert("eventName".into(), json!(names));
            }
            insert_clusters(&mut detail, ecs);
            json!({
                "source": ["aws.ecs"],
                "detail-type": ["ECS Service Action"],
                "detail": detail,
            })
        }
        EventPreset::EcsTaskStopped => {
            let mut detail = Map::new();
            detail.insert("lastStatus".into(), json!(["STOPPED"]));
            insert_clusters(&mut detail, ecs);
            json!({
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": detail,
            })
        }
    }
}

fn insert_clusters(detail: &mut Map<String, Value>, ecs: Option<&EcsPresetOptions>) {
    if let Some(arns) = ecs.map(|o| &o.cluster_arns).filter(|a| !a.is_empty()) {
        detail.insert("clusterArn".into(), json!(arns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emr_failed_matches_terminated_with_errors_only() {
        let p = pattern(EventPreset::EmrClusterFailed, None, None);
        assert_eq!(p["detail"]["state"], json!(["TERMINATED_WITH_ERRORS"]));
        assert_eq!(p["detail-type"], json!(["EMR Cluster State Change"]));
        assert!(p["detail"].get("name").is_none());
        let named = pattern(
            EventPreset::EmrClusterFailed,
            Some(&EmrPresetOptions {
                cluster_names: vec!["nightly-etl".into()],
            }),
            None,
        );
        assert_eq!(named["detail"]["name"], json!(["nightly-etl"]));
    }

    #[test]
    fn ecs_service_action_defaults_to_warnings_and_errors() {
        let p = pattern(EventPreset::EcsServiceAction, None, None);
        assert_eq!(p["detail"]["eventType"], json!(["WARN", "ERROR"]));
        let opts = EcsPresetOptions {
            cluster_arns: vec!["arn:aws:ecs:us-east-1:123456789012:cluster/prod".into()],
            event_types: vec!["INFO".into()],
            event_names: vec!["SERVICE_DESIRED_COUNT_UPDATED".into()],
        };
        let p = pattern(EventPreset::EcsServiceAction, None, Some(&opts));
        assert_eq!(p["detail"]["eventType"], json!(["INFO"]));
        assert_eq!(
            p["detail"]["eventName"],
            json!(["SERVICE_DESIRED_COUNT_UPDATED"])
        );
        assert_eq!(
            p["detail"]["clusterArn"],
            json!(["arn:aws:ecs:us-east-1:123456789012:cluster/prod"])
        );
    }

    #[test]
    fn ecs_task_stopped_matches_stopped_tasks() {
        let p = pattern(EventPreset::EcsTaskStopped, None, None);
        assert_eq!(p["detail"]["lastStatus"], json!(["STOPPED"]));
        assert_eq!(p["detail-type"], json!(["ECS Task State Change"]));
    }
}
