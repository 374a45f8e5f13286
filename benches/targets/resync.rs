//! No-op resync of one AlarmPolicy of 1,000 alarms through the real reconciler: how many
//! DescribeAlarms calls and writes the second reconcile makes. (The CRD caps a policy at 500
//! alarms; the reconciler has no such cap, and 1,000 exercises the paging the target is about.)
//!
//! moto 5.2 ignores `MaxRecords` and answers DescribeAlarms with every alarm in one page, which
//! would make any paging look free. The bench therefore puts a small proxy in front of it that
//! pages DescribeAlarms as CloudWatch does (`MaxRecords` up to 100, default 50, `NextToken`) and
//! passes every other request through unchanged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alertops::aws::{ApiRate, AwsSettings};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::reconcile::{Context, OperatorSettings, alarm_policy};
use alertops::resources::AlarmPolicy;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Row;
use crate::emulator::{Moto, clients_at};
use crate::policies;

/// Alarms in the policy.
const ALARMS: usize = 1_000;
/// CloudWatch's largest DescribeAlarms page.
const MAX_PAGE: usize = 100;
/// CloudWatch's DescribeAlarms page when `MaxRecords` is not given.
const DEFAULT_PAGE: usize = 50;

/// Creates the alarms, resyncs, and reports the second reconcile's calls.
pub async fn measure(moto: &Moto) -> Result<Vec<Row>, String> {
    let proxy = start_paging_proxy(moto.endpoint()).await?;
    let cluster = MemoryCluster::new();
    let settings = OperatorSettings {
        resync_interval: Duration::from_secs(600),
        ..OperatorSettings::new(format!("bench{}", std::process::id()))
    };
    // Creating 1,000 alarms at production rates takes minutes; the resync runs at them.
    let generous = AwsSettings::default().with_all_rates(ApiRate::per_second(10_000));
    let setup = Context::new(
        cluster.clone(),
        clients_at(&proxy, generous).await,
        settings.clone(),
    );
    let production_aws = clients_at(&proxy, AwsSettings::default()).await;
    let production = Context::new(cluster.clone(), production_aws.clone(), settings);

    let (namespace, name) = ("platform", "fleet-alarms");
    cluster
        .apply_manifest(json!({
            "apiVersion": "alertops.dev/v1alpha1",
            "kind": "AlarmPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": policies::spec(7, ALARMS),
        }))
        .map_err(|e| format!("apply the policy: {e}"))?;

    let created = Instant::now();
    reconcile(&cluster, &setup, namespace, name).await?;
    let create_time = created.elapsed();
    let policy = get(&cluster, namespace, name).await?;
    let status = policy
        .status
        .as_ref()
        .ok_or("no status after the first reconcile")?;
    if status.alarm_count as usize != ALARMS {
        return Err(format!(
            "the first reconcile made {} of {ALARMS} alarms: {:?}",
            status.alarm_count, status.conditions
        ));
    }

    let calls = production_aws.call_log();
    calls.reset();
    let resynced = Instant::now();
    reconcile(&cluster, &production, namespace, name).await?;
    let resync_time = resynced.elapsed();
    let describes = calls.count("DescribeAlarms");
    let writes: Vec<String> = calls.writes().iter().map(|c| c.operation.clone()).collect();
    let all_calls = calls.snapshot().len();
    let describe_target = ALARMS.div_ceil(MAX_PAGE);

    Ok(vec![
        Row::info(
            format!("  first reconcile: create {ALARMS} alarms"),
            format!("{:.1} s", create_time.as_secs_f64()),
        ),
        Row::checked(
            format!("no-op resync, {ALARMS} alarms: DescribeAlarms"),
            describes.to_string(),
            format!("<= {describe_target} (pages of {MAX_PAGE})"),
            (1..=describe_target).contains(&describes),
        ),
        Row::checked(
            format!("no-op resync, {ALARMS} alarms: writes"),
            if writes.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", writes.len(), writes.join(", "))
            },
            "0",
            writes.is_empty(),
        ),
        Row::info(
            "  resync: AWS calls in all, time (production rates)",
            format!("{all_calls}, {:.2} s", resync_time.as_secs_f64()),
        ),
    ])
}

