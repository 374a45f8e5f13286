//! Talking to Slack over HTTP: incoming webhooks, `chat.postMessage`, `chat.update`,
//! `response_url` replies and user-group lookups, with Slack's rate limits honoured.
//!
//! A 429 waits for `Retry-After`; 5xx answers and timeouts are retried with exponential backoff;
//! any other refusal (bad token, unknown channel, invalid payload) is returned at once as
//! permanent, because retrying cannot fix it. Posts to one channel are paced to at most one per
//! interval (Slack allows about one message per second per channel).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::render::SlackMessage;

/// Web API methods that take form fields rather than a JSON body.
const FORM_METHODS: &[&str] = &["usergroups.users.list", "chat.getPermalink"];

/// Where Slack's incoming webhooks live.
const SLACK_WEBHOOK_ORIGIN: &str = "https://hooks.slack.com/";

/// Where a route's messages go.
#[derive(Clone, PartialEq, Eq)]
pub enum SlackTarget {
    /// An incoming webhook: posts only, no updates.
    Webhook {
        /// The webhook URL (a secret).
        url: String,
    },
    /// A bot token and channel: posts return `(channel, ts)` so messages can be updated.
    Bot {
        /// The bot token (a secret).
        token: String,
        /// Channel ID or name.
        channel: String,
    },
}

impl std::fmt::Debug for SlackTarget {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlackTarget::Webhook { .. } => f.write_str("Webhook(..)"),
            SlackTarget::Bot { channel, .. } => write!(f, "Bot(channel={channel})"),
        }
    }
}

impl SlackTarget {
    /// The key posts are paced by: the channel, or the webhook (which is bound to one channel).
    fn pacing_key(&self) -> String {
        match self {
            SlackTarget::Webhook { url } => {
                format!("webhook:{}", crate::names::short_hash(url))
            }
            SlackTarget::Bot { channel, .. } => format!("channel:{channel}"),
        }
    }
}

/// A message Slack accepted through the Web API, addressable for `chat.update`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PostedMessage {
    /// Channel ID.
    pub channel: String,
    /// Message timestamp (its id).
    pub ts: String,
}

/// Why Slack did not take a request.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack refused the request for a reason retrying cannot fix.
    #[error("Slack refused {method}: {error}")]
    Rejected {
        /// API method or `webhook`.
        method: String,
        /// Slack's error code or the HTTP status.
        error: String,
    },
    /// Slack kept failing (5xx, timeouts, rate limits) through every attempt.
    #[error("Slack {method} still failing after {attempts} attempts: {last}")]
    Exhausted {
        /// API method or `webhook`.
        method: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

impl SlackError {
    /// Whether a later attempt may succeed (the message should stay queued).
    pub fn is_transient(&self) -> bool {
        matches!(self, SlackError::Exhausted { .. })
    }
}

/// Retry and pacing settings.
#[derive(Clone, Debug)]
pub struct SlackSettings {
    /// Base URL of the Web API, e.g. `https://slack.com/api/`.
    pub api_base: String,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff after a 5xx or timeout; doubles each time.
    pub initial_backoff: Duration,
    /// Longest backoff, and longest `Retry-After` honoured in one wait.
    pub max_backoff: Duration,
    /// Minimum interval between two posts to one channel.
    pub min_post_interval: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Replaces the `https://hooks.slack.com/` prefix of incoming-webhook URLs (the local mode
    /// sends webhooks to a stand-in); `None` posts to the URL as it is.
    pub webhook_base: Option<String>,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            api_base: "https://slack.com/api/".into(),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            min_post_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            webhook_base: None,
        }
    }
}

/// A Slack HTTP client shared by every task of a process.
pub struct SlackClient {
    http: reqwest::Client,
    settings: SlackSettings,
    next_post: Mutex<HashMap<String, Instant>>,
}

enum Attempt<T> {
    Done(T),
    Retry {
        wait: Option<Duration>,
        reason: String,
    },
}

