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

/// Sends one email; returns SES's message id. The SDK retries throttling and transient errors.
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
    aws.acquire(AwsApi::Ses).await;
    let output = request
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SendEmail", e))?;
    Ok(output.message_id().map(str::to_string))
}
