//! The kube-runtime wiring of `alertops controller`, kept thin: watch the resources, call the
//! reconcilers with the real Kubernetes client behind [`crate::k8s::ClusterApi`], back off on
//! errors, stop on SIGTERM, and run only while holding the leader Lease.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::registry::Registry;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::aws::{AwsClients, Inventory};
use crate::k8s::{EventInfo, EventType, KubeCluster};
use crate::reconcile::lifecycle::{self, Reconciled, StatusFields};
use crate::reconcile::{Context, ReconcileError};
use crate::resources::{AlarmPolicy, AlertRoute, DigestSchedule, SourceRef};
use crate::telemetry::{self, OperatorMetrics, Readiness, ReadyState, ReconcileMetrics};
use crate::workloads::MANAGED_BY;

mod args;

pub use args::{ControllerArgs, OperatorArgs};

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

/// `alertops controller`: runs until SIGTERM or loss of leadership; a failure exits non-zero.
pub async fn run_command(args: ControllerArgs) -> std::process::ExitCode {
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "controller stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the controller until SIGTERM or loss of leadership.
pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    let mut settings = args
        .operator
        .settings()
        .map_err(ControllerError::Settings)?;
    settings.aws_rate_limits = args.aws.rate_limits.as_ref().map(|s| s.rate_spec());
    let client = Client::try_default().await?;
    // Fail fast with a clear message when the CRDs are missing, instead of a silent watch loop.
    api::<AlarmPolicy>(&client, args.watch_namespace.as_deref())
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(ControllerError::CrdsMissing)?;

    let aws = AwsClients::from_env(args.aws.settings()).await;
    let reconcile_metrics = ReconcileMetrics::default();
    let operator_metrics = OperatorMetrics::new();
    let registry = metrics_registry(&reconcile_metrics, &operator_metrics, aws.metrics());
    let readiness = Readiness::default();
    let server = tokio::spawn(telemetry::serve(
        args.http_listen,
        Arc::new(registry),
        readiness.clone(),
        crate::telemetry::shutdown::shutdown_signal(),
    ));
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("alertops-{}", std::process::id()));
    let cluster = KubeCluster::with_reporter(client.clone(), Some(identity.clone()));
    // One listing of alarms, rules and topics per resync for every AlarmPolicy.
    let inventory = Inventory::new(aws, &settings.cluster_id, settings.resync_interval);
    let ctx = Arc::new(
        Context::new(cluster, inventory.clone(), settings).with_metrics(reconcile_metrics),
    );
    // Ready once the CRDs answered: a standby replica is ready to take over the Lease.
    readiness.set(true);

    let leading = operator_metrics.clone();
    let watch_client = client.clone();
    let watch_namespace = args.watch_namespace.clone();
    let controllers = async move {
        // This future runs only while the Lease is held; losing it ends the process.
        leading.set_leader(true);
        run_controllers(watch_client, watch_namespace, ctx, inventory, leading).await
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

/// Drops from an object what the controller never reads but would otherwise keep in its cache
/// for every resource: `managedFields`, labels, and every annotation but alertops' own
/// (`alertops.dev/…`, e.g. adopt) — kubectl's last-applied copy of the manifest and Argo CD's
/// tracking annotations among them. Together often more than the spec itself. Spec and status
/// stay. Nothing is written back from the cache: status goes out as its own patch.
pub fn strip_unread<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    meta.labels = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| key.starts_with(OWN_ANNOTATIONS));
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The prefix of the annotations alertops reads.
const OWN_ANNOTATIONS: &str = "alertops.dev/";

/// Objects per list page of the controller's watchers (kube's default is 500). A page is
/// decoded whole, managedFields and all, before the cache keeps its stripped copies: 100 keeps
/// that transient copy at a few MiB at fleet scale, for 100 list calls instead of 20 at start.
pub const LIST_PAGE_SIZE: u32 = 100;

/// Reconciles of one kind in flight at once. Enough that a first install keeps the
/// PutMetricAlarm budget busy (each AlarmPolicy puts up to 8 alarms at once, so 512 permits can
/// be queued while other policies make their fixed calls), and few enough that a resync of
/// 10,000 policies does not hold 10,000 desired states at once (kube's default is unbounded).
pub const RECONCILE_CONCURRENCY: u16 = 64;

/// A controller whose reflector cache holds its objects stripped by [`strip_unread`], running
/// [`RECONCILE_CONCURRENCY`] reconciles at once.
fn cached<K>(api: Api<K>, config: watcher::Config) -> Controller<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(strip_unread)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(stream, reader)
        .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
}

