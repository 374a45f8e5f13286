//! The SQS queue, its dead-letter queue and the SNS subscriptions that an AlertRoute or a
//! DigestSchedule owns: resolving the sources to topic ARNs and the desired attributes (here, pure),
//! the decisions ([`plan`]) and the reads and writes that carry them out ([`execute`]).
//!
//! Writes happen only where AWS differs after normalisation (numbers as numbers, policies as
//! canonical JSON), so a no-op resync writes nothing. Queues that exist without our ownership tags
//! are never modified or deleted. Source topics are only subscribed to, never modified.

pub(crate) mod execute;
pub(crate) mod plan;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::k8s::{ClusterApi, ClusterError};
use crate::reconcile::alarm_policy::desired::canonical_policy;
use crate::resources::{AlarmPolicy, SourceRef};

/// Suffix of the dead-letter queue's name.
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";
/// Suffix of the main queue's name (none: the main queue carries the plain name).
pub const QUEUE_SUFFIX: &str = "";
pub use crate::aws::sqs::MAX_RETENTION_SECONDS;
/// Reason of the Ready condition while a source has no topic to subscribe to.
pub const REASON_SOURCE_NOT_READY: &str = "SourceNotReady";
/// Reason of the Ready condition when a `topicArn` source is not on the operator's allow-list.
pub const REASON_SOURCE_NOT_ALLOWED: &str = "SourceNotAllowed";

/// SQS attribute names, as SQS spells them.
pub const ATTR_VISIBILITYTIMEOUT: &str = "VisibilityTimeout";
/// Retention of messages, in seconds.
pub const ATTR_MESSAGERETENTIONPERIOD: &str = "MessageRetentionPeriod";
/// Where and after how many receives messages move to the dead-letter queue.
pub const ATTR_REDRIVEPOLICY: &str = "RedrivePolicy";
/// The queue's access policy.
pub const ATTR_POLICY: &str = "Policy";
/// The queue's ARN (read only).
pub const ATTR_QUEUEARN: &str = "QueueArn";
/// Messages waiting to be received (read only, approximate).
pub const ATTR_APPROXIMATE_MESSAGES: &str = "ApproximateNumberOfMessages";

/// How the owned queue behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Receives of one message before SQS moves it to the dead-letter queue.
    pub max_receive_count: i32,
    /// Seconds a received message stays invisible to other consumers.
    pub visibility_timeout_seconds: i32,
    /// Seconds an undelivered message is kept.
    pub retention_seconds: i32,
}

/// The sources of a route or schedule, resolved to topic ARNs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedSources {
    /// Topics to subscribe to, sorted and without duplicates.
    pub topic_arns: Vec<String>,
    /// Sources without a topic yet, each described for a person.
    pub not_ready: Vec<String>,
    /// `topicArn` sources the operator's allow-list does not admit: never subscribed.
    pub not_allowed: Vec<String>,
}

impl ResolvedSources {
    /// Adds topics that turned out not to exist to the sources that are not ready.
    pub fn mark_unreachable(&mut self, topics: &[String]) {
        for topic in topics {
            self.topic_arns.retain(|t| t != topic);
            self.not_ready.push(format!(
                "SNS topic {topic} does not exist or is not visible to the operator's role"
            ));
        }
    }
}

/// Resolves each source: an `alarmPolicy` to the `status.topicArn` of that AlarmPolicy in
/// `namespace` (not ready while it does not exist or has no topic yet; only the resource's own
/// namespace is looked in), a `topicArn` to itself when `allowed_topics` admits it (`None`: any).
pub async fn resolve_sources<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    sources: &[SourceRef],
    allowed_topics: Option<&[String]>,
) -> Result<ResolvedSources, ClusterError> {
    let mut topics = BTreeSet::new();
    let mut not_ready = Vec::new();
    let mut not_allowed = Vec::new();
    for source in sources {
        match (&source.alarm_policy, &source.topic_arn) {
            (Some(policy), _) => {
                let found = cluster.get::<AlarmPolicy>(namespace, policy).await?;
                match policy_topic(found.as_ref()) {
                    Ok(arn) => {
                        topics.insert(arn);
                    }
                    Err(why) => not_ready.push(format!("AlarmPolicy {namespace}/{policy} {why}")),
                }
            }
            (None, Some(arn)) => {
                if allowed_topics
                    .is_none_or(|patterns| patterns.iter().any(|p| arn_matches(p, arn)))
                {
                    topics.insert(arn.clone());
                } else {
                    not_allowed.push(arn.clone());
                }
            }
            // The CRD's CEL rule forbids this; report it rather than ignore it.
            (None, None) => {
                not_ready.push("a source names neither alarmPolicy nor topicArn".to_string())
            }
        }
    }
    Ok(ResolvedSources {
        topic_arns: topics.into_iter().collect(),
        not_ready,
        not_allowed,
    })
}

