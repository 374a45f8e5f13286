//! Delivery of an [`EmailMessage`] through SES (`crate::aws::ses`), after checking what SES would
//! refuse or what could smuggle headers (a multi-line subject).

use super::EmailMessage;
use crate::aws::ses::{self, OutgoingEmail};
use crate::aws::{AwsClients, AwsError};
use crate::resources::EmailDestination;

/// SES accepts at most 50 recipients per message.
const MAX_RECIPIENTS: usize = 50;

/// What SES answered for an accepted email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentEmail {
    /// SES message id.
    pub message_id: Option<String>,
}

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The email or its destination is unusable (no recipient, no sender...); fix the spec.
    #[error("invalid email: {0}")]
    Invalid(String),
    /// SES refused or failed the call (an unverified sender is terminal, throttling is not).
    #[error(transparent)]
    Ses(#[from] AwsError),
}

impl EmailError {
    /// Whether retrying later without a change may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            EmailError::Invalid(_) => false,
            EmailError::Ses(e) => !e.is_terminal(),
        }
    }
}

/// Sends `message` from `destination.from` to `destination.to`, through the destination's
/// configuration set when it names one. The SDK retries throttling and transient errors.
pub async fn send_email(
    aws: &AwsClients,
    destination: &EmailDestination,
    message: &EmailMessage,
) -> Result<SentEmail, EmailError> {
    validate(destination, message)?;
    let message_id = ses::send_email(
        aws,
        OutgoingEmail {
            from: &destination.from,
            to: &destination.to,
            configuration_set: destination.configuration_set.as_deref(),
            subject: &message.subject,
            html: &message.html,
            text: &message.text,
        },
    )
    .await?;
    Ok(SentEmail { message_id })
}

fn validate(destination: &EmailDestination, message: &EmailMessage) -> Result<(), EmailError> {
    if destination.from.trim().is_empty() {
        return Err(EmailError::Invalid("the sender address is empty".into()));
    }
    if destination.to.iter().all(|to| to.trim().is_empty()) {
        return Err(EmailError::Invalid("there is no recipient".into()));
    }
    if destination.to.len() > MAX_RECIPIENTS {
        return Err(EmailError::Invalid(format!(
            "{} recipients; SES accepts at most {MAX_RECIPIENTS}",
            destination.to.len()
        )));
    }
    if message.subject.contains(['\r', '\n']) {
        return Err(EmailError::Invalid(
            "the subject spans several lines".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(to: &[&str]) -> EmailDestination {
        EmailDestination {
            from: "alerts@example.com".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            subject_prefix: None,
            configuration_set: None,
        }
    }

    fn message(subject: &str) -> EmailMessage {
        EmailMessage {
            subject: subject.into(),
            html: "<p>x</p>".into(),
            text: "x".into(),
        }
    }

    #[test]
    fn recipients_and_subject_are_checked_before_calling_ses() {
        assert!(validate(&destination(&["a@example.com"]), &message("s")).is_ok());
        let none = validate(&destination(&[]), &message("s")).unwrap_err();
        assert_eq!(none.to_string(), "invalid email: there is no recipient");
        assert!(!none.is_transient());
        let many: Vec<String> = (0..51).map(|i| format!("u{i}@example.com")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(validate(&destination(&many), &message("s")).is_err());
        assert!(validate(&destination(&["a@example.com"]), &message("a\nBcc: x")).is_err());
    }
}
