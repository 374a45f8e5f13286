//! One test per rule of the queue planner, on data.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::reconcile::queues::{MAX_RETENTION_SECONDS, redrive_policy};

const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:q-dlq";
const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:q";
const TOPIC_A: &str = "arn:aws:sns:us-east-1:123456789012:a";
const TOPIC_B: &str = "arn:aws:sns:us-east-1:123456789012:b";

fn config() -> QueueConfig {
    QueueConfig {
        max_receive_count: 5,
        visibility_timeout_seconds: 30,
        retention_seconds: 345_600,
    }
}

fn present(arn: &str, attributes: &[(String, String)]) -> ObservedQueue {
    let mut all: QueueAttributes = attributes.iter().cloned().collect();
    all.insert(ATTR_QUEUEARN.into(), arn.into());
    ObservedQueue::Present {
        url: format!("https://sqs/{arn}"),
        attributes: all,
    }
}

fn subscription(topic: &str, arn: &str) -> Subscription {
    Subscription {
        arn: Some(arn.into()),
        topic_arn: topic.into(),
        protocol: "sqs".into(),
        endpoint: QUEUE_ARN.into(),
    }
}

/// Both queues as the last apply left them, subscribed to topic A.
fn in_sync() -> Observed {
    let topics = vec![TOPIC_A.to_string()];
    Observed {
        dead_letter: present(DLQ_ARN, &dead_letter_attributes()),
        queue: present(
            QUEUE_ARN,
            &queue_attributes(
                &config(),
                DLQ_ARN,
                queue_policy(QUEUE_ARN, &topics).as_ref(),
            ),
        ),
        topics: BTreeMap::from([(
            TOPIC_A.to_string(),
            Some(vec![subscription(TOPIC_A, "arn:sub-a")]),
        )]),
        raw_delivery: BTreeMap::from([("arn:sub-a".to_string(), false)]),
        recorded_endpoints: BTreeMap::new(),
    }
}

#[test]
fn a_resync_of_what_was_applied_writes_nothing() {
    let plan = plan(&config(), &[TOPIC_A.to_string()], &in_sync(), &[]);
    assert!(
        plan.actions.iter().all(|a| !a.is_write()),
        "{:#?}",
        plan.actions
    );
    assert_eq!(
        plan.actions,
        vec![QueueAction::KeepSubscription {
            topic_arn: TOPIC_A.into(),
            subscription_arn: "arn:sub-a".into(),
            disable_raw_delivery: false
        }]
    );
}

