//! The SQS side of a digest run: receive in batches, delete after sending, or make messages
//! visible again when sending failed. Batches hold at most 10 entries (the SQS limit).

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName,
};
use chrono::{DateTime, Utc};

use crate::aws::{AwsApi, AwsClients, AwsError, AwsErrorKind};

/// Most messages one SQS batch call takes.
pub const SQS_BATCH: usize = 10;

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
    aws.acquire(AwsApi::Sqs).await;
    let output = aws
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max.clamp(1, SQS_BATCH) as i32)
        .visibility_timeout(visibility_timeout)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ReceiveMessage", e))?;
    Ok(output
        .messages()
        .iter()
        .filter_map(|m| {
            let sent_at = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
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
    batched(receipt_handles, |chunk| async move {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle.as_str())
                    .build()
                    .map_err(|e| build_error("DeleteMessageBatch", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        aws.acquire(AwsApi::Sqs).await;
        let output = aws
            .sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DeleteMessageBatch", e))?;
        Ok(failed_entries(
            &chunk,
            output
                .failed()
                .iter()
                .map(|f| (f.id(), f.code(), f.message())),
        ))
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
    batched(receipt_handles, |chunk| async move {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle.as_str())
                    .visibility_timeout(0)
                    .build()
                    .map_err(|e| build_error("ChangeMessageVisibilityBatch", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        aws.acquire(AwsApi::Sqs).await;
        let output = aws
            .sqs
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ChangeMessageVisibilityBatch", e))?;
        Ok(failed_entries(
            &chunk,
            output
                .failed()
                .iter()
                .map(|f| (f.id(), f.code(), f.message())),
        ))
    })
    .await
}

/// The handles of a chunk that SQS refused, with the reason.
fn failed_entries<'a>(
    chunk: &[String],
    failed: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> Vec<(String, String)> {
    failed
        .filter_map(|(id, code, message)| {
            let handle = chunk.get(id.parse::<usize>().ok()?)?;
            Some((
                handle.clone(),
                match message {
                    Some(message) => format!("{code}: {message}"),
                    None => code.to_string(),
                },
            ))
        })
        .collect()
}

/// Runs `call` over chunks of 10 handles; a chunk's refused entries get one more try.
async fn batched<F, Fut>(handles: &[String], call: F) -> Result<BatchOutcome, AwsError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(String, String)>, AwsError>>,
{
    let mut outcome = BatchOutcome::default();
    for chunk in handles.chunks(SQS_BATCH) {
        let mut refused = call(chunk.to_vec()).await?;
        if !refused.is_empty() {
            let retry: Vec<String> = refused.iter().map(|(h, _)| h.clone()).collect();
            refused = call(retry).await?;
        }
        outcome.succeeded += chunk.len() - refused.len();
        outcome
            .failed
            .extend(refused.into_iter().map(|(_, reason)| reason));
    }
    Ok(outcome)
}

fn build_error(operation: &str, error: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        AwsErrorKind::InvalidRequest,
        operation,
        "BuildError",
        error.to_string(),
    )
}
