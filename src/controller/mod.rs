//! The kube-runtime wiring of `alertops controller`, kept thin: watch the resources, call the
//! reconcilers with the real Kubernetes client behind [`crate::k8s::ClusterApi`], back off on
//! errors, stop on SIGTERM, and run only while holding the leader Lease.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::registry::Registry;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{info, warn};

use crate::aws::{AwsClients, AwsSettings};
use crate::cli::ControllerArgs;
use crate::k8s::KubeCluster;
use crate::reconcile::workloads::MANAGED_BY;
use crate::reconcile::{Context, ReconcileError, alarm_policy, alert_route, digest_schedule};
use crate::resources::{AlarmPolicy, AlertRoute, DigestSchedule, SourceRef};
use crate::telemetry::{self, OperatorMetrics, Readiness, ReadyState, ReconcileMetrics};

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Bad flags.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// No Kubernetes client could be configured.
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The CRDs are not installed.
    #[error("the alertops CRDs are not installed ({0}); apply crds/ or install the Helm chart")]
    CrdsMissing(kube::Error),
    /// Leadership was lost or could not be held.
    #[error("leader election: {0}")]
    Leadership(String),
}

/// Runs the controller until SIGTERM or loss of leadership.
pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    let settings = args
        .operator
        .settings()
        .map_err(ControllerError::Settings)?;
    let client = Client::try_default().await?;
    // Fail fast with a clear message when the CRDs are missing, instead of a silent watch loop.
    api::<AlarmPolicy>(&client, args.watch_namespace.as_deref())
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(ControllerError::CrdsMissing)?;

    let aws = AwsClients::from_env(AwsSettings::default()).await;
    let reconcile_metrics = ReconcileMetrics::default();
    let operator_metrics = OperatorMetrics::new();
    let registry = metrics_registry(&reconcile_metrics, &operator_metrics, aws.metrics());
    let readiness = Readiness::default();
    let server = tokio::spawn(telemetry::serve(
        args.http_listen,
        Arc::new(registry),
        readiness.clone(),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ));
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("alertops-{}", std::process::id()));
    let cluster = KubeCluster::with_reporter(client.clone(), Some(identity.clone()));
    let ctx = Arc::new(Context::new(cluster, aws, settings).with_metrics(reconcile_metrics));
    // Ready once the CRDs answered: a standby replica is ready to take over the Lease.
    readiness.set(true);

    let leading = operator_metrics.clone();
    let watch_client = client.clone();
    let watch_namespace = args.watch_namespace.clone();
    let controllers = async move {
        // This future runs only while the Lease is held; losing it ends the process.
        leading.set_leader(true);
        run_controllers(watch_client, watch_namespace, ctx, leading).await
    };
    let lease =
        crate::k8s::leader::LeaseConfig::new(&args.lease_name, &args.lease_namespace, &identity);
    let result = crate::k8s::leader::run_while_leader(client, &lease, controllers)
        .await
        .map_err(|e| ControllerError::Leadership(e.to_string()));
    operator_metrics.set_leader(false);
    server.abort();
    result
}

/// The controller's `/metrics` registry: reconcile counters, the operator's gauges and the AWS
/// layer's calls. The metric-name test gathers the exposition from this very function.
pub fn metrics_registry(
    reconcile: &ReconcileMetrics,
    operator: &OperatorMetrics,
    aws: &crate::aws::AwsMetrics,
) -> Registry {
    let mut registry = telemetry::registry();
    reconcile.register(&mut registry);
    operator.register(&mut registry);
    aws.register(&mut registry);
    registry
}

/// Recounts the `Ready` states of every resource in `store` into the resources gauge; called
/// after each reconcile of that kind, whose status change the store then holds (a status write
/// triggers the next reconcile, so the gauge trails the store by at most one run).
fn count_ready<K>(
    metrics: &OperatorMetrics,
    kind: &str,
    store: &Store<K>,
    status: impl Fn(&K) -> Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
) where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    metrics.set_resources(
        kind,
        store.state().iter().map(|r| ReadyState::of(status(r))),
    );
}

