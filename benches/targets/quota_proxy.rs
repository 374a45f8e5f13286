//! A proxy in front of the CloudWatch translator that enforces AWS's per-API quotas as AWS does
//! (per account and region, a token bucket per operation with one second of burst), scaled by
//! one factor so that the benchmark fits on this machine, and answers `Throttling` in CBOR
//! beyond them. It counts what it forwards and what it refused, by operation.
//!
//! The other services' requests go to moto itself, through the same proxy so that they are
//! counted, and SNS's ListTopics is paged as AWS pages it: moto answers a `NextToken` after every
//! full page of 100, so an account of exactly 1,000 topics costs an eleventh, empty page that
//! AWS does not send; the proxy looks one page ahead and drops such a token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

/// AWS's default quotas of the CloudWatch operations alertops calls, per second.
pub const CLOUDWATCH_QUOTAS: [(&str, f64); 6] = [
    ("DescribeAlarms", 9.0),
    ("PutMetricAlarm", 3.0),
    ("DeleteAlarms", 3.0),
    ("ListTagsForResource", 10.0),
    ("TagResource", 20.0),
    ("UntagResource", 20.0),
];

struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Counts {
    forwarded: BTreeMap<String, usize>,
    throttled: BTreeMap<String, usize>,
    /// When each operation was first and last forwarded.
    spans: BTreeMap<String, (Instant, Instant)>,
}

struct Proxy {
    /// The CloudWatch translator (RPC-v2 CBOR paths).
    upstream: String,
    /// moto, for every other service.
    moto: String,
    http: reqwest::Client,
    buckets: Mutex<BTreeMap<String, Bucket>>,
    counts: Mutex<Counts>,
}

/// The running proxy.
pub struct QuotaProxy {
    /// Its base URL.
    pub endpoint: String,
    proxy: Arc<Proxy>,
    server: tokio::task::JoinHandle<()>,
}

impl QuotaProxy {
    /// Serves on a free local port, forwarding CloudWatch to `upstream` and the rest to `moto`,
    /// with every quota times `factor`.
    pub async fn start(upstream: &str, moto: &str, factor: f64) -> Result<QuotaProxy, String> {
        let now = Instant::now();
        let buckets = CLOUDWATCH_QUOTAS
            .iter()
            .map(|(op, rate)| {
                let rate = rate * factor;
                (
                    op.to_string(),
                    Bucket {
                        rate,
                        tokens: rate,
                        at: now,
                    },
                )
            })
            .collect();
        let proxy = Arc::new(Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            moto: moto.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            buckets: Mutex::new(buckets),
            counts: Mutex::new(Counts::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind the quota proxy: {e}"))?;
        let address: SocketAddr = listener
            .local_addr()
            .map_err(|e| format!("quota proxy address: {e}"))?;
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(QuotaProxy {
            endpoint: format!("http://{address}"),
            proxy,
            server,
        })
    }

    /// Requests forwarded and refused, by operation, since the last reset.
    pub fn counts(&self) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
        let counts = self.proxy.counts.lock().expect("counts");
        (counts.forwarded.clone(), counts.throttled.clone())
    }

    /// When each operation was first and last forwarded since the last reset.
    pub fn spans(&self) -> BTreeMap<String, (Instant, Instant)> {
        self.proxy.counts.lock().expect("counts").spans.clone()
    }

    /// When `op` was first and last forwarded since the last reset.
    pub fn span(&self, op: &str) -> Option<(Instant, Instant)> {
        self.proxy
            .counts
            .lock()
            .expect("counts")
            .spans
            .get(op)
            .copied()
    }

    /// Forgets the counts.
    pub fn reset(&self) {
        *self.proxy.counts.lock().expect("counts") = Counts::default();
    }
}

impl Drop for QuotaProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// RPC-v2 CBOR (CloudWatch) names the operation in the path:
/// `/service/<Service>/operation/<Operation>`.
fn cbor_operation(uri: &Uri) -> Option<String> {
    uri.path().starts_with("/service/").then(|| {
        uri.path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    })
}

/// The Query protocol (SNS) names it in the form body: `Action=ListTopics&…`; the JSON
/// protocols in `X-Amz-Target: Service.Operation`.
fn other_operation(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or_default().to_string();
    }
    form_value(body, "Action").unwrap_or_default()
}

