//! The controller's decisions, told per AWS resource: each action of the AlarmPolicy plan
//! ([`crate::reconcile::alarm_policy::plan`]) and of the queue plan
//! ([`crate::reconcile::queues::plan`]) becomes a [`ResourceChange`], with the differing fields'
//! current values taken from what was observed. Pure: no I/O, nothing decided here.

use serde_json::{Value, json};

use crate::aws::sns::topic_name;
use crate::aws::tags::TagChanges;
use crate::reconcile::alarm_policy::desired::{
    FieldChange, alarm_changes, composite_changes, filter_changes, rule_changes,
};
use crate::reconcile::alarm_policy::plan::{
    Action, Observed, ObservedTopic, TopicAction, TopicPlan,
};
use crate::reconcile::queues::plan::{Observed as QueuesObserved, ObservedQueue, QueueAction};
use crate::resources::Tags;

use super::report::{ChangeAction, FieldDiff, ResourceChange, ResourceType};

/// Stands for the URL or ARN of a queue that does not exist yet: the controller learns it only
/// when it creates the queue.
pub const NEW_QUEUE_PREFIX: &str = "(after creation) ";

/// Stands for the ARN of the policy's topic while it does not exist.
pub fn new_topic_arn(name: &str) -> String {
    format!("(ARN of the new topic {name})")
}

fn entry(
    owner: &str,
    resource_type: ResourceType,
    name: &str,
    action: ChangeAction,
    fields: Vec<FieldDiff>,
    reason: String,
) -> ResourceChange {
    ResourceChange {
        owner: owner.to_string(),
        resource_type,
        name: name.to_string(),
        action,
        fields,
        reason,
    }
}

impl From<FieldChange> for FieldDiff {
    fn from(change: FieldChange) -> Self {
        FieldDiff {
            field: change.field.to_string(),
            old: change.old,
            new: change.new,
        }
    }
}

/// One field per tag to set or remove, with its current value (`null` when unknown or absent).
pub fn tag_fields(changes: &TagChanges, current: Option<&Tags>) -> Vec<FieldDiff> {
    let old = |key: &str| {
        current
            .and_then(|t| t.get(key))
            .map_or(Value::Null, |v| json!(v))
    };
    let mut fields: Vec<FieldDiff> = changes
        .add
        .iter()
        .map(|(key, value)| FieldDiff {
            field: format!("tags.{key}"),
            old: old(key),
            new: json!(value),
        })
        .collect();
    fields.extend(changes.remove.iter().map(|key| FieldDiff {
        field: format!("tags.{key}"),
        old: old(key),
        new: Value::Null,
    }));
    fields
}

/// A topic or queue attribute as a value: policies as JSON documents, the rest as text.
fn attribute_value(name: &str, text: Option<&str>) -> Value {
    match text {
        None | Some("") => Value::Null,
        Some(text) if name.ends_with("Policy") => {
            serde_json::from_str(text).unwrap_or_else(|_| json!(text))
        }
        Some(text) => json!(text),
    }
}

/// The topic, from the controller's topic plan. `after_creation` is the plan for the topic once
/// created (the controller sets its access policy right after CreateTopic); its writes are shown
/// as the settings of the creation.
pub fn topic_change(
    owner: &str,
    plan: &TopicPlan,
    observed: &ObservedTopic,
    after_creation: Option<&TopicPlan>,
) -> Option<ResourceChange> {
    match plan {
        TopicPlan::Create(TopicAction::Create { name, tags }) => {
            let mut fields = tag_fields(
                &TagChanges {
                    add: tags.clone(),
                    remove: Vec::new(),
                },
                None,
            );
            if let Some(TopicPlan::Ready { actions, .. }) = after_creation {
                // The topic is created with its tags, so only attributes remain.
                fields.extend(topic_action_fields(actions, observed));
            }
            Some(entry(
                owner,
                ResourceType::SnsTopic,
                name,
                ChangeAction::Create,
                fields,
                format!("create topic {name}: not in SNS"),
            ))
        }
        TopicPlan::Create(_) => None,
        TopicPlan::Ready {
            arn, owned: false, ..
        } => Some(entry(
            owner,
            ResourceType::SnsTopic,
            arn,
            ChangeAction::NoChange,
            Vec::new(),
            "referenced by spec.topic.existingArn: published to, never modified".to_string(),
        )),
        TopicPlan::Ready {
            arn,
            adopted,
            actions,
            ..
        } => {
            let fields = topic_action_fields(actions, observed);
            let action = if *adopted {
                ChangeAction::Adopt
            } else if actions.is_empty() {
                ChangeAction::NoChange
            } else {
                ChangeAction::Update
            };
            let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            Some(entry(
                owner,
                ResourceType::SnsTopic,
                topic_name(arn),
                action,
                fields.clone(),
                if actions.is_empty() {
                    format!("keep topic {arn}: in sync")
                } else {
                    format!("update topic {arn}: {} differ", names.join(", "))
                },
            ))
        }
        TopicPlan::Blocked(blocker) => match observed {
            // Someone else's topic holds the name; a missing referenced topic is only blocked.
            ObservedTopic::Present { arn, .. } => Some(entry(
                owner,
                ResourceType::SnsTopic,
                topic_name(arn),
                ChangeAction::NotOwned,
                Vec::new(),
                blocker.message.clone(),
            )),
            _ => None,
        },
    }
}

