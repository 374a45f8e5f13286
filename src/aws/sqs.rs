//! SQS in our own terms: the queues the controller owns ([`SqsQueues`]: find, create, read and set
//! attributes and tags, delete), and the message mechanics shared by the route consumer and the
//! digest: one `ReceiveMessage`, and `DeleteMessageBatch` / `ChangeMessageVisibilityBatch` over any
//! number of receipt handles, ten per call (the SQS limit). What to do about entries SQS refuses
//! (log them, retry them) is the caller's policy; these functions only report them.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;

use super::{AwsApi, AwsClients, AwsError, AwsErrorKind};
use crate::resources::Tags;

/// Queue attributes by their SQS names (`VisibilityTimeout`, `RedrivePolicy`, `QueueArn`, …).
pub type QueueAttributes = HashMap<String, String>;

/// The SQS queue operations the controller makes, each taking its rate permit and classifying
/// its errors.
#[async_trait]
pub trait SqsQueues: Send + Sync {
    /// The URL of the queue with this name, or `None` when there is none.
    async fn queue_url(&self, name: &str) -> Result<Option<String>, AwsError>;
    /// URLs of the queues whose name starts with `prefix` (ListQueues, every page).
    async fn queues_with_prefix(&self, prefix: &str) -> Result<Vec<String>, AwsError>;
    /// The tags of a queue.
    async fn queue_tags(&self, url: &str) -> Result<Tags, AwsError>;
    /// Every attribute of a queue.
    async fn queue_attributes(&self, url: &str) -> Result<QueueAttributes, AwsError>;
    /// Creates a queue with attributes (empty values are left out) and tags; returns its URL.
    async fn create_queue(
        &self,
        name: &str,
        attributes: &[(String, String)],
        tags: &Tags,
    ) -> Result<String, AwsError>;
    /// Sets attributes of a queue in one call.
    async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AwsError>;
    /// Deletes a queue; `false` when it was already gone.
    async fn delete_queue(&self, url: &str) -> Result<bool, AwsError>;
}

