//! A stand-in AWS endpoint for unit tests that throttles its first requests, because the
//! emulator never throttles. It speaks the JSON protocols (SQS's JSON 1.0, EMR's JSON 1.1,
//! SES v2's REST-JSON): the SDKs read the error code from `x-amzn-ErrorType`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::BehaviorVersion;
use aws_sdk_sqs::config::{Credentials, Region};
use aws_smithy_types::retry::RetryConfig;

use super::{AwsClients, AwsSettings, RateClock, RateLimits};

/// An endpoint that answers `ThrottlingException` to its first `throttled` requests and then
/// `200` with `body`. Returns its URL and the count of requests served.
pub(crate) async fn throttling_endpoint(
    throttled: usize,
    body: &'static str,
) -> (String, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let response = http::Response::builder().header("content-type", "application/json");
            let response = if n < throttled {
                response
                    .status(400)
                    .header("x-amzn-ErrorType", "ThrottlingException")
                    .header("x-amzn-query-error", "ThrottlingException;Sender")
                    .body(axum::body::Body::from(
                        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                    ))
            } else {
                response.status(200).body(axum::body::Body::from(body))
            };
            response.expect("a valid response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, served)
}

/// Clients for `endpoint` whose SDK makes one attempt per call (so a throttled attempt is
/// "throttled past the SDK's retries"), on a fake rate clock so the limiter's waits are instant.
pub(crate) async fn single_attempt_clients(endpoint: &str) -> AwsClients {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let settings = AwsSettings {
        max_attempts: 1.try_into().expect("non-zero"),
        ..AwsSettings::default()
    };
    let limits = RateLimits::with_clock(&settings, RateClock::fake());
    AwsClients::from_sdk_config(&config, settings).with_rate_limits(limits)
}
