//! Decoders from SQS message bodies to [`Alert`]s.
//!
//! Decoding never fails: a body that is not JSON, JSON of an unknown shape or a truncated event
//! still becomes a generic `Message` alert carrying the text, because a dropped alert is worse
//! than a plain one. Fields are read leniently from `serde_json::Value` rather than through strict
//! structs, so one odd field (a number where a string was expected) does not lose the rest.

mod cloudwatch;
mod ecs;
mod emr;
mod eventbridge;
mod message;
mod util;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::Alert;
use util::{parse_time, str_field};

/// The SNS fields that matter once the envelope is unwrapped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnsEnvelope {
    /// `MessageId`.
    pub message_id: Option<String>,
    /// `TopicArn`.
    pub topic_arn: Option<String>,
    /// `Subject`, when the publisher set one.
    pub subject: Option<String>,
    /// `Timestamp`: when SNS accepted the message.
    pub timestamp: Option<DateTime<Utc>>,
    /// `MessageAttributes`, by name: the value of `String` and `Number` attributes, the JSON
    /// text of `String.Array` ones; `Binary` ones are left out (nothing to show). At most
    /// [`MAX_ATTRIBUTES`], each value cut to [`MAX_ATTRIBUTE_CHARS`].
    pub attributes: BTreeMap<String, String>,
}

/// SNS allows 10 message attributes; more can only come from a forged body.
pub const MAX_ATTRIBUTES: usize = 10;

/// Longest attribute value kept: enough for any id, short enough for a Slack field.
pub const MAX_ATTRIBUTE_CHARS: usize = 256;

/// Decodes one SQS message body into an alert. Never fails (see the module documentation).
///
/// The body is either an SNS envelope (`{"Type":"Notification","Message":...}`) or, with raw
/// message delivery, the published message itself. With raw delivery the topic is unknown here;
/// a consumer that knows it may set `source_topic_arn` afterwards.
///
/// A notification forwarded from one topic to another (a topic subscribed to a queue that feeds
/// a function re-publishing it, or an SNS-to-SNS bridge) arrives as an envelope inside an
/// envelope: envelopes are unwrapped down to the published message, up to [`MAX_NESTED_ENVELOPES`]
/// deep, and the innermost envelope (the topic the event was published to) is kept.
pub fn decode_sqs_body(body: &str) -> Alert {
    let (mut envelope, mut message) = match unwrap_sns_envelope(body) {
        Some((envelope, message)) => (envelope, message),
        None => (SnsEnvelope::default(), body.to_string()),
    };
    for _ in 1..MAX_NESTED_ENVELOPES {
        let Some((inner, inner_message)) = unwrap_sns_envelope(&message) else {
            break;
        };
        envelope = SnsEnvelope {
            // The outer message id is what SNS delivered to us and de-duplicates redeliveries.
            message_id: envelope.message_id.or(inner.message_id),
            topic_arn: inner.topic_arn.or(envelope.topic_arn),
            subject: inner.subject.or(envelope.subject),
            timestamp: inner.timestamp.or(envelope.timestamp),
            // The publisher's attributes first; a forwarder's add only what they lack.
            attributes: {
                let mut attributes = envelope.attributes;
                attributes.extend(inner.attributes);
                attributes
            },
        };
        message = inner_message;
    }
    decode_message(&message, &envelope)
}

/// Most SNS envelopes unwrapped from one body; deeper nesting is decoded as text.
pub const MAX_NESTED_ENVELOPES: usize = 4;

/// Splits an SNS envelope into its metadata and its `Message`; `None` when `body` is not one.
pub fn unwrap_sns_envelope(body: &str) -> Option<(SnsEnvelope, String)> {
    let value: Value = serde_json::from_str(body.trim_start_matches('\u{feff}')).ok()?;
    let object = value.as_object()?;
    if object.get("Type").and_then(Value::as_str) != Some("Notification") {
        return None;
    }
    let message = object.get("Message")?.as_str()?.to_string();
    let envelope = SnsEnvelope {
        message_id: str_field(&value, "MessageId").map(str::to_string),
        topic_arn: str_field(&value, "TopicArn").map(str::to_string),
        subject: str_field(&value, "Subject").map(str::to_string),
        timestamp: str_field(&value, "Timestamp").and_then(parse_time),
        attributes: message_attributes(object.get("MessageAttributes")),
    };
    Some((envelope, message))
}

/// The envelope's `MessageAttributes` (see [`SnsEnvelope::attributes`]).
fn message_attributes(value: Option<&Value>) -> BTreeMap<String, String> {
    let Some(attributes) = value.and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    attributes
        .iter()
        .filter_map(|(name, attribute)| {
            let kind = attribute.get("Type").and_then(Value::as_str)?;
            if kind.starts_with("Binary") {
                return None;
            }
            let value = attribute.get("Value").and_then(Value::as_str)?;
            let name: String = name.chars().take(MAX_ATTRIBUTE_CHARS).collect();
            Some((name, value.chars().take(MAX_ATTRIBUTE_CHARS).collect()))
        })
        .take(MAX_ATTRIBUTES)
        .collect()
}

/// Decodes a published message (already out of its envelope) into an alert.
pub fn decode_message(message: &str, envelope: &SnsEnvelope) -> Alert {
    let parsed = serde_json::from_str::<Value>(message.trim_start_matches('\u{feff}')).ok();
    let mut alert = match parsed.as_ref() {
        Some(value) if cloudwatch::is_alarm_notification(value) => cloudwatch::decode(value),
        Some(value) if eventbridge::is_event(value) => eventbridge::decode(value),
        _ => message::decode(message, envelope),
    };
    alert.raw = message.to_string();
    alert.source_topic_arn = envelope.topic_arn.clone();
    alert.sns_message_id = envelope.message_id.clone();
    alert.attributes = envelope.attributes.clone();
    if alert.time.is_none() {
        alert.time = envelope.timestamp;
    }
    alert
}

#[cfg(test)]
mod tests;
