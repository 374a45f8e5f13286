//! Plain text and JSON of unknown shape: a generic `Message` alert that carries the text.

use super::SnsEnvelope;
use super::util::{first_line, last_segment};
use crate::alert::model::{Alert, Fingerprint};
use crate::resources::{AlertKind, AlertState};

/// Longest title taken from a message's first line.
const TITLE_CHARS: usize = 140;

pub(super) fn decode(message: &str, envelope: &SnsEnvelope) -> Alert {
    let topic = envelope.topic_arn.as_deref().unwrap_or("");
    let subject = envelope.subject.as_deref().unwrap_or("");
    let fingerprint = Fingerprint::of(AlertKind::Message, &[topic, subject, message]);
    let topic_name = last_segment(topic.rsplit(':').next().unwrap_or(topic));
    // A message is titled by what its publisher called it (the subject), else by where it came
    // from (the topic); its first line only when it reads as a sentence. JSON of an unknown
    // shape (`null`, `{...`) says nothing as a title.
    let body = message.trim();
    let readable_body =
        !body.is_empty() && serde_json::from_str::<serde_json::Value>(body).is_err();
    let title = if !subject.trim().is_empty() {
        first_line(subject, TITLE_CHARS)
    } else if readable_body {
        first_line(message, TITLE_CHARS)
    } else if !topic_name.is_empty() {
        if body.is_empty() {
            format!("Empty message on {topic_name}")
        } else {
            format!("Message on {topic_name}")
        }
    } else if body.is_empty() {
        "Empty message".to_string()
    } else {
        "Message".to_string()
    };
    // A plain message was published for someone to read: treat it as firing so that routes
    // selecting firing alerts do not drop it.
    let mut alert = Alert::new(AlertKind::Message, AlertState::Firing, fingerprint, title);
    alert.summary = message.trim().to_string();
    if !topic.is_empty() {
        alert.push_detail("Topic", topic.rsplit(':').next().unwrap_or(topic));
        if let Some(arn) = super::util::parse_arn(topic) {
            alert.account = Some(arn.account.to_string()).filter(|a| !a.is_empty());
            alert.region = Some(arn.region.to_string()).filter(|r| !r.is_empty());
        }
    }
    alert
}