#[async_trait]
impl SqsQueues for AwsClients {
    async fn queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self
            .call(AwsApi::Sqs, "GetQueueUrl", || {
                self.sqs.get_queue_url().queue_name(name).send()
            })
            .await
        {
            Ok(output) => Ok(output.queue_url().map(str::to_string)),
            Err(e) => {
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn queues_with_prefix(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut found = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .call(AwsApi::Sqs, "ListQueues", || {
                    self.sqs
                        .list_queues()
                        .queue_name_prefix(prefix)
                        .max_results(1000)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            found.extend(page.queue_urls().iter().cloned());
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn queue_tags(&self, url: &str) -> Result<Tags, AwsError> {
        let output = self
            .call(AwsApi::Sqs, "ListQueueTags", || {
                self.sqs.list_queue_tags().queue_url(url).send()
            })
            .await?;
        Ok(output
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn queue_attributes(&self, url: &str) -> Result<QueueAttributes, AwsError> {
        let output = self
            .call(AwsApi::Sqs, "GetQueueAttributes", || {
                self.sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::All)
                    .send()
            })
            .await?;
        Ok(output
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create_queue(
        &self,
        name: &str,
        attributes: &[(String, String)],
        tags: &Tags,
    ) -> Result<String, AwsError> {
        let mut request = self.sqs.create_queue().queue_name(name);
        for (key, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            request = request.attributes(QueueAttributeName::from(key.as_str()), value);
        }
        for (key, value) in tags {
            request = request.tags(key, value);
        }
        let output = self
            .call(AwsApi::Sqs, "CreateQueue", || request.clone().send())
            .await?;
        Ok(output.queue_url().unwrap_or_default().to_string())
    }

    async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AwsError> {
        let mut request = self.sqs.set_queue_attributes().queue_url(url);
        for (name, value) in attributes {
            request = request.attributes(QueueAttributeName::from(name.as_str()), value);
        }
        self.call(AwsApi::Sqs, "SetQueueAttributes", || request.clone().send())
            .await?;
        Ok(())
    }

    async fn delete_queue(&self, url: &str) -> Result<bool, AwsError> {
        match self
            .call(AwsApi::Sqs, "DeleteQueue", || {
                self.sqs.delete_queue().queue_url(url).send()
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                if e.is_not_found() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Most messages one `ReceiveMessage` returns, and most entries in one batch call.
pub const SQS_BATCH: usize = 10;
/// The longest message retention SQS allows: 14 days.
pub const MAX_RETENTION_SECONDS: i32 = 1_209_600;
/// The shortest message retention SQS allows: one minute.
pub const MIN_RETENTION_SECONDS: i32 = 60;
/// Longest visibility timeout SQS allows.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// What one `ReceiveMessage` call asks for.
#[derive(Clone, Copy, Debug)]
pub struct ReceiveRequest<'a> {
    /// Most messages to return (clamped to 1..=10).
    pub max: usize,
    /// How long to wait for the first message, in seconds (SQS allows at most 20).
    pub wait_seconds: i32,
    /// The visibility timeout of the received messages, in seconds; the queue's own when `None`.
    pub visibility_timeout: Option<i32>,
    /// The system attributes to return with each message.
    pub attributes: &'a [MessageSystemAttributeName],
}

/// Receives one batch of messages, as SQS returns them.
pub async fn receive(
    aws: &AwsClients,
    queue_url: &str,
    request: ReceiveRequest<'_>,
) -> Result<Vec<Message>, AwsError> {
    let output = aws
        .call(AwsApi::Sqs, "ReceiveMessage", || {
            aws.sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(request.max.clamp(1, SQS_BATCH) as i32)
                .set_visibility_timeout(request.visibility_timeout)
                .wait_time_seconds(request.wait_seconds)
                .set_message_system_attribute_names(Some(request.attributes.to_vec()))
                .send()
        })
        .await?;
    Ok(output.messages.unwrap_or_default())
}

/// The value of one of a message's system attributes, when SQS returned it.
pub fn system_attribute<'m>(
    message: &'m Message,
    name: &MessageSystemAttributeName,
) -> Option<&'m str> {
    message
        .attributes()
        .and_then(|a| a.get(name))
        .map(String::as_str)
}

/// An entry of a batch call that SQS refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedEntry {
    /// Position of the entry in the caller's list.
    pub index: usize,
    /// SQS's error code.
    pub code: String,
    /// SQS's explanation, when it gave one.
    pub message: Option<String>,
}

impl RefusedEntry {
    /// `code: message`, or the code alone.
    pub fn reason(&self) -> String {
        match &self.message {
            Some(message) => format!("{}: {message}", self.code),
            None => self.code.clone(),
        }
    }
}

/// What SQS answered to the batch calls over a list of entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchResult {
    /// Entries SQS confirmed.
    pub succeeded: usize,
    /// Entries SQS refused.
    pub refused: Vec<RefusedEntry>,
}

/// Deletes the messages with these receipt handles, ten per call.
pub async fn delete(
    aws: &AwsClients,
    queue_url: &str,
    receipt_handles: &[impl AsRef<str>],
) -> Result<BatchResult, AwsError> {
    in_batches(
        aws,
        "DeleteMessageBatch",
        receipt_handles,
        |id, handle| {
            DeleteMessageBatchRequestEntry::builder()
                .id(id)
                .receipt_handle(handle.as_ref())
                .build()
        },
        |entries| async move {
            let output = aws
                .sqs
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await?;
            Ok((output.successful.len(), output.failed))
        },
    )
    .await
}

/// Sends messages with these bodies, ten per call (the dead-letter redrive). Refused entries
/// are reported by their position in `bodies`.
pub async fn send(
    aws: &AwsClients,
    queue_url: &str,
    bodies: &[impl AsRef<str>],
) -> Result<BatchResult, AwsError> {
    in_batches(
        aws,
        "SendMessageBatch",
        bodies,
        |id, body| {
            SendMessageBatchRequestEntry::builder()
                .id(id)
                .message_body(body.as_ref())
                .build()
        },
        |entries| async move {
            let output = aws
                .sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await?;
            Ok((output.successful.len(), output.failed))
        },
    )
    .await
}

/// Sets the visibility timeout of each message (receipt handle, timeout at most
/// [`MAX_VISIBILITY`]), ten per call.
pub async fn change_visibility(
    aws: &AwsClients,
    queue_url: &str,
    messages: &[(&str, Duration)],
) -> Result<BatchResult, AwsError> {
    in_batches(
        aws,
        "ChangeMessageVisibilityBatch",
        messages,
        |id, (handle, timeout)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(id)
                .receipt_handle(*handle)
                .visibility_timeout(timeout.min(&MAX_VISIBILITY).as_secs() as i32)
                .build()
        },
        |entries| async move {
            let output = aws
                .sqs
                .change_message_visibility_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await?;
            Ok((output.successful.len(), output.failed))
        },
    )
    .await
}

/// One batch call per chunk of ten items, in order, stopping at the first error: `entry` builds
/// an item's request entry under an id (its position in the chunk), `send` makes the call with
/// a chunk's entries and answers how many succeeded and which failed. Each call goes through
/// [`AwsClients::call`] (permit, classification, made again when throttled).
async fn in_batches<'a, T, Entry, Send, Sent, E, R>(
    aws: &AwsClients,
    operation: &'static str,
    items: &'a [T],
    entry: impl Fn(String, &'a T) -> Result<Entry, BuildError>,
    send: Send,
) -> Result<BatchResult, AwsError>
where
    Entry: Clone,
    Send: Fn(Vec<Entry>) -> Sent,
    Sent: Future<Output = Result<(usize, Vec<BatchResultErrorEntry>), SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + std::marker::Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let mut result = BatchResult::default();
    for (number, chunk) in items.chunks(SQS_BATCH).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, item)| entry(i.to_string(), item).map_err(|e| build_error(operation, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let (succeeded, failed) = aws
            .call(AwsApi::Sqs, operation, || send(entries.clone()))
            .await?;
        result.succeeded += succeeded;
        result
            .refused
            .extend(refused_entries(number * SQS_BATCH, chunk.len(), &failed));
    }
    Ok(result)
}

/// The refused entries of one chunk, placed in the caller's list. The ids sent are the entries'
/// positions in the chunk; a failure naming any other id is not one of ours and is skipped.
fn refused_entries(
    offset: usize,
    chunk_len: usize,
    failed: &[BatchResultErrorEntry],
) -> Vec<RefusedEntry> {
    failed
        .iter()
        .filter_map(move |f| {
            let i = f.id().parse::<usize>().ok().filter(|&i| i < chunk_len)?;
            Some(RefusedEntry {
                index: offset + i,
                code: f.code().to_string(),
                message: f.message().map(str::to_string),
            })
        })
        .collect()
}

fn build_error(operation: &str, error: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        AwsErrorKind::InvalidRequest,
        operation,
        "BuildError",
        error.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::aws::throttling_endpoint::{single_attempt_clients, throttling_endpoint};

    /// Answers every message call: an empty receive, no batch entries confirmed or refused.
    const EMPTY_ANSWER: &str = r#"{"Successful":[],"Failed":[]}"#;

    /// A consumer's message call that AWS throttled past the SDK's retries is made again by
    /// our limiter (as the controller's calls are), not failed.
    #[tokio::test]
    async fn message_calls_throttled_past_the_sdks_retries_are_made_again() {
        let (endpoint, served) = throttling_endpoint(1, EMPTY_ANSWER).await;
        let aws = single_attempt_clients(&endpoint).await;
        let queue = format!("{endpoint}/1/q");
        let request = ReceiveRequest {
            max: 10,
            wait_seconds: 0,
            visibility_timeout: None,
            attributes: &[],
        };
        let received = receive(&aws, &queue, request).await;
        assert_eq!(received.expect("received after the throttle").len(), 0);
        assert_eq!(
            served.load(Ordering::SeqCst),
            2,
            "one throttled, one answered"
        );

        for call in ["delete", "send", "change visibility"] {
            let (endpoint, served) = throttling_endpoint(1, EMPTY_ANSWER).await;
            let aws = single_attempt_clients(&endpoint).await;
            let queue = format!("{endpoint}/1/q");
            let result = match call {
                "delete" => delete(&aws, &queue, &["handle"]).await,
                "send" => send(&aws, &queue, &["body"]).await,
                _ => change_visibility(&aws, &queue, &[("handle", Duration::from_secs(5))]).await,
            };
            assert_eq!(
                result.unwrap_or_else(|e| panic!("{call}: {e}")),
                BatchResult::default(),
                "{call}"
            );
            assert_eq!(served.load(Ordering::SeqCst), 2, "{call}");
        }
    }

    fn failure(id: &str, code: &str, message: Option<&str>) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .sender_fault(true)
            .code(code)
            .set_message(message.map(str::to_string))
            .build()
            .unwrap()
    }

    #[test]
    fn refused_entries_are_placed_in_the_callers_list_and_foreign_ids_skipped() {
        let failed = [
            failure("3", "ReceiptHandleIsInvalid", Some("expired")),
            failure("12", "X", None),
            failure("not-a-number", "Y", None),
            failure("0", "InternalError", None),
        ];
        let refused = refused_entries(20, 10, &failed);
        assert_eq!(
            refused.iter().map(|r| r.index).collect::<Vec<_>>(),
            [23, 20]
        );
        assert_eq!(refused[0].reason(), "ReceiptHandleIsInvalid: expired");
        assert_eq!(refused[1].reason(), "InternalError");
    }
}
