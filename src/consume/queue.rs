//! The route's SQS queue: receive, delete, and hand messages back with a delay.

use std::time::Duration;

use chrono::{DateTime, Utc};

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::aws::sqs::{self, ReceiveRequest, SqsQueues};
pub use crate::aws::sqs::{MAX_VISIBILITY, SQS_BATCH};
use crate::aws::{AwsClients, AwsError};

/// Longest long-poll SQS allows.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// One received SQS message.
#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    /// SQS message id.
    pub message_id: String,
    /// Handle for delete and visibility changes.
    pub receipt_handle: String,
    /// The body (an SNS envelope, or the raw message).
    pub body: String,
    /// How many times SQS has handed this message out, this time included.
    pub receive_count: u32,
    /// When SQS accepted the message (its `SentTimestamp`).
    pub sent_at: Option<DateTime<Utc>>,
}

/// The queue attributes the consumer acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFacts {
    /// How long a received message stays invisible.
    pub visibility_timeout: Duration,
    /// Receives before SQS moves a message to the dead-letter queue, when there is one.
    pub max_receive_count: Option<u32>,
    /// Messages waiting to be received (SQS's approximate count), when SQS reported it.
    pub waiting_messages: Option<u64>,
}

/// The delay before a failed message is offered again: `initial` doubled for each earlier
/// receive, at most `max` (and at most what SQS allows).
pub fn retry_delay(receive_count: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(20);
    initial
        .saturating_mul(1u32 << doublings)
        .min(max)
        .min(MAX_VISIBILITY)
}

/// Reads the queue's visibility timeout and redrive policy.
pub async fn queue_facts(aws: &AwsClients, queue_url: &str) -> Result<QueueFacts, AwsError> {
    let attributes = aws.queue_attributes(queue_url).await?;
    let attributes = Some(&attributes);
    let visibility_timeout = attributes
        .and_then(|a| a.get("VisibilityTimeout"))
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30));
    let max_receive_count = attributes
        .and_then(|a| a.get("RedrivePolicy"))
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| match &p["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .map(|n| n.min(u64::from(u32::MAX)) as u32);
    let waiting_messages = attributes
        .and_then(|a| a.get("ApproximateNumberOfMessages"))
        .and_then(|v| v.parse::<u64>().ok());
    Ok(QueueFacts {
        visibility_timeout,
        max_receive_count,
        waiting_messages,
    })
}

/// How to wait for more alerts of a group that is due in `remaining`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupPoll {
    /// Long-poll for this long (whole seconds, never past the group's deadline).
    Long(Duration),
    /// Sleep until the deadline, then poll once without waiting.
    SleepThenShort(Duration),
}

/// SQS long-polls in whole seconds: rounding the time left up made a group wait of 1 s post
/// up to a second late (the row "latency with the route defaults" of `make bench`). Long polls
/// therefore take the whole seconds left, and under a second is slept, then one short poll
/// picks up what arrived meanwhile.
pub fn group_poll(remaining: Duration) -> GroupPoll {
    let whole = Duration::from_secs(remaining.min(MAX_WAIT).as_secs());
    if whole.is_zero() {
        GroupPoll::SleepThenShort(remaining)
    } else {
        GroupPoll::Long(whole)
    }
}

/// Long-polls for up to `max` (≤ 10) messages, waiting at most `wait` (whole seconds, ≤ 20).
pub async fn receive(
    aws: &AwsClients,
    queue_url: &str,
    max: usize,
    wait: Duration,
) -> Result<Vec<ReceivedMessage>, AwsError> {
    let request = ReceiveRequest {
        max,
        wait_seconds: wait.min(MAX_WAIT).as_secs_f64().ceil() as i32,
        visibility_timeout: None,
        attributes: &[
            MessageSystemAttributeName::ApproximateReceiveCount,
            MessageSystemAttributeName::SentTimestamp,
        ],
    };
    let messages = sqs::receive(aws, queue_url, request).await?;
    Ok(messages
        .iter()
        .filter_map(|m| {
            // Without a receipt handle a message can be neither deleted nor delayed; SQS always
            // sends one, and the message comes back after its visibility timeout anyway.
            let Some(receipt_handle) = m.receipt_handle() else {
                tracing::warn!(message_id = ?m.message_id(), "SQS message without receipt handle");
                return None;
            };
            Some(ReceivedMessage {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt_handle: receipt_handle.to_string(),
                // An empty body still becomes a (generic) alert.
                body: m.body().unwrap_or_default().to_string(),
                receive_count: sqs::system_attribute(
                    m,
                    &MessageSystemAttributeName::ApproximateReceiveCount,
                )
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
                sent_at: sqs::system_attribute(m, &MessageSystemAttributeName::SentTimestamp)
                    .and_then(|ms| ms.parse().ok())
                    .and_then(DateTime::from_timestamp_millis),
            })
        })
        .collect())
}

/// Deletes messages, ten per call. Returns how many SQS confirmed; a message it did not delete
/// (its receipt handle expired because it was received again) is only delivered twice.
pub async fn delete(
    aws: &AwsClients,
    queue_url: &str,
    messages: &[&ReceivedMessage],
) -> Result<usize, AwsError> {
    let handles: Vec<&str> = messages.iter().map(|m| m.receipt_handle.as_str()).collect();
    let result = sqs::delete(aws, queue_url, &handles).await?;
    for refused in &result.refused {
        tracing::warn!(
            message_id = messages.get(refused.index).map(|m| m.message_id.as_str()),
            code = refused.code,
            reason = refused.message,
            "SQS did not delete a delivered message; it may be delivered again"
        );
    }
    Ok(result.succeeded)
}

/// Makes messages visible again after their delay, ten per call.
pub async fn delay(
    aws: &AwsClients,
    queue_url: &str,
    messages: &[(&ReceivedMessage, Duration)],
) -> Result<(), AwsError> {
    let timeouts: Vec<(&str, Duration)> = messages
        .iter()
        .map(|(m, delay)| (m.receipt_handle.as_str(), *delay))
        .collect();
    let result = sqs::change_visibility(aws, queue_url, &timeouts).await?;
    for refused in &result.refused {
        tracing::warn!(
            code = refused.code,
            reason = refused.message,
            "SQS did not change a message's visibility; it returns after its timeout"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_poll_never_waits_past_the_groups_deadline() {
        let ms = Duration::from_millis;
        assert_eq!(group_poll(ms(700)), GroupPoll::SleepThenShort(ms(700)));
        assert_eq!(group_poll(ms(1_700)), GroupPoll::Long(ms(1_000)));
        assert_eq!(group_poll(ms(60_000)), GroupPoll::Long(MAX_WAIT));
        for remaining in (0..5_000).step_by(50).map(ms) {
            let waited = match group_poll(remaining) {
                GroupPoll::Long(wait) | GroupPoll::SleepThenShort(wait) => wait,
            };
            assert!(waited <= remaining, "{remaining:?}: {waited:?}");
        }
    }

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(retry_delay(1, s(10), s(900)), s(10));
        assert_eq!(retry_delay(2, s(10), s(900)), s(20));
        assert_eq!(retry_delay(4, s(10), s(900)), s(80));
        assert_eq!(retry_delay(30, s(10), s(900)), s(900));
        assert_eq!(retry_delay(0, s(10), s(900)), s(10));
        assert_eq!(retry_delay(u32::MAX, s(3600), s(100_000)), MAX_VISIBILITY);
    }
}
