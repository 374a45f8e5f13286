//! What applying a queue pair and its subscriptions will do, decided from data alone.
//!
//! - Each queue (the dead-letter queue first: the main queue's redrive policy names it) is created
//!   when absent, with our ownership tags; a queue of that name without them is someone else's and
//!   blocks the resource (`QueueNotOwned`), never modified.
//! - Attributes are set, in one call per queue, only where SQS reports something that means
//!   otherwise ([`super::attribute_matches`]).
//! - A source topic that does not exist is not subscribed and not admitted by the queue policy; it
//!   is reported as unreachable. The queue policy admits exactly the reachable topics.
//! - Each reachable topic gets one confirmed subscription of the queue, with the SNS envelope (raw
//!   delivery turned off where someone turned it on).
//! - A recorded subscription to a topic that is no longer a source is removed, but only when AWS
//!   reports our queue as its endpoint: the status is writable by others.

use std::collections::BTreeMap;

use crate::aws::sns::Subscription;
use crate::aws::sqs::QueueAttributes;
use crate::resources::{SubscriptionStatus, Tags};

use super::{
    ATTR_QUEUEARN, QueueConfig, attribute_matches, dead_letter_attributes, queue_attributes,
    queue_policy,
};
use crate::reconcile::outcome::Blocker;

/// One queue as SQS reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum ObservedQueue {
    /// No queue of that name.
    Absent,
    /// A queue of that name that is not ours.
    NotOwned,
    /// Our queue.
    Present {
        /// URL.
        url: String,
        /// Every attribute.
        attributes: QueueAttributes,
    },
}

impl ObservedQueue {
    /// The queue's ARN, when it is ours.
    pub fn arn(&self) -> Option<&str> {
        match self {
            ObservedQueue::Present { attributes, .. } => {
                attributes.get(ATTR_QUEUEARN).map(String::as_str)
            }
            _ => None,
        }
    }
}

/// What must exist before the rest can be planned.
#[derive(Clone, Debug, PartialEq)]
pub enum Creation {
    /// The queue is ours and in place.
    Present,
    /// Create it with these attributes and tags.
    Create {
        /// Queue name.
        name: String,
        /// Initial attributes.
        attributes: Vec<(String, String)>,
        /// Ownership tags.
        tags: Tags,
    },
    /// Someone else's queue holds the name.
    Blocked(Blocker),
}

/// Plans one queue's existence.
pub fn plan_creation(
    name: &str,
    observed: &ObservedQueue,
    attributes: Vec<(String, String)>,
    tags: &Tags,
) -> Creation {
    match observed {
        ObservedQueue::Present { .. } => Creation::Present,
        ObservedQueue::Absent => Creation::Create {
            name: name.to_string(),
            attributes,
            tags: tags.clone(),
        },
        ObservedQueue::NotOwned => Creation::Blocked(Blocker::new(
            "QueueNotOwned",
            format!(
                "an SQS queue named {name:?} already exists and is not owned by this resource \
                 (its alertops.dev/owner and alertops.dev/cluster tags do not name it); it was \
                 left untouched. Delete it or rename the resource."
            ),
        )),
    }
}

/// The queue pair and the source topics as AWS reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The dead-letter queue.
    pub dead_letter: ObservedQueue,
    /// The main queue.
    pub queue: ObservedQueue,
    /// Each source topic's subscriptions, or `None` when the topic does not exist.
    pub topics: BTreeMap<String, Option<Vec<Subscription>>>,
    /// Whether raw delivery is on, for each of our subscriptions, by subscription ARN.
    pub raw_delivery: BTreeMap<String, bool>,
    /// The endpoint AWS reports for each recorded subscription to a topic that is no longer a
    /// source, by subscription ARN (absent: the subscription is gone). The status is writable by
    /// others, so only what AWS says decides what is ours.
    pub recorded_endpoints: BTreeMap<String, String>,
}

impl Observed {
    /// Our confirmed subscription to `topic_arn`, if any.
    pub fn our_subscription(&self, topic_arn: &str) -> Option<&str> {
        let queue_arn = self.queue.arn()?;
        self.topics
            .get(topic_arn)?
            .as_ref()?
            .iter()
            .find(|s| s.protocol == "sqs" && s.endpoint == queue_arn)
            .and_then(|s| s.arn.as_deref())
    }
}

