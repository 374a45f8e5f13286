//! A proxy in front of the CloudWatch translator that enforces AWS's per-API quotas as AWS does
//! (per account and region, a token bucket per operation with one second of burst), scaled by
//! one factor so that the benchmark fits on this machine, and answers `Throttling` in CBOR
//! beyond them. It counts what it forwards and what it refused, by operation.

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
}

struct Proxy {
    upstream: String,
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
    /// Serves on a free local port, forwarding to `upstream`, with every quota times `factor`.
    pub async fn start(upstream: &str, factor: f64) -> Result<QuotaProxy, String> {
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

/// RPC-v2 CBOR names the operation in the path: `/service/<Service>/operation/<Operation>`.
fn operation(uri: &Uri) -> String {
    uri.path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
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
    let op = operation(&uri);
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
    *proxy
        .counts
        .lock()
        .expect("counts")
        .forwarded
        .entry(op)
        .or_default() += 1;
    let url = format!(
        "{}{}",
        proxy.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = proxy.http.request(method, url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            response
                .body(Body::from(bytes))
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(e.to_string()))
            .unwrap_or_else(|_| Response::new(Body::empty())),
    }
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