fn topic_action_fields(actions: &[TopicAction], observed: &ObservedTopic) -> Vec<FieldDiff> {
    let (attributes, tags) = match observed {
        ObservedTopic::Present {
            attributes, tags, ..
        } => (Some(attributes), Some(tags)),
        _ => (None, None),
    };
    let mut fields = Vec::new();
    for action in actions {
        match action {
            TopicAction::SetAttribute { name, value, .. } => fields.push(FieldDiff {
                field: name.to_string(),
                old: attribute_value(
                    name,
                    attributes.and_then(|a| a.get(*name)).map(String::as_str),
                ),
                new: attribute_value(name, Some(value)),
            }),
            TopicAction::Retag { changes, .. } => fields.extend(tag_fields(changes, tags)),
            TopicAction::Create { .. } => {}
        }
    }
    fields
}

/// A metric filter as a person finds it: filter names are unique only within their log group.
fn filter_label(log_group: &str, name: &str) -> String {
    format!("{log_group} {name}")
}

/// The alarms and rules, from the controller's actions; current values from `observed`.
pub fn policy_changes(owner: &str, actions: &[Action], observed: &Observed) -> Vec<ResourceChange> {
    let mut out = Vec::new();
    for action in actions {
        let reason = action.to_string();
        match action {
            Action::CreateAlarm { record, .. } => out.push(entry(
                owner,
                ResourceType::CloudWatchAlarm,
                &record.alarm_name,
                ChangeAction::Create,
                Vec::new(),
                reason,
            )),
            Action::UpdateAlarm {
                record,
                definition,
                tags,
            }
            | Action::AdoptAlarm {
                record,
                definition,
                tags,
            } => {
                let name = &record.alarm_name;
                let mut fields: Vec<FieldDiff> = match (definition, observed.alarms.get(name)) {
                    (Some((desired, _)), Some(current)) => {
                        alarm_changes(desired, &current.definition)
                            .into_iter()
                            .map(FieldDiff::from)
                            .collect()
                    }
                    _ => Vec::new(),
                };
                fields.extend(tag_fields(tags, observed.alarm_tags.get(name)));
                let kind = if matches!(action, Action::AdoptAlarm { .. }) {
                    ChangeAction::Adopt
                } else {
                    ChangeAction::Update
                };
                out.push(entry(
                    owner,
                    ResourceType::CloudWatchAlarm,
                    name,
                    kind,
                    fields,
                    reason,
                ));
            }
            Action::KeepAlarm { record } => out.push(entry(
                owner,
                ResourceType::CloudWatchAlarm,
                &record.alarm_name,
                ChangeAction::NoChange,
                Vec::new(),
                reason,
            )),
            Action::DeleteAlarms { names } => out.extend(names.iter().map(|name| {
                entry(
                    owner,
                    ResourceType::CloudWatchAlarm,
                    name,
                    ChangeAction::Delete,
                    Vec::new(),
                    format!("delete alarm {name}: no longer in the spec, tagged as this policy's"),
                )
            })),
            Action::SkipUnownedAlarm { name } => out.push(entry(
                owner,
                ResourceType::CloudWatchAlarm,
                name,
                ChangeAction::NotOwned,
                Vec::new(),
                reason,
            )),
            Action::CreateComposite { record, .. } => out.push(entry(
                owner,
                ResourceType::CloudWatchCompositeAlarm,
                &record.alarm_name,
                ChangeAction::Create,
                Vec::new(),
                reason,
            )),
            Action::UpdateComposite {
                record,
                definition,
                tags,
                adopting,
            } => {
                let name = &record.alarm_name;
                let mut fields: Vec<FieldDiff> = match (definition, observed.composites.get(name)) {
                    (Some((desired, _)), Some(current)) => {
                        composite_changes(desired, &current.definition)
                            .into_iter()
                            .map(FieldDiff::from)
                            .collect()
                    }
                    _ => Vec::new(),
                };
                fields.extend(tag_fields(tags, observed.alarm_tags.get(name)));
                let kind = if *adopting {
                    ChangeAction::Adopt
                } else {
                    ChangeAction::Update
                };
                out.push(entry(
                    owner,
                    ResourceType::CloudWatchCompositeAlarm,
                    name,
                    kind,
                    fields,
                    reason,
                ));
            }
            Action::KeepComposite { record } => out.push(entry(
                owner,
                ResourceType::CloudWatchCompositeAlarm,
                &record.alarm_name,
                ChangeAction::NoChange,
                Vec::new(),
                reason,
            )),
            Action::DeleteComposites { names } => out.extend(names.iter().map(|name| {
                entry(
                    owner,
                    ResourceType::CloudWatchCompositeAlarm,
                    name,
                    ChangeAction::Delete,
                    Vec::new(),
                    format!(
                        "delete composite alarm {name}: no longer in the spec, tagged as this \
                         policy's"
                    ),
                )
            })),
            Action::SkipUnownedComposite { name } => out.push(entry(
                owner,
                ResourceType::CloudWatchCompositeAlarm,
                name,
                ChangeAction::NotOwned,
                Vec::new(),
                reason,
            )),
            Action::CreateRule { record, target, .. } => out.push(entry(
                owner,
                ResourceType::EventBridgeRule,
                &record.rule_name,
                ChangeAction::Create,
                vec![FieldDiff {
                    field: "target".into(),
                    old: Value::Null,
                    new: json!(target.arn),
                }],
                reason,
            )),
            Action::UpdateRule {
                record,
                definition,
                tags,
                target,
            }
            | Action::AdoptRule {
                record,
                definition,
                tags,
                target,
            } => {
                let name = &record.rule_name;
                let mut fields: Vec<FieldDiff> = match (definition, observed.rules.get(name)) {
                    (Some((desired, _)), Some(current)) => {
                        rule_changes(desired, &current.definition)
                            .into_iter()
                            .map(FieldDiff::from)
                            .collect()
                    }
                    _ => Vec::new(),
                };
                fields.extend(tag_fields(tags, observed.rule_tags.get(name)));
                if let Some(target) = target {
                    let current: Vec<&str> = observed
                        .rule_targets
                        .get(name)
                        .into_iter()
                        .flatten()
                        .map(|t| t.arn.as_str())
                        .collect();
                    fields.push(FieldDiff {
                        field: "target".into(),
                        old: json!(current),
                        new: json!(target.arn),
                    });
                }
                let kind = if matches!(action, Action::AdoptRule { .. }) {
                    ChangeAction::Adopt
                } else {
                    ChangeAction::Update
                };
                out.push(entry(
                    owner,
                    ResourceType::EventBridgeRule,
                    name,
                    kind,
                    fields,
                    reason,
                ));
            }
            Action::KeepRule { record } => out.push(entry(
                owner,
                ResourceType::EventBridgeRule,
                &record.rule_name,
                ChangeAction::NoChange,
                Vec::new(),
                reason,
            )),
            Action::DeleteRule { name, .. } => out.push(entry(
                owner,
                ResourceType::EventBridgeRule,
                name,
                ChangeAction::Delete,
                Vec::new(),
                format!("delete rule {name}: no longer in the spec, tagged as this policy's"),
            )),
            Action::SkipUnownedRule { name } => out.push(entry(
                owner,
                ResourceType::EventBridgeRule,
                name,
                ChangeAction::NotOwned,
                Vec::new(),
                reason,
            )),
            Action::DeleteTopic { arn } => out.push(entry(
                owner,
                ResourceType::SnsTopic,
                topic_name(arn),
                ChangeAction::Delete,
                Vec::new(),
                reason,
            )),
            Action::CreateFilter { record, .. } => out.push(entry(
                owner,
                ResourceType::LogMetricFilter,
                &filter_label(&record.log_group, &record.filter_name),
                ChangeAction::Create,
                Vec::new(),
                reason,
            )),
            Action::UpdateFilter {
                record, definition, ..
            } => {
                let current = observed
                    .log_groups
                    .get(&record.log_group)
                    .and_then(Option::as_ref)
                    .and_then(|filters| filters.get(&record.filter_name));
                let fields = current
                    .map(|current| {
                        filter_changes(definition, current)
                            .into_iter()
                            .map(FieldDiff::from)
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(entry(
                    owner,
                    ResourceType::LogMetricFilter,
                    &filter_label(&record.log_group, &record.filter_name),
                    ChangeAction::Update,
                    fields,
                    reason,
                ));
            }
            Action::KeepFilter { record } => out.push(entry(
                owner,
                ResourceType::LogMetricFilter,
                &filter_label(&record.log_group, &record.filter_name),
                ChangeAction::NoChange,
                Vec::new(),
                reason,
            )),
            Action::DeleteFilter { log_group, name } => out.push(entry(
                owner,
                ResourceType::LogMetricFilter,
                &filter_label(log_group, name),
                ChangeAction::Delete,
                Vec::new(),
                reason,
            )),
            // Reported with the policy's blockers (`LogGroupNotFound`): nothing is written.
            Action::LogGroupMissing { .. } => {}
        }
    }
    out
}

/// A queue the controller would create, with the attributes it creates it with.
pub fn queue_created(owner: &str, name: &str, attributes: &[(String, String)]) -> ResourceChange {
    entry(
        owner,
        ResourceType::SqsQueue,
        name,
        ChangeAction::Create,
        attributes
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(attribute, value)| FieldDiff {
                field: attribute.clone(),
                old: Value::Null,
                new: attribute_value(attribute, Some(value)),
            })
            .collect(),
        format!("create queue {name}: not in SQS"),
    )
}

/// A queue of ours that exists; [`queue_changes`] turns it into an update when attributes differ.
pub fn queue_kept(owner: &str, name: &str) -> ResourceChange {
    entry(
        owner,
        ResourceType::SqsQueue,
        name,
        ChangeAction::NoChange,
        Vec::new(),
        format!("keep queue {name}: ours, attributes in sync"),
    )
}

/// A queue as SQS would report it right after the controller created it with `attributes`:
/// what the rest of the queue plan is decided against when the queue does not exist yet.
pub fn queue_after_creation(name: &str, attributes: &[(String, String)]) -> ObservedQueue {
    let mut reported: crate::aws::sqs::QueueAttributes = attributes.iter().cloned().collect();
    reported.insert(
        crate::reconcile::queues::ATTR_QUEUEARN.to_string(),
        format!("{NEW_QUEUE_PREFIX}{name}"),
    );
    ObservedQueue::Present {
        url: format!("{NEW_QUEUE_PREFIX}{name}"),
        attributes: reported,
    }
}

/// The name of a queue from its URL (or placeholder).
fn queue_name(url: &str) -> &str {
    url.strip_prefix(NEW_QUEUE_PREFIX)
        .unwrap_or_else(|| url.rsplit('/').next().unwrap_or(url))
}

/// The queue plan's actions as changes; attribute writes to a queue being created are folded
/// into its creation in `changes`.
pub fn queue_changes(
    owner: &str,
    actions: &[QueueAction],
    observed: &QueuesObserved,
    changes: &mut Vec<ResourceChange>,
) {
    for action in actions {
        match action {
            QueueAction::SetAttributes { url, changes: set } => {
                let name = queue_name(url);
                let current = [&observed.dead_letter, &observed.queue]
                    .into_iter()
                    .find_map(|q| match q {
                        ObservedQueue::Present { url: u, attributes } if u == url => {
                            Some(attributes)
                        }
                        _ => None,
                    });
                let fields: Vec<FieldDiff> = set
                    .iter()
                    .map(|(attribute, value)| FieldDiff {
                        field: attribute.clone(),
                        old: attribute_value(
                            attribute,
                            current.and_then(|c| c.get(attribute)).map(String::as_str),
                        ),
                        new: attribute_value(attribute, Some(value)),
                    })
                    .collect();
                let names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
                let reason = format!("update queue {name}: {} differ", names.join(", "));
                let listed = changes.iter_mut().find(|c| {
                    c.resource_type == ResourceType::SqsQueue
                        && c.name == name
                        && matches!(c.action, ChangeAction::Create | ChangeAction::NoChange)
                });
                match listed {
                    // Set right after creation: part of what the queue is created with.
                    Some(created) if created.action == ChangeAction::Create => {
                        for field in fields {
                            created.fields.retain(|f| f.field != field.field);
                            created.fields.push(FieldDiff {
                                old: Value::Null,
                                ..field
                            });
                        }
                    }
                    Some(kept) => {
                        kept.action = ChangeAction::Update;
                        kept.fields = fields;
                        kept.reason = reason;
                    }
                    None => changes.push(entry(
                        owner,
                        ResourceType::SqsQueue,
                        name,
                        ChangeAction::Update,
                        fields,
                        reason,
                    )),
                }
            }
            QueueAction::Subscribe {
                topic_arn,
                queue_arn,
            } => {
                let name = subscription_name(topic_arn, queue_arn);
                changes.push(entry(
                    owner,
                    ResourceType::SnsSubscription,
                    &name,
                    ChangeAction::Create,
                    Vec::new(),
                    format!("subscribe {name}: the topic is a source"),
                ))
            }
            QueueAction::KeepSubscription {
                topic_arn,
                subscription_arn,
                disable_raw_delivery,
            } => {
                let name = subscription_name(topic_arn, observed.queue.arn().unwrap_or_default());
                changes.push(if *disable_raw_delivery {
                    entry(
                        owner,
                        ResourceType::SnsSubscription,
                        &name,
                        ChangeAction::Update,
                        vec![FieldDiff {
                            field: crate::aws::sns::RAW_MESSAGE_DELIVERY.into(),
                            old: json!("true"),
                            new: json!("false"),
                        }],
                        format!(
                            "update subscription {subscription_arn}: the consumer needs the SNS envelope"
                        ),
                    )
                } else {
                    entry(
                        owner,
                        ResourceType::SnsSubscription,
                        &name,
                        ChangeAction::NoChange,
                        Vec::new(),
                        format!("keep subscription {subscription_arn}"),
                    )
                });
            }
            QueueAction::SkipForeignSubscription {
                topic_arn,
                subscription_arn,
                endpoint,
            } => changes.push(entry(
                owner,
                ResourceType::SnsSubscription,
                &subscription_name(topic_arn, endpoint),
                ChangeAction::NotOwned,
                Vec::new(),
                format!(
                    "subscription {subscription_arn} delivers to {endpoint}, not this resource's queue: left alone"
                ),
            )),
            QueueAction::Unsubscribe {
                topic_arn,
                subscription_arn,
            } => changes.push(entry(
                owner,
                ResourceType::SnsSubscription,
                &subscription_name(topic_arn, observed.queue.arn().unwrap_or_default()),
                ChangeAction::Delete,
                Vec::new(),
                format!("unsubscribe {subscription_arn}: the topic is no longer a source"),
            )),
        }
    }
}

/// `topic → queue`, by their names.
pub fn subscription_name(topic_arn: &str, queue_arn: &str) -> String {
    format!(
        "{} → {}",
        topic_name(topic_arn),
        queue_name(queue_arn)
            .rsplit(':')
            .next()
            .unwrap_or(queue_arn)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::aws::cloudwatch::ObservedAlarm;
    use crate::names::OwnerIdentity;
    use crate::reconcile::alarm_policy::desired::build;
    use crate::reconcile::alarm_policy::plan::{Recorded, plan, plan_topic};
    use crate::resources::alarm_policy::AlarmPolicySpec;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alertops_prod_t";

    fn owner() -> OwnerIdentity {
        OwnerIdentity::new("prod", "AlarmPolicy", "platform", "elb")
    }

    fn spec(threshold: f64) -> AlarmPolicySpec {
        serde_json::from_value(json!({
            "tags": {"Team": "platform"},
            "alarms": [{
                "name": "errors",
                "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors",
                           "statistic": "Sum"},
                "period": 60, "evaluationPeriods": 5, "threshold": threshold,
                "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
            }]
        }))
        .unwrap()
    }

    #[test]
    fn a_changed_threshold_shows_old_and_new_from_what_aws_reports() {
        let owner = owner();
        let before = build(&spec(100.0), &owner, TOPIC);
        let after = build(&spec(250.0), &owner, TOPIC);
        let name = after.alarms[0].definition.alarm_name.clone();
        let mut observed = Observed::default();
        observed.alarms.insert(
            name.clone(),
            ObservedAlarm {
                arn: Some(format!("arn:aws:cloudwatch:us-east-1:1:alarm:{name}")),
                definition: before.alarms[0].definition.clone(),
                state: None,
                state_reason: None,
                state_changed_at: None,
            },
        );
        let mut tags = after.alarms[0].tags.clone();
        tags.insert("Team".into(), "data".into());
        observed.alarm_tags.insert(name.clone(), tags);
        let actions = plan(
            &after,
            TOPIC,
            &observed,
            &Recorded::default(),
            &owner,
            false,
        );
        let changes = policy_changes("AlarmPolicy/platform/elb", &actions, &observed);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, ChangeAction::Update);
        assert_eq!(changes[0].name, name);
        assert_eq!(
            changes[0].fields,
            vec![
                FieldDiff {
                    field: "threshold".into(),
                    old: json!(100.0),
                    new: json!(250.0)
                },
                FieldDiff {
                    field: "tags.Team".into(),
                    old: json!("data"),
                    new: json!("platform")
                },
            ]
        );
        assert!(
            changes[0].reason.contains("threshold"),
            "{}",
            changes[0].reason
        );
    }

    #[test]
    fn a_new_topic_shows_the_tags_and_policy_it_is_created_with() {
        let owner = owner();
        let (desired, tags) = crate::reconcile::alarm_policy::desired::topic(&spec(1.0), &owner);
        let plan = plan_topic(&desired, &tags, &ObservedTopic::Absent, &owner, false);
        let placeholder = new_topic_arn(&owner.topic_name());
        let created = ObservedTopic::Present {
            arn: placeholder,
            tags: tags.clone(),
            attributes: HashMap::new(),
        };
        let after = plan_topic(&desired, &tags, &created, &owner, false);
        let change = topic_change("o", &plan, &ObservedTopic::Absent, Some(&after)).unwrap();
        assert_eq!(change.action, ChangeAction::Create);
        assert_eq!(change.name, owner.topic_name());
        let fields: Vec<&str> = change.fields.iter().map(|f| f.field.as_str()).collect();
        assert!(fields.contains(&"tags.alertops.dev/owner"), "{fields:?}");
        assert!(fields.contains(&"Policy"), "{fields:?}");
        let policy = change.fields.iter().find(|f| f.field == "Policy").unwrap();
        assert_eq!(policy.new["Statement"][0]["Action"], "sns:Publish");
    }

    #[test]
    fn attribute_writes_to_a_new_queue_are_part_of_its_creation() {
        let attributes = vec![("VisibilityTimeout".to_string(), "30".to_string())];
        let mut changes = vec![queue_created("o", "q", &attributes)];
        let observed = QueuesObserved {
            dead_letter: ObservedQueue::Absent,
            queue: queue_after_creation("q", &attributes),
            topics: Default::default(),
            raw_delivery: Default::default(),
            recorded_endpoints: Default::default(),
        };
        let url = format!("{NEW_QUEUE_PREFIX}q");
        queue_changes(
            "o",
            &[
                QueueAction::SetAttributes {
                    url: url.clone(),
                    changes: vec![("Policy".into(), r#"{"Id":"alertops"}"#.into())],
                },
                QueueAction::Subscribe {
                    topic_arn: TOPIC.into(),
                    queue_arn: url,
                },
            ],
            &observed,
            &mut changes,
        );
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].fields[1].field, "Policy");
        assert_eq!(changes[0].fields[1].new, json!({"Id": "alertops"}));
        assert_eq!(changes[1].resource_type, ResourceType::SnsSubscription);
        assert_eq!(changes[1].name, "alertops_prod_t → q");
        assert_eq!(changes[1].action, ChangeAction::Create);
    }
}
