//! Reads what the queue plan needs and carries it out through the AWS gateway, returning what was
//! applied. Nothing is decided here: [`super::plan`] decides.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::sns::RAW_MESSAGE_DELIVERY;
use crate::aws::{AwsError, ControllerAws};
use crate::names::OwnerIdentity;
use crate::reconcile::outcome::{Blocker, Notice};
use crate::resources::SubscriptionStatus;

use super::plan::{self, Creation, Observed, ObservedQueue, QueueAction};
use super::{
    ATTR_QUEUEARN, DEAD_LETTER_SUFFIX, QUEUE_SUFFIX, QueueConfig, dead_letter_attributes,
    queue_attributes,
};

/// A queue's URL and ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRef {
    /// Queue URL, for SQS calls.
    pub url: String,
    /// Queue ARN, for policies and subscriptions.
    pub arn: String,
}

/// What [`apply`] applied.
#[derive(Clone, Debug, Default)]
pub struct QueueOutcome {
    /// The main queue, when it is ours and in place.
    pub queue: Option<QueueRef>,
    /// The dead-letter queue, when it is ours and in place.
    pub dead_letter: Option<QueueRef>,
    /// Messages waiting in the dead-letter queue (SQS's approximate count), from the attributes
    /// the apply reads anyway: no extra call.
    pub dead_letter_messages: Option<u64>,
    /// Subscriptions of the queue to the topics, sorted by topic.
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Topics that do not exist (or cannot be seen): not subscribed, not admitted by the policy.
    pub unreachable_topics: Vec<String>,
    /// Events to publish.
    pub notices: Vec<Notice>,
    /// Why the queues cannot be made ours, if anything blocks them.
    pub blockers: Vec<Blocker>,
}

/// Makes the dead-letter queue, the queue and one subscription per reachable topic match the
/// plan; removes recorded subscriptions to topics no longer listed.
pub async fn apply(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    config: &QueueConfig,
    topic_arns: &[String],
    recorded: &[SubscriptionStatus],
) -> Result<QueueOutcome, AwsError> {
    let mut out = QueueOutcome::default();
    let tags = owner.ownership_tags();

    let dead_letter_name = owner.queue_name(DEAD_LETTER_SUFFIX);
    let dead_letter = observe_queue(aws, owner, &dead_letter_name).await?;
    let dead_letter = match plan::plan_creation(
        &dead_letter_name,
        &dead_letter,
        dead_letter_attributes(),
        &tags,
    ) {
        Creation::Present => dead_letter,
        Creation::Create {
            name,
            attributes,
            tags,
        } => create(aws, owner, &name, &attributes, &tags, &mut out).await?,
        Creation::Blocked(blocker) => {
            out.blockers.push(blocker);
            return Ok(out);
        }
    };
    let Some(dead_letter_arn) = dead_letter.arn().map(str::to_string) else {
        return Ok(out);
    };

    let name = owner.queue_name(QUEUE_SUFFIX);
    let queue = observe_queue(aws, owner, &name).await?;
    let queue = match plan::plan_creation(
        &name,
        &queue,
        queue_attributes(config, &dead_letter_arn, None),
        &tags,
    ) {
        Creation::Present => queue,
        Creation::Create {
            name,
            attributes,
            tags,
        } => create(aws, owner, &name, &attributes, &tags, &mut out).await?,
        Creation::Blocked(blocker) => {
            out.blockers.push(blocker);
            return Ok(out);
        }
    };

    let mut observed = Observed {
        dead_letter,
        queue,
        topics: BTreeMap::new(),
        raw_delivery: BTreeMap::new(),
        recorded_endpoints: BTreeMap::new(),
    };
    for topic in topic_arns {
        let subscriptions = aws.topic_subscriptions(topic).await?;
        observed.topics.insert(topic.clone(), subscriptions);
        if let Some(arn) = observed.our_subscription(topic).map(str::to_string) {
            let attributes = aws.subscription_attributes(&arn).await?;
            let raw = attributes
                .get(RAW_MESSAGE_DELIVERY)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            observed.raw_delivery.insert(arn, raw);
        }
    }

    for stale in recorded
        .iter()
        .filter(|s| !topic_arns.contains(&s.topic_arn))
    {
        if let Some(endpoint) = subscription_endpoint(aws, &stale.subscription_arn).await? {
            observed
                .recorded_endpoints
                .insert(stale.subscription_arn.clone(), endpoint);
        }
    }
    let plan = plan::plan(config, topic_arns, &observed, recorded);
    out.dead_letter = queue_ref(&observed.dead_letter);
    out.dead_letter_messages = waiting_messages(&observed.dead_letter);
    out.queue = queue_ref(&observed.queue);
    out.unreachable_topics = plan.unreachable_topics.clone();
    tracing::debug!(
        writes = plan.actions.iter().filter(|a| a.is_write()).count(),
        "applying the queue plan"
    );
    for action in &plan.actions {
        execute(aws, action, &mut out).await?;
    }
    out.subscriptions
        .sort_by(|a, b| a.topic_arn.cmp(&b.topic_arn));
    Ok(out)
}

