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
    let title = if !subject.trim().is_empty() {
        first_line(subject, TITLE_CHARS)
    } else if !message.trim().is_empty() {
        first_line(message, TITLE_CHARS)
    } else if !topic.is_empty() {
        format!(
            "Empty message on {}",
            last_segment(topic.rsplit(':').next().unwrap_or(topic))
        )
    } else {
        "Empty message".to_string()
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