/// A tick every `period`, each after the inventory started a new generation.
fn resync_ticks(
    inventory: Inventory<AwsClients>,
    period: std::time::Duration,
) -> impl futures::Stream<Item = ()> + Send + Sync + 'static {
    futures::stream::unfold(inventory, move |inventory| async move {
        tokio::time::sleep(period).await;
        inventory.invalidate().await;
        Some(((), inventory))
    })
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
    inventory: Inventory<AwsClients>,
    metrics: OperatorMetrics,
) {
    info!("controllers started");
    let ns = namespace.as_deref();
    // Every watch is guarded: a stored object that no longer matches the types is reported and
    // skipped instead of failing the watcher in a loop.
    let all = || {
        watcher::Config::default()
            .any_semantic()
            .page_size(LIST_PAGE_SIZE)
    };
    // Every resync period: a new inventory generation, then every policy reconciled against it,
    // so a change made behind the controller's back is repaired within one period. (A spec
    // change still reconciles at once, from the watch.)
    let policies = cached(api::<DeserializeGuard<AlarmPolicy>>(&client, ns), all())
        .reconcile_all_on(resync_ticks(inventory, ctx.settings.resync_interval));

    // Only the workloads alertops made: the owner references route their changes (a consumer
    // becoming ready) to the owning resource.
    let owned = watcher::Config::default()
        .labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"))
        .any_semantic();

    let routes = cached(api::<DeserializeGuard<AlertRoute>>(&client, ns), all());
    let route_store = routes.store();
    let routes = routes
        .owns(api::<Deployment>(&client, ns), owned.clone())
        // A route waiting for an AlarmPolicy's topic hears of it at once instead of at backoff.
        .watches(
            api::<DeserializeGuard<AlarmPolicy>>(&client, ns),
            all(),
            move |policy| referring(&route_store, &policy, |r: &AlertRoute| &r.spec.sources),
        );

    let digests = cached(api::<DeserializeGuard<DigestSchedule>>(&client, ns), all());
    let digest_store = digests.store();
    let digests = digests.owns(api::<CronJob>(&client, ns), owned).watches(
        api::<DeserializeGuard<AlarmPolicy>>(&client, ns),
        all(),
        move |policy| referring(&digest_store, &policy, |d: &DigestSchedule| &d.spec.sources),
    );

    futures::join!(
        run_one(policies, ctx.clone(), metrics.clone()),
        run_one(routes, ctx.clone(), metrics.clone()),
        run_one(digests, ctx, metrics)
    );
    info!("controllers stopped");
}

/// Runs one controller until SIGTERM: each object through the reconcile skeleton, timed, with
/// per-object backoff on errors; after each reconcile, the ready count of the kind is refreshed
/// from the controller's store.
async fn run_one<K>(
    controller: Controller<DeserializeGuard<K>>,
    ctx: Arc<Context<KubeCluster>>,
    metrics: OperatorMetrics,
) where
    K: Reconciled + Resource<DynamicType = ()> + DeserializeOwned,
{
    let store = controller.store();
    controller
        .shutdown_on_signal()
        .run(
            |guard, ctx: Arc<Context<KubeCluster>>| async move {
                match &guard.0 {
                    Ok(obj) => {
                        let resource = resource_key(obj);
                        timed(
                            &ctx,
                            K::KIND,
                            resource,
                            lifecycle::reconcile(Arc::new(obj.clone()), &ctx),
                        )
                        .await
                    }
                    Err(invalid) => {
                        report_invalid::<K>(invalid, &ctx).await;
                        Ok(Action::await_change())
                    }
                }
            },
            |guard, error: &ReconcileError, ctx| on_error(&*guard, error, &ctx),
            ctx,
        )
        .for_each(move |result| {
            metrics.set_resources(
                K::KIND,
                store.state().iter().filter_map(|guard| {
                    let obj = guard.0.as_ref().ok()?;
                    Some(ReadyState::of(obj.current_status().map(|s| s.conditions())))
                }),
            );
            log_result(result)
        })
        .await
}

/// Logs and reports (as a Warning Event) a stored object that does not match the types, e.g.
/// one written by a newer version of alertops; it is skipped until it changes.
async fn report_invalid<K: Resource<DynamicType = ()>>(
    invalid: &InvalidObject,
    ctx: &Context<KubeCluster>,
) {
    let reference = ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        namespace: invalid.metadata.namespace.clone(),
        name: invalid.metadata.name.clone(),
        uid: invalid.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    warn!(
        kind = %K::kind(&()),
        resource = %format!(
            "{}/{}",
            invalid.metadata.namespace.as_deref().unwrap_or_default(),
            invalid.metadata.name.as_deref().unwrap_or_default()
        ),
        error = %invalid.error,
        "skipping an object that does not match its type"
    );
    let event = EventInfo {
        type_: EventType::Warning,
        reason: "InvalidObject".into(),
        note: Some(format!(
            "alertops cannot read this object and skips it until it changes: {}",
            invalid.error
        )),
        action: "Reconcile".into(),
    };
    if let Err(e) = ctx.cluster.publish_event_regarding(&reference, event).await {
        warn!(error = %e, "could not publish an event");
    }
}

/// The resources in `store` that list `policy` as a source (same namespace, by name).
fn referring<K>(
    store: &Store<DeserializeGuard<K>>,
    policy: &DeserializeGuard<AlarmPolicy>,
    sources: impl Fn(&K) -> &Vec<SourceRef>,
) -> Vec<ObjectRef<DeserializeGuard<K>>>
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
            r.0.as_ref().is_ok_and(|r| {
                sources(r)
                    .iter()
                    .any(|s| s.alarm_policy.as_deref() == Some(name.as_str()))
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The annotation `kubectl apply` writes: a copy of the whole last-applied manifest.
    const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

    #[test]
    fn the_cache_keeps_spec_status_and_alertops_annotations_but_not_managed_fields_labels_or_other_annotations()
     {
        let mut policy: AlarmPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1",
            "kind": "AlarmPolicy",
            "metadata": {
                "name": "elb", "namespace": "team",
                "annotations": {LAST_APPLIED: "{\"spec\":{}}", "alertops.dev/adopt": "true",
                                "argocd.argoproj.io/tracking-id": "team:alertops.dev/AlarmPolicy:team/elb"},
                "labels": {"app.kubernetes.io/instance": "team"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"alarms": []},
            "status": {"alarmCount": 3}
        }))
        .unwrap();
        strip_unread(&mut policy);
        assert_eq!(policy.metadata.managed_fields, None);
        let annotations = policy.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations.len(), 1, "{annotations:?}");
        assert_eq!(annotations["alertops.dev/adopt"], "true");
        assert_eq!(policy.metadata.labels, None);
        assert_eq!(policy.status.unwrap().alarm_count, 3);
    }
}
