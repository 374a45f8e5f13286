//! The kube-runtime wiring of `alertops controller`, kept thin: watch the resources, call the
//! reconcilers with the real Kubernetes client behind [`crate::k8s::ClusterApi`], back off on
//! errors, stop on SIGTERM, and run only while holding the leader Lease.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::registry::Registry;

use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tracing::{info, warn};

use crate::aws::{AwsClients, AwsSettings};
use crate::cli::ControllerArgs;
use crate::k8s::KubeCluster;
use crate::reconcile::{Context, ReconcileError, alarm_policy};
use crate::resources::AlarmPolicy;
use crate::telemetry::{self, Readiness, ReconcileMetrics};

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
    let mut registry = Registry::default();
    reconcile_metrics.register(&mut registry);
    aws.metrics().register(&mut registry);
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

    let controllers = run_controllers(client.clone(), args.watch_namespace.clone(), ctx);
    let lease =
        crate::k8s::leader::LeaseConfig::new(&args.lease_name, &args.lease_namespace, &identity);
    let result = crate::k8s::leader::run_while_leader(client, &lease, controllers)
        .await
        .map_err(|e| ControllerError::Leadership(e.to_string()));
    server.abort();
    result
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
) {
    info!("controllers started");
    Controller::new(
        api::<AlarmPolicy>(&client, namespace.as_deref()),
        watcher::Config::default().any_semantic(),
    )
    .shutdown_on_signal()
    .run(
        |policy, ctx: Arc<Context<KubeCluster>>| async move {
            let started = Instant::now();
            let result = alarm_policy::reconcile(policy, &ctx).await;
            let failure = result.as_ref().err().map(ReconcileError::category);
            ctx.metrics
                .observe(alarm_policy::KIND, started.elapsed().as_secs_f64(), failure);
            result
        },
        |policy, error: &ReconcileError, ctx| {
            let key = format!(
                "AlarmPolicy/{}/{}",
                policy.namespace().unwrap_or_default(),
                policy.name_any()
            );
            warn!(resource = %key, category = error.category(), error = %error, "reconcile failed");
            ctx.failed(&key, error)
        },
        ctx,
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            warn!(error = %e, "controller event");
        }
    })
    .await;
    info!("controllers stopped");
}