impl SlackClient {
    /// A client with the given settings.
    pub fn new(settings: SlackSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .user_agent(concat!("alertops/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with static settings");
        SlackClient {
            http,
            settings,
            next_post: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &SlackSettings {
        &self.settings
    }

    fn api_url(&self, method: &str) -> String {
        format!("{}/{method}", self.settings.api_base.trim_end_matches('/'))
    }

    fn webhook_url(&self, url: &str) -> String {
        match (
            &self.settings.webhook_base,
            url.strip_prefix(SLACK_WEBHOOK_ORIGIN),
        ) {
            (Some(base), Some(path)) => format!("{}/{path}", base.trim_end_matches('/')),
            _ => url.to_string(),
        }
    }

    /// Waits until this channel may receive another post, and reserves the slot.
    async fn pace(&self, key: &str) {
        let wait_until = {
            let mut next = self.next_post.lock().await;
            let now = Instant::now();
            let slot = next.get(key).copied().filter(|t| *t > now).unwrap_or(now);
            next.insert(key.to_string(), slot + self.settings.min_post_interval);
            slot
        };
        tokio::time::sleep_until(wait_until).await;
    }

    /// Posts a message. Returns `(channel, ts)` for bot targets, `None` for webhooks.
    pub async fn post(
        &self,
        target: &SlackTarget,
        message: &SlackMessage,
    ) -> Result<Option<PostedMessage>, SlackError> {
        self.pace(&target.pacing_key()).await;
        match target {
            SlackTarget::Webhook { url } => {
                let body = json!({"text": message.text, "blocks": message.blocks});
                let url = self.webhook_url(url);
                self.with_retries("webhook", || self.webhook_attempt(&url, &body))
                    .await?;
                Ok(None)
            }
            SlackTarget::Bot { token, channel } => {
                let body = json!({
                    "channel": channel,
                    "text": message.text,
                    "blocks": message.blocks,
                    "unfurl_links": false,
                });
                let response = self
                    .with_retries("chat.postMessage", || {
                        self.api_attempt("chat.postMessage", token, &body)
                    })
                    .await?;
                Ok(Some(PostedMessage {
                    channel: response["channel"].as_str().unwrap_or(channel).to_string(),
                    ts: response["ts"].as_str().unwrap_or_default().to_string(),
                }))
            }
        }
    }

    /// Replaces a message posted earlier with a bot token.
    pub async fn update(
        &self,
        token: &str,
        posted: &PostedMessage,
        message: &SlackMessage,
    ) -> Result<(), SlackError> {
        let body = json!({
            "channel": posted.channel,
            "ts": posted.ts,
            "text": message.text,
            "blocks": message.blocks,
        });
        self.with_retries("chat.update", || {
            self.api_attempt("chat.update", token, &body)
        })
        .await
        .map(|_| ())
    }

    /// Posts a reply in the thread of a message (e.g. the new cluster id of a retry).
    pub async fn reply_in_thread(
        &self,
        token: &str,
        posted: &PostedMessage,
        text: &str,
    ) -> Result<PostedMessage, SlackError> {
        self.pace(&format!("channel:{}", posted.channel)).await;
        let body = json!({"channel": posted.channel, "thread_ts": posted.ts, "text": text});
        let response = self
            .with_retries("chat.postMessage", || {
                self.api_attempt("chat.postMessage", token, &body)
            })
            .await?;
        Ok(PostedMessage {
            channel: posted.channel.clone(),
            ts: response["ts"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// Posts a reply in the thread of a message that is also shown in the channel
    /// (`reply_broadcast`), so that it notifies like a post: reminders of an alert still firing.
    pub async fn broadcast_in_thread(
        &self,
        token: &str,
        posted: &PostedMessage,
        text: &str,
    ) -> Result<PostedMessage, SlackError> {
        self.pace(&format!("channel:{}", posted.channel)).await;
        let body = json!({
            "channel": posted.channel,
            "thread_ts": posted.ts,
            "reply_broadcast": true,
            "text": text,
        });
        let response = self
            .with_retries("chat.postMessage", || {
                self.api_attempt("chat.postMessage", token, &body)
            })
            .await?;
        Ok(PostedMessage {
            channel: posted.channel.clone(),
            ts: response["ts"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// The permalink of a message (`chat.getPermalink`), for links back to it.
    pub async fn permalink(
        &self,
        token: &str,
        posted: &PostedMessage,
    ) -> Result<String, SlackError> {
        let body = json!({"channel": posted.channel, "message_ts": posted.ts});
        let response = self
            .with_retries("chat.getPermalink", || {
                self.api_attempt("chat.getPermalink", token, &body)
            })
            .await?;
        response["permalink"]
            .as_str()
            .filter(|p| p.starts_with("https://"))
            .map(str::to_string)
            .ok_or_else(|| SlackError::Rejected {
                method: "chat.getPermalink".into(),
                error: "no https permalink in the answer".into(),
            })
    }

    /// Answers an interaction through its `response_url` (valid for 30 minutes, 5 uses).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackError> {
        self.with_retries("response_url", || self.webhook_attempt(response_url, body))
            .await
    }

    /// Members of a Slack user group (`usergroups.users.list`), for retry allow-lists.
    pub async fn user_group_members(
        &self,
        token: &str,
        group: &str,
    ) -> Result<Vec<String>, SlackError> {
        let body = json!({"usergroup": group});
        let response = self
            .with_retries("usergroups.users.list", || {
                self.api_attempt("usergroups.users.list", token, &body)
            })
            .await?;
        Ok(response["users"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn with_retries<T, F, Fut>(&self, method: &str, mut attempt: F) -> Result<T, SlackError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Attempt<T>, SlackError>>,
    {
        let mut backoff = self.settings.initial_backoff;
        let mut last = String::new();
        for n in 1..=self.settings.max_attempts {
            match attempt().await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Retry { wait, reason } => {
                    tracing::warn!(method, attempt = n, reason = %reason, "Slack call failed; retrying");
                    last = reason;
                    if n == self.settings.max_attempts {
                        break;
                    }
                    let delay = wait.unwrap_or(backoff).min(self.settings.max_backoff);
                    backoff = (backoff * 2).min(self.settings.max_backoff);
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Err(SlackError::Exhausted {
            method: method.to_string(),
            attempts: self.settings.max_attempts,
            last,
        })
    }

    /// The one place a request to Slack leaves the process: builds it and executes it on the
    /// shared HTTP client. Its error may carry the URL (a webhook's secret); callers strip it.
    async fn round_trip(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.http.execute(request.build()?).await
    }

    async fn webhook_attempt(&self, url: &str, body: &Value) -> Result<Attempt<()>, SlackError> {
        let response = match self.round_trip(self.http.post(url).json(body)).await {
            Ok(r) => r,
            Err(e) => return Ok(transport_failure(e)),
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let text = response.text().await.unwrap_or_default();
        match classify(status) {
            Outcome::Success => Ok(Attempt::Done(())),
            Outcome::RateLimited => Ok(Attempt::Retry {
                wait: retry_after.or(Some(Duration::from_secs(1))),
                reason: format!("HTTP 429 {text}"),
            }),
            Outcome::ServerError => Ok(Attempt::Retry {
                wait: None,
                reason: format!("HTTP {status} {text}"),
            }),
            Outcome::Refused => Err(SlackError::Rejected {
                method: "webhook".into(),
                error: format!("HTTP {status}: {}", text.trim()),
            }),
        }
    }

    async fn api_attempt(
        &self,
        method: &str,
        token: &str,
        body: &Value,
    ) -> Result<Attempt<Value>, SlackError> {
        let request = self.http.post(self.api_url(method)).bearer_auth(token);
        // Slack's read methods do not accept JSON bodies, only form fields.
        let request = if FORM_METHODS.contains(&method) {
            let fields: Vec<(&str, &str)> = body
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect();
            request.form(&fields)
        } else {
            request.json(body)
        };
        let response = match self.round_trip(request).await {
            Ok(r) => r,
            Err(e) => return Ok(transport_failure(e)),
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        match classify(status) {
            Outcome::RateLimited => {
                return Ok(Attempt::Retry {
                    wait: retry_after.or(Some(Duration::from_secs(1))),
                    reason: "HTTP 429".into(),
                });
            }
            Outcome::ServerError => {
                return Ok(Attempt::Retry {
                    wait: None,
                    reason: format!("HTTP {status}"),
                });
            }
            Outcome::Refused => {
                return Err(SlackError::Rejected {
                    method: method.into(),
                    error: format!("HTTP {status}"),
                });
            }
            Outcome::Success => {}
        }
        let value: Value = match response.json().await {
            Ok(v) => v,
            Err(e) => {
                return Ok(Attempt::Retry {
                    wait: None,
                    reason: format!("unreadable answer: {}", e.without_url()),
                });
            }
        };
        if value["ok"].as_bool() == Some(true) {
            return Ok(Attempt::Done(value));
        }
        let error = value["error"]
            .as_str()
            .unwrap_or("unknown_error")
            .to_string();
        match error.as_str() {
            "ratelimited" | "rate_limited" => Ok(Attempt::Retry {
                wait: retry_after.or(Some(Duration::from_secs(1))),
                reason: error,
            }),
            "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                Ok(Attempt::Retry {
                    wait: None,
                    reason: error,
                })
            }
            _ => Err(SlackError::Rejected {
                method: method.into(),
                error,
            }),
        }
    }
}

enum Outcome {
    Success,
    RateLimited,
    ServerError,
    Refused,
}

fn classify(status: StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Success
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Outcome::RateLimited
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Outcome::ServerError
    } else {
        Outcome::Refused
    }
}

/// A failure before Slack answered. reqwest names the URL in its errors, and a webhook's or
/// response_url's path is the credential: it is stripped before the error is kept or logged.
fn transport_failure<T>(error: reqwest::Error) -> Attempt<T> {
    Attempt::Retry {
        wait: None,
        reason: format!("transport: {}", error.without_url()),
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let bot = SlackTarget::Bot {
            token: "xoxb-secret".into(),
            channel: "C1".into(),
        };
        let hook = SlackTarget::Webhook {
            url: "https://hooks.slack.com/services/T/B/secret".into(),
        };
        assert!(!format!("{bot:?}{hook:?}").contains("secret"));
    }

    #[test]
    fn webhooks_can_be_redirected_to_a_stand_in() {
        let mut settings = SlackSettings::default();
        let url = "https://hooks.slack.com/services/T0/B0/x";
        assert_eq!(SlackClient::new(settings.clone()).webhook_url(url), url);
        settings.webhook_base = Some("http://127.0.0.1:9/hooks/".into());
        let client = SlackClient::new(settings);
        assert_eq!(
            client.webhook_url(url),
            "http://127.0.0.1:9/hooks/services/T0/B0/x"
        );
        assert_eq!(
            client.webhook_url("https://example.com/x"),
            "https://example.com/x"
        );
    }

    #[test]
    fn statuses_are_classified_for_retry() {
        assert!(matches!(classify(StatusCode::OK), Outcome::Success));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS),
            Outcome::RateLimited
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY),
            Outcome::ServerError
        ));
        assert!(matches!(classify(StatusCode::NOT_FOUND), Outcome::Refused));
    }

    #[tokio::test(start_paused = true)]
    async fn posts_to_one_channel_are_paced() {
        let client = SlackClient::new(SlackSettings::default());
        let start = Instant::now();
        for _ in 0..3 {
            client.pace("channel:C1").await;
        }
        // Three posts: now, +1 s, +2 s.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let other = Instant::now();
        client.pace("channel:C2").await;
        assert_eq!(
            other.elapsed(),
            Duration::ZERO,
            "other channels are not held up"
        );
    }

    /// Failing webhook posts and response_url answers, logged as the workloads log them: the
    /// secret path of the URL appears in no log line and no error.
    #[tokio::test]
    async fn failing_posts_never_log_the_webhook_url() {
        use crate::telemetry::logging::{CapturedLogs, subscriber};
        const SECRET: &str = "XyZsecretWebhookPart123";
        // A port nothing listens on: every attempt is a transport failure, whose reqwest error
        // names the URL.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let logs = CapturedLogs::default();
        let _guard = tracing::subscriber::set_default(subscriber(
            crate::telemetry::logging::LogFormat::Json,
            false,
            logs.clone(),
        ));
        let client = SlackClient::new(SlackSettings {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            min_post_interval: Duration::ZERO,
            webhook_base: Some(format!("http://127.0.0.1:{port}/")),
            ..SlackSettings::default()
        });
        let target = SlackTarget::Webhook {
            url: format!("https://hooks.slack.com/services/T0/B0/{SECRET}"),
        };
        let message = SlackMessage {
            text: "x".into(),
            blocks: Vec::new(),
        };
        let error = client.post(&target, &message).await.unwrap_err();
        tracing::warn!(%error, "delivery failed");
        let response_url = format!("http://127.0.0.1:{port}/actions/T0/1/{SECRET}");
        let error = client
            .respond(&response_url, &json!({"text": "x"}))
            .await
            .unwrap_err();
        tracing::warn!(%error, "answer failed");
        let written = logs.contents();
        assert!(
            written.contains("transport"),
            "the failures were logged: {written}"
        );
        assert!(!written.contains(SECRET), "{written}");
        assert!(!written.contains("/services/T0"), "{written}");
    }
}