#[test]
fn a_new_source_is_subscribed_and_admitted_by_the_policy() {
    let mut observed = in_sync();
    observed
        .topics
        .insert(TOPIC_B.to_string(), Some(Vec::new()));
    let topics = vec![TOPIC_A.to_string(), TOPIC_B.to_string()];
    let plan = plan(&config(), &topics, &observed, &[]);
    let policy = plan.actions.iter().find_map(|a| match a {
        QueueAction::SetAttributes { changes, .. } => Some(changes.clone()),
        _ => None,
    });
    let changes = policy.expect("the policy changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].0, "Policy");
    assert!(changes[0].1.contains(TOPIC_B));
    assert!(plan.actions.contains(&QueueAction::Subscribe {
        topic_arn: TOPIC_B.into(),
        queue_arn: QUEUE_ARN.into()
    }));
}

#[test]
fn a_missing_topic_is_unreachable_neither_subscribed_nor_admitted() {
    let mut observed = in_sync();
    observed.topics.insert(TOPIC_B.to_string(), None);
    let topics = vec![TOPIC_A.to_string(), TOPIC_B.to_string()];
    let plan = plan(&config(), &topics, &observed, &[]);
    assert_eq!(plan.unreachable_topics, vec![TOPIC_B.to_string()]);
    assert!(plan.actions.iter().all(|a| !a.is_write()), "{plan:#?}");
}

#[test]
fn drifted_attributes_are_set_in_one_call_naming_only_those() {
    let mut observed = in_sync();
    let ObservedQueue::Present { attributes, .. } = &mut observed.queue else {
        unreachable!()
    };
    attributes.insert("VisibilityTimeout".into(), "5".into());
    attributes.insert(
        "RedrivePolicy".into(),
        redrive_policy(DLQ_ARN, 1).to_string(),
    );
    let plan = plan(&config(), &[TOPIC_A.to_string()], &observed, &[]);
    let changed: Vec<&str> = plan
        .actions
        .iter()
        .flat_map(|a| match a {
            QueueAction::SetAttributes { changes, .. } => {
                changes.iter().map(|(n, _)| n.as_str()).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(changed, vec!["VisibilityTimeout", "RedrivePolicy"]);
}

#[test]
fn raw_delivery_turned_on_by_someone_is_turned_off() {
    let mut observed = in_sync();
    observed.raw_delivery.insert("arn:sub-a".into(), true);
    let plan = plan(&config(), &[TOPIC_A.to_string()], &observed, &[]);
    assert!(plan.actions.contains(&QueueAction::KeepSubscription {
        topic_arn: TOPIC_A.into(),
        subscription_arn: "arn:sub-a".into(),
        disable_raw_delivery: true
    }));
}

#[test]
fn a_recorded_subscription_to_a_dropped_source_is_removed() {
    let recorded = vec![
        SubscriptionStatus {
            topic_arn: TOPIC_A.into(),
            subscription_arn: "arn:sub-a".into(),
        },
        SubscriptionStatus {
            topic_arn: TOPIC_B.into(),
            subscription_arn: "arn:sub-b".into(),
        },
    ];
    let mut observed = in_sync();
    observed
        .recorded_endpoints
        .insert("arn:sub-b".into(), QUEUE_ARN.into());
    let plan = plan(&config(), &[TOPIC_A.to_string()], &observed, &recorded);
    assert_eq!(
        plan.actions
            .iter()
            .filter(|a| matches!(a, QueueAction::Unsubscribe { .. }))
            .collect::<Vec<_>>(),
        vec![&QueueAction::Unsubscribe {
            topic_arn: TOPIC_B.into(),
            subscription_arn: "arn:sub-b".into()
        }]
    );
}

#[test]
fn a_recorded_subscription_is_removed_only_when_aws_names_our_queue_its_endpoint() {
    let recorded = vec![
        SubscriptionStatus {
            topic_arn: TOPIC_B.into(),
            subscription_arn: "arn:foreign".into(),
        },
        SubscriptionStatus {
            topic_arn: TOPIC_B.into(),
            subscription_arn: "arn:gone".into(),
        },
    ];
    let mut observed = in_sync();
    observed.recorded_endpoints.insert(
        "arn:foreign".into(),
        "arn:aws:sqs:us-east-1:123456789012:another-queue".into(),
    );
    let plan = plan(&config(), &[TOPIC_A.to_string()], &observed, &recorded);
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, QueueAction::Unsubscribe { .. })),
        "{plan:#?}"
    );
    assert!(
        plan.actions
            .contains(&QueueAction::SkipForeignSubscription {
                topic_arn: TOPIC_B.into(),
                subscription_arn: "arn:foreign".into(),
                endpoint: "arn:aws:sqs:us-east-1:123456789012:another-queue".into()
            })
    );
}

#[test]
fn queues_are_created_when_absent_and_someone_elses_name_blocks() {
    let tags = crate::resources::Tags::from([("alertops.dev/owner".into(), "x".into())]);
    match plan_creation(
        "q-dlq",
        &ObservedQueue::Absent,
        dead_letter_attributes(),
        &tags,
    ) {
        Creation::Create {
            name, attributes, ..
        } => {
            assert_eq!(name, "q-dlq");
            let attributes: HashMap<_, _> = attributes.into_iter().collect();
            assert_eq!(
                attributes["MessageRetentionPeriod"],
                MAX_RETENTION_SECONDS.to_string()
            );
        }
        other => panic!("expected a creation, got {other:?}"),
    }
    assert!(matches!(
        plan_creation("q", &ObservedQueue::NotOwned, Vec::new(), &tags),
        Creation::Blocked(Blocker {
            reason: "QueueNotOwned",
            ..
        })
    ));
    assert_eq!(
        plan_creation("q", &in_sync().queue, Vec::new(), &tags),
        Creation::Present
    );
}