/// Whether `arn` matches `pattern`, where `*` stands for any run of characters (as in IAM).
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = arn.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The reason and message of `Ready=False` for sources the allow-list does not admit.
pub fn not_allowed_condition(not_allowed: &[String]) -> (&'static str, String) {
    (
        REASON_SOURCE_NOT_ALLOWED,
        format!(
            "topicArn sources must be on the operator's allow-list (Helm value \
             sources.allowedTopicArns); not allowed: {}. Nothing was created. Use an AlarmPolicy \
             of this namespace as the source, or ask the platform team to allow the topic.",
            not_allowed.join(", ")
        ),
    )
}

/// The topic of an AlarmPolicy, or why there is none yet.
fn policy_topic(policy: Option<&AlarmPolicy>) -> Result<String, &'static str> {
    let policy = policy.ok_or("does not exist")?;
    if policy.metadata.deletion_timestamp.is_some() {
        return Err("is being deleted");
    }
    policy
        .status
        .as_ref()
        .and_then(|s| s.topic_arn.clone())
        .ok_or("has no SNS topic yet (it is not reconciled, or not Ready)")
}

/// The queue policy that lets SNS deliver from exactly `topic_arns`; `None` when there are none
/// (AWS rejects a policy without statements).
pub fn queue_policy(queue_arn: &str, topic_arns: &[String]) -> Option<Value> {
    if topic_arns.is_empty() {
        return None;
    }
    Some(json!({
        "Version": "2012-10-17",
        "Id": "alertops",
        "Statement": [{
            "Sid": "SourceTopicsSend",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}}
        }]
    }))
}

/// The redrive policy that moves a message to the dead-letter queue after `max_receive_count`
/// receives.
pub fn redrive_policy(dead_letter_arn: &str, max_receive_count: i32) -> Value {
    json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count})
}

/// Attributes of the main queue, as SQS spells them.
pub fn queue_attributes(
    config: &QueueConfig,
    dead_letter_arn: &str,
    policy: Option<&Value>,
) -> Vec<(String, String)> {
    vec![
        (
            ATTR_VISIBILITYTIMEOUT.to_string(),
            config.visibility_timeout_seconds.to_string(),
        ),
        (
            ATTR_MESSAGERETENTIONPERIOD.to_string(),
            config.retention_seconds.to_string(),
        ),
        (
            ATTR_REDRIVEPOLICY.to_string(),
            redrive_policy(dead_letter_arn, config.max_receive_count).to_string(),
        ),
        (
            ATTR_POLICY.to_string(),
            policy.map(Value::to_string).unwrap_or_default(),
        ),
    ]
}

/// Attributes of the dead-letter queue: the longest retention, so that failed messages outlive
/// the main queue's (SQS keeps a message's original enqueue time when it moves).
pub fn dead_letter_attributes() -> Vec<(String, String)> {
    vec![(
        ATTR_MESSAGERETENTIONPERIOD.to_string(),
        MAX_RETENTION_SECONDS.to_string(),
    )]
}

/// Whether the value SQS reports for an attribute means the same as the desired value.
pub fn attribute_matches(name: &str, desired: &str, current: Option<&str>) -> bool {
    let current = current.unwrap_or("").trim();
    match name {
        ATTR_POLICY => json_or_null(desired) == json_or_null(current),
        ATTR_REDRIVEPOLICY => redrive_key(desired) == redrive_key(current),
        _ => match (desired.trim().parse::<i64>(), current.parse::<i64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => desired.trim() == current,
        },
    }
}

