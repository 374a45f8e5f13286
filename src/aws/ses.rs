//! SES v2 in our own terms: one simple email (subject, HTML and text) to a list of recipients.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::{AwsApi, AwsClients, AwsError, AwsErrorKind};

/// One email as SES sends it.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingEmail<'a> {
    /// Verified sender address.
    pub from: &'a str,
    /// Recipients.
    pub to: &'a [String],
    /// Configuration set, if any.
    pub configuration_set: Option<&'a str>,
    /// Subject line.
    pub subject: &'a str,
    /// HTML body.
    pub html: &'a str,
    /// Plain-text body.
    pub text: &'a str,
}

/// Sends one email; returns SES's message id. The SDK retries throttling and transient errors;
/// [`AwsClients::call`] sends it again when SES still throttles after those retries.
pub async fn send_email(
    aws: &AwsClients,
    email: OutgoingEmail<'_>,
) -> Result<Option<String>, AwsError> {
    let content = |data: &str| {
        Content::builder()
            .data(data)
            .charset("UTF-8")
            .build()
            .map_err(|e| {
                AwsError::new(
                    AwsErrorKind::InvalidRequest,
                    "SendEmail",
                    "BuildError",
                    e.to_string(),
                )
            })
    };
    let simple = Message::builder()
        .subject(content(email.subject)?)
        .body(
            Body::builder()
                .html(content(email.html)?)
                .text(content(email.text)?)
                .build(),
        )
        .build();
    let mut request = aws
        .ses
        .send_email()
        .from_email_address(email.from)
        .destination(
            Destination::builder()
                .set_to_addresses(Some(email.to.to_vec()))
                .build(),
        )
        .content(EmailContent::builder().simple(simple).build());
    if let Some(set) = email.configuration_set.filter(|s| !s.is_empty()) {
        request = request.configuration_set_name(set);
    }
    let output = aws
        .call(AwsApi::Ses, "SendEmail", || request.clone().send())
        .await?;
    Ok(output.message_id().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::aws::throttling_endpoint::{single_attempt_clients, throttling_endpoint};

    /// A digest's email throttled past the SDK's retries (SES's sending rate) is sent again
    /// after our limiter's wait, not failed.
    #[tokio::test]
    async fn an_email_throttled_past_the_sdks_retries_is_sent_again() {
        let (endpoint, served) = throttling_endpoint(1, r#"{"MessageId":"m-1"}"#).await;
        let aws = single_attempt_clients(&endpoint).await;
        let to = ["b@example.com".to_string()];
        let email = OutgoingEmail {
            from: "a@example.com",
            to: &to,
            configuration_set: None,
            subject: "s",
            html: "<p>h</p>",
            text: "t",
        };
        let sent = send_email(&aws, email).await;
        assert_eq!(
            sent.expect("sent after the throttle").as_deref(),
            Some("m-1")
        );
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }
}