fn form_value(body: &[u8], key: &str) -> Option<String> {
    String::from_utf8_lossy(body).split('&').find_map(|pair| {
        pair.strip_prefix(key)?
            .strip_prefix('=')
            .map(str::to_string)
    })
}

/// The text of `<element>` in an XML answer.
fn xml_text<'a>(xml: &'a str, element: &str) -> Option<&'a str> {
    let open = format!("<{element}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{element}>"))?;
    Some(&xml[start..end])
}

/// Takes a token of `op`'s bucket, or refuses.
fn admit(proxy: &Proxy, op: &str) -> bool {
    let mut buckets = proxy.buckets.lock().expect("buckets");
    let Some(bucket) = buckets.get_mut(op) else {
        return true;
    };
    let now = Instant::now();
    let refill = now.duration_since(bucket.at).as_secs_f64() * bucket.rate;
    bucket.tokens = (bucket.tokens + refill).min(bucket.rate);
    bucket.at = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        true
    } else {
        false
    }
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (op, upstream) = match cbor_operation(&uri) {
        Some(op) => (op, proxy.upstream.clone()),
        None => (other_operation(&headers, &body), proxy.moto.clone()),
    };
    if !admit(&proxy, &op) {
        *proxy
            .counts
            .lock()
            .expect("counts")
            .throttled
            .entry(op)
            .or_default() += 1;
        return throttling();
    }
    {
        let mut counts = proxy.counts.lock().expect("counts");
        *counts.forwarded.entry(op.clone()).or_default() += 1;
        let now = Instant::now();
        counts.spans.entry(op.clone()).or_insert((now, now)).1 = now;
    }
    let url = format!(
        "{upstream}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let send = |body: Bytes| {
        let mut request = proxy.http.request(method.clone(), &url).body(body);
        for (name, value) in &headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        request.send()
    };
    let answer = match send(body.clone()).await {
        Ok(answer) => answer,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .unwrap_or_else(|_| Response::new(Body::empty()));
        }
    };
    let status = answer.status();
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    let mut bytes = answer.bytes().await.unwrap_or_default();
    if op == "ListTopics" && status.is_success() {
        bytes = without_empty_next_page(bytes, &body, send).await;
    }
    response
        .body(Body::from(bytes))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A ListTopics page whose `NextToken` leads to an empty page loses the token, as on AWS. The
/// look-ahead is the proxy's own request, not counted as the caller's.
async fn without_empty_next_page<F, Fut>(page: Bytes, request: &[u8], send: F) -> Bytes
where
    F: Fn(Bytes) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let text = String::from_utf8_lossy(&page).into_owned();
    let Some(token) = xml_text(&text, "NextToken") else {
        return page;
    };
    let mut next = String::from_utf8_lossy(request)
        .split('&')
        .filter(|pair| !pair.starts_with("NextToken="))
        .collect::<Vec<_>>()
        .join("&");
    next.push_str(&format!("&NextToken={token}"));
    let Ok(answer) = send(Bytes::from(next)).await else {
        return page;
    };
    let next_page = answer.text().await.unwrap_or_default();
    if xml_text(&next_page, "ListTopicsResult").is_none() || next_page.contains("<TopicArn>") {
        return page;
    }
    Bytes::from(text.replace(&format!("<NextToken>{token}</NextToken>"), ""))
}

/// CloudWatch's throttling answer over RPC-v2 CBOR: `{"__type": "Throttling", "message":
/// "Rate exceeded"}`, with the query-compatible error header.
fn throttling() -> Response {
    let mut body = vec![0xa2];
    for text in ["__type", "Throttling", "message", "Rate exceeded"] {
        body.push(0x60 + text.len() as u8);
        body.extend_from_slice(text.as_bytes());
    }
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "application/cbor")
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("x-amzn-query-error", "Throttling;Sender")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