/// A policy document in canonical form; empty or invalid text is no policy.
fn json_or_null(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .map(|v| canonical_policy(&v))
        .unwrap_or(Value::Null)
}

/// A redrive policy as (target, count), whether SQS reports the count as a number or a string.
fn redrive_key(text: &str) -> Option<(String, i64)> {
    let value: Value = serde_json::from_str(text).ok()?;
    let target = value.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = match value.get("maxReceiveCount")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some((target, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:q";

    #[test]
    fn the_policy_admits_exactly_the_topics() {
        let topics = vec![
            "arn:aws:sns:us-east-1:123456789012:a".to_string(),
            "arn:aws:sns:us-east-1:123456789012:b".to_string(),
        ];
        let policy = queue_policy(QUEUE, &topics).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], "sns.amazonaws.com");
        assert_eq!(statement["Action"], "sqs:SendMessage");
        assert_eq!(statement["Resource"], QUEUE);
        assert_eq!(
            statement["Condition"]["ArnEquals"]["aws:SourceArn"],
            json!(topics)
        );
        assert!(queue_policy(QUEUE, &[]).is_none());
    }

    #[test]
    fn attributes_compare_after_normalisation() {
        let retention = ATTR_MESSAGERETENTIONPERIOD;
        assert!(attribute_matches(retention, "345600", Some("345600")));
        assert!(!attribute_matches(retention, "345600", Some("86400")));
        assert!(!attribute_matches(retention, "345600", None));

        let redrive = ATTR_REDRIVEPOLICY;
        let desired = redrive_policy("arn:dlq", 5).to_string();
        assert!(attribute_matches(
            redrive,
            &desired,
            Some(r#"{"maxReceiveCount":"5", "deadLetterTargetArn":"arn:dlq"}"#)
        ));
        assert!(!attribute_matches(
            redrive,
            &desired,
            Some(r#"{"deadLetterTargetArn":"arn:dlq","maxReceiveCount":4}"#)
        ));

        let policy = ATTR_POLICY;
        let topics = vec!["arn:t1".to_string(), "arn:t2".to_string()];
        let desired = queue_policy(QUEUE, &topics).unwrap().to_string();
        let reordered = queue_policy(QUEUE, &["arn:t2".to_string(), "arn:t1".to_string()])
            .unwrap()
            .to_string();
        assert!(attribute_matches(policy, &desired, Some(&reordered)));
        assert!(!attribute_matches(
            policy,
            &desired,
            Some(&queue_policy(QUEUE, &topics[..1]).unwrap().to_string())
        ));
        assert!(
            attribute_matches(policy, "", None),
            "no policy is no policy"
        );
        assert!(!attribute_matches(policy, "", Some(&desired)));
    }

    #[test]
    fn arn_patterns_match_with_wildcards_only_where_written() {
        let arn = "arn:aws:sns:us-east-1:123456789012:shared-alerts";
        assert!(arn_matches(arn, arn));
        assert!(arn_matches("arn:aws:sns:us-east-1:123456789012:*", arn));
        assert!(arn_matches("arn:aws:sns:*:123456789012:shared-*", arn));
        assert!(arn_matches("*", arn));
        assert!(!arn_matches(
            "arn:aws:sns:us-east-1:123456789012:shared",
            arn
        ));
        assert!(!arn_matches("arn:aws:sns:us-east-1:999999999999:*", arn));
        assert!(!arn_matches("arn:aws:sns:*:123456789012:other-*", arn));
        assert!(!arn_matches(
            "arn:aws:sns:us-east-1:123456789012:shared-alerts-x*",
            arn
        ));
    }

    #[test]
    fn unreachable_topics_become_not_ready_sources() {
        let mut sources = ResolvedSources {
            topic_arns: vec!["arn:a".into(), "arn:b".into()],
            not_ready: vec![],
            not_allowed: vec![],
        };
        sources.mark_unreachable(&["arn:b".to_string()]);
        assert_eq!(sources.topic_arns, vec!["arn:a".to_string()]);
        assert!(sources.not_ready[0].contains("arn:b"));
    }
}