/// The API of a resource, in one namespace or all.
fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn run_controllers(
    client: Client,
    namespace: Option<String>,
    ctx: Arc<Context<KubeCluster>>,
    metrics: OperatorMetrics,
) {
    info!("controllers started");
    let ns = namespace.as_deref();
    let policies = Controller::new(
        api::<AlarmPolicy>(&client, ns),
        watcher::Config::default().any_semantic(),
    );
    let policy_store = policies.store();
    let policy_metrics = metrics.clone();
    let policies = policies
        .shutdown_on_signal()
        .run(
            |policy, ctx: Arc<Context<KubeCluster>>| async move {
                let resource = resource_key(&*policy);
                timed(
                    &ctx,
                    alarm_policy::KIND,
                    resource,
                    alarm_policy::reconcile(policy, &ctx),
                )
                .await
            },
            |policy, error: &ReconcileError, ctx| on_error(&*policy, error, &ctx),
            ctx.clone(),
        )
        .for_each(move |result| {
            count_ready(
                &policy_metrics,
                alarm_policy::KIND,
                &policy_store,
                |p: &AlarmPolicy| p.status.as_ref().map(|s| s.conditions.as_slice()),
            );
            log_result(result)
        });

    // Only the workloads alertops made: the owner references route their changes (a consumer
    // becoming ready) to the owning resource.
    let owned = watcher::Config::default()
        .labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"))
        .any_semantic();

    let routes = Controller::new(
        api::<AlertRoute>(&client, ns),
        watcher::Config::default().any_semantic(),
    );
    let route_store = routes.store();
    let route_count_store = route_store.clone();
    let route_metrics = metrics.clone();
    let routes = routes
        .owns(api::<Deployment>(&client, ns), owned.clone())
        // A route waiting for an AlarmPolicy's topic hears of it at once instead of at backoff.
        .watches(
            api::<AlarmPolicy>(&client, ns),
            watcher::Config::default().any_semantic(),
            move |policy| referring(&route_store, &policy, |r: &AlertRoute| &r.spec.sources),
        )
        .shutdown_on_signal()
        .run(
            |route, ctx: Arc<Context<KubeCluster>>| async move {
                let resource = resource_key(&*route);
                timed(
                    &ctx,
                    alert_route::KIND,
                    resource,
                    alert_route::reconcile(route, &ctx),
                )
                .await
            },
            |route, error: &ReconcileError, ctx| on_error(&*route, error, &ctx),
            ctx.clone(),
        )
        .for_each(move |result| {
            count_ready(
                &route_metrics,
                alert_route::KIND,
                &route_count_store,
                |r: &AlertRoute| r.status.as_ref().map(|s| s.conditions.as_slice()),
            );
            log_result(result)
        });

    let digests = Controller::new(
        api::<DigestSchedule>(&client, ns),
        watcher::Config::default().any_semantic(),
    );
    let digest_store = digests.store();
    let digest_count_store = digest_store.clone();
    let digests = digests
        .owns(api::<CronJob>(&client, ns), owned)
        .watches(
            api::<AlarmPolicy>(&client, ns),
            watcher::Config::default().any_semantic(),
            move |policy| referring(&digest_store, &policy, |d: &DigestSchedule| &d.spec.sources),
        )
        .shutdown_on_signal()
        .run(
            |digest, ctx: Arc<Context<KubeCluster>>| async move {
                let resource = resource_key(&*digest);
                timed(
                    &ctx,
                    digest_schedule::KIND,
                    resource,
                    digest_schedule::reconcile(digest, &ctx),
                )
                .await
            },
            |digest, error: &ReconcileError, ctx| on_error(&*digest, error, &ctx),
            ctx,
        )
        .for_each(move |result| {
            count_ready(
                &metrics,
                digest_schedule::KIND,
                &digest_count_store,
                |d: &DigestSchedule| d.status.as_ref().map(|s| s.conditions.as_slice()),
            );
            log_result(result)
        });

    futures::join!(policies, routes, digests);
    info!("controllers stopped");
}

/// The resources in `store` that list `policy` as a source (same namespace, by name).
fn referring<K>(
    store: &Store<K>,
    policy: &AlarmPolicy,
    sources: impl Fn(&K) -> &Vec<SourceRef>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let name = policy.name_any();
    let namespace = policy.namespace();
    store
        .state()
        .iter()
        .filter(|r| r.meta().namespace == namespace)
        .filter(|r| {
            sources(r)
                .iter()
                .any(|s| s.alarm_policy.as_deref() == Some(name.as_str()))
        })
        .map(|r| ObjectRef::from_obj(&**r))
        .collect()
}

fn on_error<K: Resource<DynamicType = ()>>(
    obj: &K,
    error: &ReconcileError,
    ctx: &Context<KubeCluster>,
) -> Action {
    let key = format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    );
    warn!(resource = %key, category = error.category(), error = %error, "reconcile failed");
    ctx.failed(&key, error)
}

/// `namespace/name` of a resource, the `resource` field of reconcile logs.
fn resource_key<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// Runs one reconcile inside a span naming its resource (so every log line of the reconcile,
/// in JSON too, carries `kind` and `resource`), and records its duration and outcome.
async fn timed(
    ctx: &Context<KubeCluster>,
    kind: &str,
    resource: String,
    reconcile: impl Future<Output = Result<Action, ReconcileError>>,
) -> Result<Action, ReconcileError> {
    use tracing::Instrument;
    let started = Instant::now();
    let span = tracing::info_span!("reconcile", kind, resource = %resource);
    let result = reconcile.instrument(span).await;
    let failure = result.as_ref().err().map(ReconcileError::category);
    ctx.metrics
        .observe(kind, started.elapsed().as_secs_f64(), failure);
    result
}

async fn log_result<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(e) = result {
        warn!(error = %e, "controller event");
    }
}
