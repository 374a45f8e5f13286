//! Observability shared by every workload: the Prometheus registry, the reconcile metrics, the
//! operator's own gauges (build, leadership, ready resources), and a small HTTP server for
//! `/metrics`, `/healthz` and `/readyz`.
//!
//! Every registry is made by [`registry`], which adds the `alertops_` prefix: metric names are
//! registered without it (`reconciles`, not `alertops_reconciles`), or they come out doubled.

pub mod logging;
pub(crate) mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Prefix of every metric name, added by the registry.
pub const METRIC_PREFIX: &str = "alertops";

/// An empty registry that prefixes every metric with `alertops_`, the one every workload uses.
pub fn registry() -> Registry {
    Registry::with_prefix(METRIC_PREFIX)
}

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
    /// Registers the metrics in a registry made by [`registry`] (which adds the prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reconciles",
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

/// Labels of the build-information gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version of the running binary.
    pub version: String,
}

/// What the `Ready` condition of a resource says, as a metric label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadyState {
    /// `Ready=True`.
    Ready,
    /// `Ready=False`.
    NotReady,
    /// No `Ready` condition yet, or `Ready=Unknown` (not reconciled yet).
    Unknown,
}

impl ReadyState {
    /// Every state, so that a state no resource is in is exported as 0 rather than left stale.
    pub const ALL: [ReadyState; 3] = [ReadyState::Ready, ReadyState::NotReady, ReadyState::Unknown];

    /// The value of the `ready` label.
    pub fn label(self) -> &'static str {
        match self {
            ReadyState::Ready => "true",
            ReadyState::NotReady => "false",
            ReadyState::Unknown => "unknown",
        }
    }

    /// The state of a resource from its status conditions (`None`: no status at all).
    pub fn of(conditions: Option<&[Condition]>) -> ReadyState {
        let ready = conditions
            .into_iter()
            .flatten()
            .find(|c| c.type_ == crate::resources::CONDITION_READY);
        match ready.map(|c| c.status.as_str()) {
            Some("True") => ReadyState::Ready,
            Some("False") => ReadyState::NotReady,
            _ => ReadyState::Unknown,
        }
    }
}

/// Labels of the resources gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// Resource kind.
    pub kind: String,
    /// `true`, `false` or `unknown`: the resource's `Ready` condition.
    pub ready: String,
}

/// The controller's own gauges: which build runs, whether this replica leads, and how many
/// resources of each kind are ready.
#[derive(Clone, Debug, Default)]
pub struct OperatorMetrics {
    /// Always 1, labelled with the version (joins version information onto other series).
    pub build_info: Family<BuildLabels, Gauge>,
    /// 1 while this replica holds the leader Lease (and reconciles), else 0.
    pub is_leader: Gauge,
    /// Resources the controller sees, by kind and `Ready` condition.
    pub resources: Family<ResourceLabels, Gauge>,
}

impl OperatorMetrics {
    /// The gauges, with build information set.
    pub fn new() -> Self {
        let metrics = OperatorMetrics::default();
        metrics
            .build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        metrics
    }

    /// Registers the gauges in a registry made by [`registry`].
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "build_info",
            "Always 1; the version of the running alertops binary in its label",
            self.build_info.clone(),
        );
        registry.register(
            "is_leader",
            "1 while this controller replica holds the leader Lease and reconciles, else 0",
            self.is_leader.clone(),
        );
        registry.register(
            "resources",
            "Resources the controller watches, by kind and Ready condition (true, false, unknown)",
            self.resources.clone(),
        );
    }

    /// Records leadership.
    pub fn set_leader(&self, leading: bool) {
        self.is_leader.set(i64::from(leading));
    }

    /// Replaces the counts of one kind with those of `states` (one per resource); states no
    /// resource is in are set to 0.
    pub fn set_resources(&self, kind: &str, states: impl IntoIterator<Item = ReadyState>) {
        let mut counts = std::collections::BTreeMap::new();
        for state in states {
            *counts.entry(state).or_insert(0i64) += 1;
        }
        for state in ReadyState::ALL {
            self.resources
                .get_or_create(&ResourceLabels {
                    kind: kind.to_string(),
                    ready: state.label().to_string(),
                })
                .set(counts.get(&state).copied().unwrap_or(0));
        }
    }
}