async fn get(cluster: &MemoryCluster, namespace: &str, name: &str) -> Result<AlarmPolicy, String> {
    cluster
        .get::<AlarmPolicy>(namespace, name)
        .await
        .map_err(|e| format!("get the policy: {e}"))?
        .ok_or_else(|| "the policy is gone".to_string())
}

async fn reconcile(
    cluster: &MemoryCluster,
    ctx: &Context<MemoryCluster>,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    let policy = get(cluster, namespace, name).await?;
    alarm_policy::reconcile(Arc::new(policy), ctx)
        .await
        .map(|_| ())
        .map_err(|e| format!("reconcile: {e}"))
}

#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
}

/// Starts the paging proxy in front of `upstream`; returns its base URL.
async fn start_paging_proxy(upstream: &str) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind the paging proxy: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("paging proxy address: {e}"))?;
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("proxy HTTP client: {e}"))?;
    let app = Router::new().fallback(forward).with_state(Upstream {
        base: upstream.to_string(),
        http,
    });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("paging proxy stopped: {error}");
        }
    });
    Ok(format!("http://{address}"))
}

async fn forward(
    State(upstream): State<Upstream>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let param = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let paging = (param("Action").as_deref() == Some("DescribeAlarms")).then(|| {
        let size = param("MaxRecords")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE);
        let offset = param("NextToken").and_then(|v| v.parse().ok()).unwrap_or(0);
        (offset, size)
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = upstream
        .http
        .request(method, format!("{}{path}", upstream.base))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let status = answer.status();
    let content_type = answer.headers().get("content-type").cloned();
    let text = match answer.text().await {
        Ok(text) => text,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let text = match paging {
        Some((offset, size)) if status.is_success() => {
            page_metric_alarms(&text, offset, size).unwrap_or(text)
        }
        _ => text,
    };
    let mut response = (status, text).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert("content-type", content_type);
    }
    response
}

/// The DescribeAlarms XML answer cut down to `size` metric alarms from `offset`, with a
/// `NextToken` when more follow. `None` when the answer has no metric alarms list.
fn page_metric_alarms(xml: &str, offset: usize, size: usize) -> Option<String> {
    const OPEN: &str = "<MetricAlarms>";
    let start = xml.find(OPEN)? + OPEN.len();
    let end = start + xml[start..].find("</MetricAlarms>")?;
    let members = top_level_members(&xml[start..end]);
    let page: String = members.iter().skip(offset).take(size).copied().collect();
    let mut out = format!("{}{page}{}", &xml[..start], &xml[end..]);
    if offset + size < members.len() {
        let close = out.find("</DescribeAlarmsResult>")?;
        out.insert_str(close, &format!("<NextToken>{}</NextToken>", offset + size));
    }
    Some(out)
}

/// The outermost `<member>…</member>` elements of an XML list (members nest: dimensions,
/// actions).
fn top_level_members(list: &str) -> Vec<&str> {
    const OPEN: &str = "<member>";
    const CLOSE: &str = "</member>";
    let mut members = Vec::new();
    let (mut depth, mut position, mut start) = (0usize, 0usize, 0usize);
    loop {
        let open = list[position..].find(OPEN);
        let close = list[position..].find(CLOSE);
        match (open, close) {
            (Some(o), Some(c)) if o < c => {
                if depth == 0 {
                    start = position + o;
                }
                depth += 1;
                position += o + OPEN.len();
            }
            (_, Some(c)) => {
                depth = depth.saturating_sub(1);
                position += c + CLOSE.len();
                if depth == 0 {
                    members.push(&list[start..position]);
                }
            }
            _ => return members,
        }
    }
}