/// `ApproximateNumberOfMessages` of our queue, when SQS reported it.
fn waiting_messages(queue: &ObservedQueue) -> Option<u64> {
    match queue {
        ObservedQueue::Present { attributes, .. } => attributes
            .get(super::ATTR_APPROXIMATE_MESSAGES)
            .and_then(|v| v.trim().parse().ok()),
        _ => None,
    }
}

fn queue_ref(queue: &ObservedQueue) -> Option<QueueRef> {
    match queue {
        ObservedQueue::Present { url, attributes } => Some(QueueRef {
            url: url.clone(),
            arn: attributes.get(ATTR_QUEUEARN).cloned().unwrap_or_default(),
        }),
        _ => None,
    }
}

async fn create(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    name: &str,
    attributes: &[(String, String)],
    tags: &crate::resources::Tags,
    out: &mut QueueOutcome,
) -> Result<ObservedQueue, AwsError> {
    let url = aws.create_queue(name, attributes, tags).await?;
    out.notices.push(Notice::normal(
        "QueueCreated",
        format!("created SQS queue {url}"),
    ));
    observe_queue(aws, owner, name).await
}

async fn execute(
    aws: &dyn ControllerAws,
    action: &QueueAction,
    out: &mut QueueOutcome,
) -> Result<(), AwsError> {
    match action {
        QueueAction::SetAttributes { url, changes } => {
            aws.set_queue_attributes(url, changes).await?;
            let names: Vec<&str> = changes.iter().map(|(n, _)| n.as_str()).collect();
            out.notices.push(Notice::normal(
                "QueueUpdated",
                format!("updated SQS queue {url}: {}", names.join(", ")),
            ));
        }
        QueueAction::Subscribe {
            topic_arn,
            queue_arn,
        } => {
            let arn = aws.subscribe_queue(topic_arn, queue_arn).await?;
            out.notices.push(Notice::normal(
                "Subscribed",
                format!("subscribed queue {queue_arn} to SNS topic {topic_arn}"),
            ));
            out.subscriptions.push(SubscriptionStatus {
                topic_arn: topic_arn.clone(),
                subscription_arn: arn,
            });
        }
        QueueAction::KeepSubscription {
            topic_arn,
            subscription_arn,
            disable_raw_delivery,
        } => {
            if *disable_raw_delivery {
                aws.set_subscription_attribute(subscription_arn, RAW_MESSAGE_DELIVERY, "false")
                    .await?;
            }
            out.subscriptions.push(SubscriptionStatus {
                topic_arn: topic_arn.clone(),
                subscription_arn: subscription_arn.clone(),
            });
        }
        QueueAction::SkipForeignSubscription {
            topic_arn,
            subscription_arn,
            endpoint,
        } => out
            .notices
            .push(foreign_subscription(topic_arn, subscription_arn, endpoint)),
        QueueAction::Unsubscribe {
            topic_arn,
            subscription_arn,
        } => {
            if is_confirmed(subscription_arn) && aws.unsubscribe(subscription_arn).await? {
                out.notices.push(Notice::normal(
                    "Unsubscribed",
                    format!("unsubscribed from SNS topic {topic_arn}: no longer a source"),
                ));
            }
        }
    }
    Ok(())
}