/// Whether the exposition `text` has `line` as one whole line. Tests use it rather than
/// `contains`, which also matches a longer name ending in the expected one.
pub fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
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

    fn assert_line(text: &str, line: &str) {
        assert!(has_line(text, line), "no line `{line}` in:\n{text}");
    }

    #[test]
    fn reconcile_metrics_are_encoded_per_kind() {
        let metrics = ReconcileMetrics::default();
        let mut registry = registry();
        metrics.register(&mut registry);
        metrics.observe("AlarmPolicy", 0.2, None);
        metrics.observe("AlarmPolicy", 0.1, Some("throttled"));
        let text = encode(&registry);
        assert_line(&text, r#"alertops_reconciles_total{kind="AlarmPolicy"} 2"#);
        assert_line(
            &text,
            r#"alertops_reconcile_failures_total{kind="AlarmPolicy",category="throttled"} 1"#,
        );
        assert_line(
            &text,
            r#"alertops_reconcile_duration_seconds_count{kind="AlarmPolicy"} 2"#,
        );
    }

    #[test]
    fn no_metric_name_repeats_the_prefix() {
        let mut registry = registry();
        ReconcileMetrics::default().register(&mut registry);
        OperatorMetrics::new().register(&mut registry);
        let text = encode(&registry);
        assert!(!text.contains("alertops_alertops"), "{text}");
    }

    #[test]
    fn has_line_matches_whole_lines_only() {
        let text = "alertops_alertops_reconciles_total{kind=\"A\"} 2\n";
        assert!(!has_line(text, r#"alertops_reconciles_total{kind="A"} 2"#));
        assert!(has_line(
            text,
            r#"alertops_alertops_reconciles_total{kind="A"} 2"#
        ));
    }

    #[test]
    fn build_info_names_the_version_and_leadership_flips() {
        let metrics = OperatorMetrics::new();
        let mut registry = registry();
        metrics.register(&mut registry);
        let text = encode(&registry);
        assert_line(
            &text,
            &format!(
                r#"alertops_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        );
        assert_line(&text, "alertops_is_leader 0");
        metrics.set_leader(true);
        assert_line(&encode(&registry), "alertops_is_leader 1");
    }

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: "R".to_string(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        }
    }

    #[test]
    fn ready_state_reads_the_ready_condition_only() {
        assert_eq!(ReadyState::of(None), ReadyState::Unknown);
        assert_eq!(ReadyState::of(Some(&[])), ReadyState::Unknown);
        let lint_only = [condition("Lint", "True")];
        assert_eq!(ReadyState::of(Some(&lint_only)), ReadyState::Unknown);
        let ready = [condition("Lint", "False"), condition("Ready", "True")];
        assert_eq!(ReadyState::of(Some(&ready)), ReadyState::Ready);
        let not_ready = [condition("Ready", "False")];
        assert_eq!(ReadyState::of(Some(&not_ready)), ReadyState::NotReady);
        let unknown = [condition("Ready", "Unknown")];
        assert_eq!(ReadyState::of(Some(&unknown)), ReadyState::Unknown);
    }

    #[test]
    fn resource_counts_replace_the_previous_ones_and_zero_empty_states() {
        let metrics = OperatorMetrics::new();
        let mut registry = registry();
        metrics.register(&mut registry);
        metrics.set_resources(
            "AlertRoute",
            [ReadyState::Ready, ReadyState::Ready, ReadyState::NotReady],
        );
        let text = encode(&registry);
        assert_line(
            &text,
            r#"alertops_resources{kind="AlertRoute",ready="true"} 2"#,
        );
        assert_line(
            &text,
            r#"alertops_resources{kind="AlertRoute",ready="false"} 1"#,
        );
        assert_line(
            &text,
            r#"alertops_resources{kind="AlertRoute",ready="unknown"} 0"#,
        );
        metrics.set_resources("AlertRoute", [ReadyState::Ready]);
        let text = encode(&registry);
        assert_line(
            &text,
            r#"alertops_resources{kind="AlertRoute",ready="true"} 1"#,
        );
        assert_line(
            &text,
            r#"alertops_resources{kind="AlertRoute",ready="false"} 0"#,
        );
    }

    #[tokio::test]
    async fn readiness_and_metrics_are_served() {
        let readiness = Readiness::default();
        let mut registry = registry();
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
        assert_line(&body, r#"alertops_reconciles_total{kind="AlertRoute"} 1"#);
    }
}
