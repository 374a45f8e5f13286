//! The kube-runtime wiring of `alertops controller`, kept thin: watch the resources, call the
//! reconcilers with the real Kubernetes client behind [`crate::k8s::ClusterApi`], back off on
//! errors, stop on SIGTERM, and run only while holding the leader Lease.

use std::sync::Arc;

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
    Api::<AlarmPolicy>::all(client.clone())
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(ControllerError::CrdsMissing)?;

    let aws = AwsClients::from_env(AwsSettings::default()).await;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("alertops-{}", std::process::id()));
    let cluster = KubeCluster::with_reporter(client.clone(), Some(identity.clone()));
    let ctx = Arc::new(Context::new(cluster, aws, settings));

    let controllers = run_controllers(client.clone(), ctx);
    let lease =
        crate::k8s::leader::LeaseConfig::new(&args.lease_name, &args.lease_namespace, &identity);
    crate::k8s::leader::run_while_leader(client, &lease, controllers)
        .await
        .map_err(|e| ControllerError::Leadership(e.to_string()))
}

async fn run_controllers(client: Client, ctx: Arc<Context<KubeCluster>>) {
    info!("controllers started");
    let policies = Controller::new(
        Api::<AlarmPolicy>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .shutdown_on_signal()
    .run(
        |policy, ctx: Arc<Context<KubeCluster>>| async move {
            alarm_policy::reconcile(policy, &ctx).await
        },
        |policy, error: &ReconcileError, ctx| on_error(&*policy, error, &ctx),
        ctx.clone(),
    )
    .for_each(log_result);

    // Only the workloads alertops made: the owner references route their changes (a consumer
    // becoming ready) to the owning resource.
    let owned = watcher::Config::default()
        .labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"))
        .any_semantic();

    let routes = Controller::new(
        Api::<AlertRoute>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    let route_store = routes.store();
    let routes = routes
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        // A route waiting for an AlarmPolicy's topic hears of it at once instead of at backoff.
        .watches(
            Api::<AlarmPolicy>::all(client.clone()),
            watcher::Config::default().any_semantic(),
            move |policy| referring(&route_store, &policy, |r: &AlertRoute| &r.spec.sources),
        )
        .shutdown_on_signal()
        .run(
            |route, ctx: Arc<Context<KubeCluster>>| async move {
                alert_route::reconcile(route, &ctx).await
            },
            |route, error: &ReconcileError, ctx| on_error(&*route, error, &ctx),
            ctx.clone(),
        )
        .for_each(log_result);

    let digests = Controller::new(
        Api::<DigestSchedule>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    let digest_store = digests.store();
    let digests = digests
        .owns(Api::<CronJob>::all(client.clone()), owned)
        .watches(
            Api::<AlarmPolicy>::all(client),
            watcher::Config::default().any_semantic(),
            move |policy| referring(&digest_store, &policy, |d: &DigestSchedule| &d.spec.sources),
        )
        .shutdown_on_signal()
        .run(
            |digest, ctx: Arc<Context<KubeCluster>>| async move {
                digest_schedule::reconcile(digest, &ctx).await
            },
            |digest, error: &ReconcileError, ctx| on_error(&*digest, error, &ctx),
            ctx,
        )
        .for_each(log_result);

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

async fn log_result<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(e) = result {
        warn!(error = %e, "controller event");
    }
}