/// A queue by name: absent, someone else's, or ours with every attribute.
pub(crate) async fn observe_queue(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    name: &str,
) -> Result<ObservedQueue, AwsError> {
    let Some(url) = aws.queue_url(name).await? else {
        return Ok(ObservedQueue::Absent);
    };
    if !owner.owns(&aws.queue_tags(&url).await?) {
        return Ok(ObservedQueue::NotOwned);
    }
    Ok(ObservedQueue::Present {
        attributes: aws.queue_attributes(&url).await?,
        url,
    })
}

/// Deletes the subscriptions of the queue (found by endpoint, plus `recorded`), the queue and
/// the dead-letter queue, each only when it carries this owner's tags.
pub async fn delete(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    recorded: &[SubscriptionStatus],
) -> Result<Vec<Notice>, AwsError> {
    let mut notices = Vec::new();
    let queue_name = owner.queue_name(QUEUE_SUFFIX);
    let queue = observe_queue(aws, owner, &queue_name).await?;
    // A recorded subscription is ours only if AWS names our queue as its endpoint (by ARN, or by
    // our queue's name when the queue is already gone).
    let mut subscriptions = BTreeSet::new();
    for stale in recorded
        .iter()
        .filter(|s| is_confirmed(&s.subscription_arn))
    {
        let Some(endpoint) = subscription_endpoint(aws, &stale.subscription_arn).await? else {
            continue;
        };
        let ours = match queue.arn() {
            Some(arn) => endpoint == arn,
            None => endpoint.rsplit(':').next() == Some(queue_name.as_str()),
        };
        if ours {
            subscriptions.insert(stale.subscription_arn.clone());
        } else {
            notices.push(foreign_subscription(
                &stale.topic_arn,
                &stale.subscription_arn,
                &endpoint,
            ));
        }
    }
    if let Some(arn) = queue.arn() {
        subscriptions.extend(
            aws.subscriptions_to(arn)
                .await?
                .into_iter()
                .filter(|s| s.protocol == "sqs")
                .filter_map(|s| s.arn),
        );
    }
    let mut removed = 0;
    for arn in subscriptions.iter().filter(|a| is_confirmed(a)) {
        if aws.unsubscribe(arn).await? {
            removed += 1;
        }
    }
    if removed > 0 {
        notices.push(Notice::normal(
            "Unsubscribed",
            format!("removed {removed} SNS subscriptions of the queue"),
        ));
    }
    let dead_letter = observe_queue(aws, owner, &owner.queue_name(DEAD_LETTER_SUFFIX)).await?;
    for observed in [queue, dead_letter] {
        if let ObservedQueue::Present { url, .. } = observed
            && aws.delete_queue(&url).await?
        {
            notices.push(Notice::normal(
                "QueueDeleted",
                format!("deleted SQS queue {url}"),
            ));
        }
    }
    Ok(notices)
}

/// The endpoint of a subscription as SNS reports it; `None` when it no longer exists.
async fn subscription_endpoint(
    aws: &dyn ControllerAws,
    subscription_arn: &str,
) -> Result<Option<String>, AwsError> {
    if !is_confirmed(subscription_arn) {
        return Ok(None);
    }
    match aws.subscription_attributes(subscription_arn).await {
        Ok(attributes) => Ok(Some(
            attributes.get("Endpoint").cloned().unwrap_or_default(),
        )),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn foreign_subscription(topic_arn: &str, subscription_arn: &str, endpoint: &str) -> Notice {
    Notice {
        warning: true,
        reason: "SubscriptionNotOwned",
        note: format!(
            "left subscription {subscription_arn} to {topic_arn} in place: the status records it, \
             but its endpoint is {endpoint}, not this resource's queue"
        ),
    }
}

/// SNS reports `PendingConfirmation` (or `Deleted`) instead of an ARN for unconfirmed ones.
fn is_confirmed(subscription_arn: &str) -> bool {
    subscription_arn.starts_with("arn:")
}
