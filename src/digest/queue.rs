//! The SQS side of a digest run: receive in batches, delete after sending, or make messages
//! visible again when sending failed. Entries SQS refuses get one more try.

use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::{DateTime, Utc};

pub use crate::aws::sqs::SQS_BATCH;
use crate::aws::sqs::{self, BatchResult, ReceiveRequest};
use crate::aws::{AwsClients, AwsError};

/// One received message.
#[derive(Clone, Debug)]
pub struct Received {
    /// SQS message id.
    pub message_id: String,
    /// Receipt handle of this receive (needed to delete or release).
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// When SQS received it (`SentTimestamp`).
    pub sent_at: Option<DateTime<Utc>>,
}

/// Receives up to `max` (at most 10) messages, hidden from other receivers for
/// `visibility_timeout` seconds, waiting up to `wait_seconds` for the first one.
pub async fn receive(
    aws: &AwsClients,
    queue_url: &str,
    max: usize,
    visibility_timeout: i32,
    wait_seconds: i32,
) -> Result<Vec<Received>, AwsError> {
    let request = ReceiveRequest {
        max,
        wait_seconds,
        visibility_timeout: Some(visibility_timeout),
        attributes: &[MessageSystemAttributeName::SentTimestamp],
    };
    let messages = sqs::receive(aws, queue_url, request).await?;
    Ok(messages
        .iter()
        .filter_map(|m| {
            let sent_at = sqs::system_attribute(m, &MessageSystemAttributeName::SentTimestamp)
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(DateTime::<Utc>::from_timestamp_millis);
            Some(Received {
                message_id: m.message_id()?.to_string(),
                receipt_handle: m.receipt_handle()?.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                sent_at,
            })
        })
        .collect())
}

/// Outcome of a batch operation over many receipt handles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Entries SQS accepted.
    pub succeeded: usize,
    /// Entries SQS refused twice (once, then on a retry of just those), with its reason.
    pub failed: Vec<String>,
}

/// Deletes the messages, 10 per call; entries SQS refuses are retried once.
pub async fn delete(
    aws: &AwsClients,
    queue_url: &str,
    receipt_handles: &[String],
) -> Result<BatchOutcome, AwsError> {
    with_one_retry(receipt_handles, |chunk| async move {
        sqs::delete(aws, queue_url, &chunk).await
    })
    .await
}

/// Makes the messages visible again at once (visibility timeout 0), 10 per call, so the next
/// run receives them without waiting for their visibility timeout to expire.
pub async fn release(
    aws: &AwsClients,
    queue_url: &str,
    receipt_handles: &[String],
) -> Result<BatchOutcome, AwsError> {
    with_one_retry(receipt_handles, |chunk| async move {
        let timeouts: Vec<(&str, Duration)> = chunk
            .iter()
            .map(|handle| (handle.as_str(), Duration::ZERO))
            .collect();
        sqs::change_visibility(aws, queue_url, &timeouts).await
    })
    .await
}

/// Runs `call` over chunks of 10 handles; a chunk's refused entries get one more try.
async fn with_one_retry<F, Fut>(handles: &[String], call: F) -> Result<BatchOutcome, AwsError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<BatchResult, AwsError>>,
{
    let mut outcome = BatchOutcome::default();
    for chunk in handles.chunks(SQS_BATCH) {
        let mut refused = call(chunk.to_vec()).await?.refused;
        if !refused.is_empty() {
            let retry: Vec<String> = refused
                .iter()
                .filter_map(|r| chunk.get(r.index).cloned())
                .collect();
            refused = call(retry).await?.refused;
        }
        outcome.succeeded += chunk.len() - refused.len();
        outcome
            .failed
            .extend(refused.iter().map(sqs::RefusedEntry::reason));
    }
    Ok(outcome)
}
