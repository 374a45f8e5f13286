//! A Slack stand-in for tests: an HTTP server inside the test process that records every request
//! (Web API methods, incoming webhooks, response URLs) and answers like Slack, or with scripted
//! answers (429 with `Retry-After`, 500) to test rate limits and retries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One request Slack received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Path, e.g. `/api/chat.postMessage` or `/webhook/data-eng`.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The JSON body (form bodies are decoded into an object).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The HTTP status it was answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// The Web API method, for `/api/<method>` paths.
    pub fn method(&self) -> Option<&str> {
        self.path.strip_prefix("/api/")
    }

    /// All text of the message (fallback text and every block), for assertions on content.
    pub fn all_text(&self) -> String {
        let mut out = self.body["text"].as_str().unwrap_or_default().to_string();
        out.push('\n');
        out.push_str(&self.body["blocks"].to_string());
        out
    }
}

/// A scripted answer, used before the default Slack-like answers.
#[derive(Clone, Debug)]
pub struct Scripted {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` seconds, for 429.
    pub retry_after: Option<u64>,
    /// Body.
    pub body: String,
}

impl Scripted {
    /// HTTP 429 with `Retry-After`.
    pub fn rate_limited(seconds: u64) -> Self {
        Scripted {
            status: 429,
            retry_after: Some(seconds),
            body: "rate_limited".into(),
        }
    }

    /// An HTTP error status.
    pub fn status(status: u16) -> Self {
        Scripted {
            status,
            retry_after: None,
            body: "error".into(),
        }
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    script: VecDeque<Scripted>,
    next_ts: u64,
    group_members: Vec<(String, Vec<String>)>,
    /// While set, every request is answered with this status (an outage).
    outage: Option<u16>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct SlackRecorder {
    base: String,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl SlackRecorder {
    /// Starts a recorder on a free loopback port.
    pub async fn start() -> SlackRecorder {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let changed = Arc::new(Notify::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(handle)
            .with_state((inner.clone(), changed.clone()));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("recorder serves");
        });
        SlackRecorder {
            base,
            inner,
            changed,
        }
    }

    /// Base URL of the Web API (pass as the Slack API base of the code under test).
    pub fn api_base(&self) -> String {
        format!("{}/api/", self.base)
    }

    /// An incoming-webhook URL; `name` tells channels apart in assertions.
    pub fn webhook_url(&self, name: &str) -> String {
        format!("{}/webhook/{name}", self.base)
    }

    /// A response URL, as Slack sends with interactions.
    pub fn response_url(&self, name: &str) -> String {
        format!("{}/response/{name}", self.base)
    }

    /// Queues scripted answers, used in order before the default answers.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    /// Starts an outage: every request is answered with `status` until [`Self::end_outage`].
    pub fn start_outage(&self, status: u16) {
        self.inner.lock().unwrap().outage = Some(status);
    }

    /// Ends an outage: Slack answers as usual again.
    pub fn end_outage(&self) {
        self.inner.lock().unwrap().outage = None;
    }

    /// Members returned by `usergroups.users.list` for a group.
    pub fn set_group_members(&self, group: &str, users: &[&str]) {
        self.inner.lock().unwrap().group_members.push((
            group.to_string(),
            users.iter().map(|u| u.to_string()).collect(),
        ));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Requests whose path starts with `prefix` and that were answered successfully.
    pub fn delivered(&self, prefix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix) && r.status < 300)
            .collect()
    }

    /// Waits until `predicate` holds on the recorded requests, or panics after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut(&[RecordedRequest]) -> bool,
    ) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let requests = self.requests();
            if predicate(&requests) {
                return requests;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let requests = self.requests();
                panic!(
                    "Slack did not receive what was expected within {timeout:?}; got {} requests: {:#?}",
                    requests.len(),
                    requests
                        .iter()
                        .map(|r| (&r.path, r.status))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}

type AppState = (Arc<Mutex<Inner>>, Arc<Notify>);

async fn handle(
    State((inner, changed)): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let is_api = path.starts_with("/api/");
    let body_value = serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| {
        // Form bodies (`payload=...`) as an object of strings.
        let pairs: Vec<(String, String)> = url_decode_pairs(&body);
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    });
    let (status, retry_after, answer) = {
        let mut state = inner.lock().unwrap();
        let scripted = match state.outage {
            Some(status) => Some(Scripted::status(status)),
            None => state.script.pop_front(),
        };
        let (status, retry_after, answer) = match scripted {
            Some(s) => (s.status, s.retry_after, s.body),
            None => default_answer(&mut state, &path, &body_value),
        };
        state.requests.push(RecordedRequest {
            path,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body_value,
            at: Instant::now(),
            status,
        });
        (status, retry_after, answer)
    };
    changed.notify_waiters();
    let mut response = (StatusCode::from_u16(status).unwrap(), answer).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    if is_api {
        // Web API answers are JSON objects; webhooks answer a plain "ok".
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
    }
    response
}

fn default_answer(state: &mut Inner, path: &str, body: &Value) -> (u16, Option<u64>, String) {
    let Some(method) = path.strip_prefix("/api/") else {
        return (200, None, "ok".into());
    };
    let answer = match method {
        "chat.postMessage" => {
            state.next_ts += 1;
            json!({
                "ok": true,
                "channel": body["channel"].as_str().unwrap_or("C000"),
                "ts": format!("1700000000.{:06}", state.next_ts),
            })
        }
        "chat.update" => json!({"ok": true, "channel": body["channel"], "ts": body["ts"]}),
        "chat.getPermalink" => {
            let channel = body["channel"].as_str().unwrap_or_default();
            let ts = body["message_ts"]
                .as_str()
                .unwrap_or_default()
                .replace('.', "");
            json!({"ok": true, "channel": channel,
                "permalink": format!("https://stand-in.slack.com/archives/{channel}/p{ts}")})
        }
        "usergroups.users.list" => {
            let group = body["usergroup"].as_str().unwrap_or_default();
            let users = state
                .group_members
                .iter()
                .find(|(g, _)| g == group)
                .map(|(_, u)| u.clone())
                .unwrap_or_default();
            json!({"ok": true, "users": users})
        }
        _ => json!({"ok": true}),
    };
    (200, None, answer.to_string())
}

fn url_decode_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// Keeps the recorder's clock type in one place for tests that measure spacing.
pub fn spacing(requests: &[RecordedRequest]) -> Vec<Duration> {
    requests
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}
