//! Observability shared by every workload: the Prometheus registry, the reconcile metrics, and a
//! small HTTP server for `/metrics`, `/healthz` and `/readyz`.

pub mod logging;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-kind reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Resource kind.
    pub kind: String,
}

/// Labels of reconcile failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// Resource kind.
    pub kind: String,
    /// Error category (`throttled`, `access_denied`, `conflict`, ...).
    pub category: String,
}

/// Reconcile runs, failures and durations per kind.
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    /// Reconciles started.
    pub runs: Family<KindLabels, Counter>,
    /// Reconciles that failed, by error category.
    pub failures: Family<FailureLabels, Counter>,
    /// Reconcile duration in seconds.
    pub duration: Family<KindLabels, Histogram>,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        ReconcileMetrics {
            runs: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 12))
            }),
        }
    }
}

impl ReconcileMetrics {
    /// Registers the metrics (give the registry the `alertops` prefix, as every workload does).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "alertops_reconciles",
            "Reconciles started, per kind",
            self.runs.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, per kind and error category",
            self.failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile, per kind",
            self.duration.clone(),
        );
    }

    /// Records one reconcile.
    pub fn observe(&self, kind: &str, seconds: f64, failure: Option<&str>) {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.runs.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(seconds);
        if let Some(category) = failure {
            self.failures
                .get_or_create(&FailureLabels {
                    kind: kind.to_string(),
                    category: category.to_string(),
                })
                .inc();
        }
    }
}

/// Readiness of a workload, flipped by its main loop.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the workload ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether the workload is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct ServerState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// The `/metrics`, `/healthz` and `/readyz` routes, for embedding into another router.
pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    metrics_router(registry, readiness).route("/healthz", get(|| async { "ok" }))
}

/// `/metrics` and `/readyz` only, for routers that already answer `/healthz`.
pub fn metrics_router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(ready))
        .with_state(ServerState {
            registry,
            readiness,
        })
}

/// Serves [`router`] on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(registry, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The metrics in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        encode(&state.registry),
    )
}

async fn ready(State(state): State<ServerState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_metrics_are_encoded_per_kind() {
        let metrics = ReconcileMetrics::default();
        let mut registry = Registry::with_prefix("alertops");
        metrics.register(&mut registry);
        metrics.observe("AlarmPolicy", 0.2, None);
        metrics.observe("AlarmPolicy", 0.1, Some("throttled"));
        let text = encode(&registry);
        assert!(
            text.contains(r#"alertops_reconciles_total{kind="AlarmPolicy"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"alertops_reconcile_failures_total{kind="AlarmPolicy",category="throttled"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("alertops_reconcile_duration_seconds_count{kind=\"AlarmPolicy\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn readiness_and_metrics_are_served() {
        let readiness = Readiness::default();
        let mut registry = Registry::with_prefix("alertops");
        let metrics = ReconcileMetrics::default();
        metrics.register(&mut registry);
        metrics.observe("AlertRoute", 0.1, None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(Arc::new(registry), readiness.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("http://{addr}{path}")).send();
        assert_eq!(get("/healthz").await.unwrap().status(), 200);
        assert_eq!(get("/readyz").await.unwrap().status(), 503);
        readiness.set(true);
        assert_eq!(get("/readyz").await.unwrap().status(), 200);
        let body = get("/metrics").await.unwrap().text().await.unwrap();
        assert!(
            body.contains(r#"alertops_reconciles_total{kind="AlertRoute"} 1"#),
            "{body}"
        );
    }
}