/// One decision about the queues or subscriptions.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueAction {
    /// Set attributes of a queue.
    SetAttributes {
        /// Queue URL.
        url: String,
        /// The attributes that differ, with their desired values.
        changes: Vec<(String, String)>,
    },
    /// Subscribe the queue to a topic.
    Subscribe {
        /// The topic.
        topic_arn: String,
        /// The queue.
        queue_arn: String,
    },
    /// Keep our subscription to a topic, turning raw delivery off when it is on.
    KeepSubscription {
        /// The topic.
        topic_arn: String,
        /// Our subscription.
        subscription_arn: String,
        /// Whether raw delivery must be turned off.
        disable_raw_delivery: bool,
    },
    /// Leave alone a recorded subscription whose endpoint is not our queue (a status written by
    /// someone else): reported, never removed.
    SkipForeignSubscription {
        /// The topic.
        topic_arn: String,
        /// The subscription.
        subscription_arn: String,
        /// Its endpoint as AWS reports it.
        endpoint: String,
    },
    /// Remove a subscription to a topic that is no longer a source.
    Unsubscribe {
        /// The topic.
        topic_arn: String,
        /// The subscription.
        subscription_arn: String,
    },
}

impl QueueAction {
    /// Whether it writes to AWS.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            QueueAction::KeepSubscription {
                disable_raw_delivery: false,
                ..
            } | QueueAction::SkipForeignSubscription { .. }
        )
    }
}

/// The plan for queues that both exist and are ours.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueuePlan {
    /// What to do, in order.
    pub actions: Vec<QueueAction>,
    /// Source topics that do not exist (or cannot be seen).
    pub unreachable_topics: Vec<String>,
}

/// Plans attributes and subscriptions. `topic_arns` are the resolved sources.
pub fn plan(
    config: &QueueConfig,
    topic_arns: &[String],
    observed: &Observed,
    recorded: &[SubscriptionStatus],
) -> QueuePlan {
    let mut plan = QueuePlan::default();
    let (
        Some(dead_letter_arn),
        ObservedQueue::Present {
            url: dead_letter_url,
            attributes: dead_letter_current,
        },
        Some(queue_arn),
        ObservedQueue::Present {
            url: queue_url,
            attributes: queue_current,
        },
    ) = (
        observed.dead_letter.arn(),
        &observed.dead_letter,
        observed.queue.arn(),
        &observed.queue,
    )
    else {
        return plan;
    };

    let reachable: Vec<String> = topic_arns
        .iter()
        .filter(|t| matches!(observed.topics.get(*t), Some(Some(_))))
        .cloned()
        .collect();
    plan.unreachable_topics = topic_arns
        .iter()
        .filter(|t| !reachable.contains(t))
        .cloned()
        .collect();

    plan.actions.extend(attribute_changes(
        dead_letter_url,
        &dead_letter_attributes(),
        dead_letter_current,
    ));
    let policy = queue_policy(queue_arn, &reachable);
    plan.actions.extend(attribute_changes(
        queue_url,
        &queue_attributes(config, dead_letter_arn, policy.as_ref()),
        queue_current,
    ));

    for topic in &reachable {
        plan.actions.push(match observed.our_subscription(topic) {
            Some(arn) => QueueAction::KeepSubscription {
                topic_arn: topic.clone(),
                subscription_arn: arn.to_string(),
                disable_raw_delivery: observed.raw_delivery.get(arn).copied().unwrap_or(false),
            },
            None => QueueAction::Subscribe {
                topic_arn: topic.clone(),
                queue_arn: queue_arn.to_string(),
            },
        });
    }
    for stale in recorded
        .iter()
        .filter(|s| !topic_arns.contains(&s.topic_arn))
    {
        match observed.recorded_endpoints.get(&stale.subscription_arn) {
            // Already gone.
            None => {}
            Some(endpoint) if endpoint == queue_arn => {
                plan.actions.push(QueueAction::Unsubscribe {
                    topic_arn: stale.topic_arn.clone(),
                    subscription_arn: stale.subscription_arn.clone(),
                })
            }
            Some(endpoint) => plan.actions.push(QueueAction::SkipForeignSubscription {
                topic_arn: stale.topic_arn.clone(),
                subscription_arn: stale.subscription_arn.clone(),
                endpoint: endpoint.clone(),
            }),
        }
    }
    plan
}

fn attribute_changes(
    url: &str,
    desired: &[(String, String)],
    current: &QueueAttributes,
) -> Option<QueueAction> {
    let changes: Vec<(String, String)> = desired
        .iter()
        .filter(|(name, value)| {
            !attribute_matches(name, value, current.get(name).map(String::as_str))
        })
        .cloned()
        .collect();
    (!changes.is_empty()).then(|| QueueAction::SetAttributes {
        url: url.to_string(),
        changes,
    })
}

#[cfg(test)]
#[path = "plan/tests.rs"]
mod tests;
