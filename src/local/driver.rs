//! Reconciling everything in a [`MemoryCluster`] until it settles, the way the controller would.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use tracing::{info, warn};

use crate::k8s::MemoryCluster;
use crate::lint::manifests::{DocumentClass, load_path};
use crate::lint::schema::SchemaValidator;
use crate::reconcile::{Context, ReconcileError, alarm_policy, alert_route, digest_schedule};
use crate::resources::{AlarmPolicy, AlertRoute, DigestSchedule};

/// Why manifests could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The folder could not be read.
    #[error(transparent)]
    Read(#[from] crate::lint::LintError),
    /// A manifest is invalid; nothing was loaded.
    #[error("invalid manifests:\n{0}")]
    Invalid(String),
    /// The in-memory API server refused a manifest.
    #[error("{origin}: {error}")]
    Rejected {
        /// File and document.
        origin: String,
        /// Why.
        error: crate::k8s::ClusterError,
    },
}

/// What one pass over every resource did.
#[derive(Debug, Default)]
pub struct ReconcileSummary {
    /// Resources reconciled.
    pub reconciled: usize,
    /// Resources whose reconcile failed, with the error.
    pub failed: Vec<(String, String)>,
}

/// Drives the reconcilers over a [`MemoryCluster`].
pub struct LocalDriver {
    /// The in-memory API server.
    pub cluster: MemoryCluster,
    /// The reconcilers' context.
    pub ctx: Arc<Context<MemoryCluster>>,
}

impl LocalDriver {
    /// A driver over a context whose cluster is a [`MemoryCluster`].
    pub fn new(ctx: Arc<Context<MemoryCluster>>) -> Self {
        LocalDriver {
            cluster: ctx.cluster.clone(),
            ctx,
        }
    }

    /// Loads every manifest of a file or folder (Secrets included), after validating the alertops
    /// ones against the CRD schemas exactly as `alertops lint` does. All or nothing.
    pub fn load(&self, path: &Path) -> Result<usize, LoadError> {
        let loaded = load_path(path)?;
        let validator = SchemaValidator::new().map_err(LoadError::Read)?;
        let report = crate::lint::lint_manifests(&loaded, &validator);
        if report.has_errors() {
            return Err(LoadError::Invalid(report.render()));
        }
        let mut count = 0;
        for document in &loaded.documents {
            if matches!(document.class, DocumentClass::NotAManifest) {
                continue;
            }
            self.cluster
                .apply_manifest(document.value.clone())
                .map_err(|error| LoadError::Rejected {
                    origin: document.origin.to_string(),
                    error,
                })?;
            count += 1;
        }
        Ok(count)
    }

    /// Reconciles every resource once.
    pub async fn reconcile_all(&self) -> ReconcileSummary {
        let mut summary = ReconcileSummary::default();
        let policies = self.cluster.list_all::<AlarmPolicy>().unwrap_or_default();
        for policy in policies {
            let key = format!(
                "AlarmPolicy/{}/{}",
                policy.namespace().unwrap_or_default(),
                policy.name_any()
            );
            let started = Instant::now();
            let result = alarm_policy::reconcile(Arc::new(policy), &self.ctx).await;
            self.record(
                &key,
                alarm_policy::KIND,
                started,
                result.err(),
                &mut summary,
            );
        }
        // Routes and schedules after policies: their sources are the policies' topics.
        for route in self.cluster.list_all::<AlertRoute>().unwrap_or_default() {
            let key = format!(
                "AlertRoute/{}/{}",
                route.namespace().unwrap_or_default(),
                route.name_any()
            );
            let started = Instant::now();
            let result = alert_route::reconcile(Arc::new(route), &self.ctx).await;
            self.record(&key, alert_route::KIND, started, result.err(), &mut summary);
        }
        for schedule in self
            .cluster
            .list_all::<DigestSchedule>()
            .unwrap_or_default()
        {
            let key = format!(
                "DigestSchedule/{}/{}",
                schedule.namespace().unwrap_or_default(),
                schedule.name_any()
            );
            let started = Instant::now();
            let result = digest_schedule::reconcile(Arc::new(schedule), &self.ctx).await;
            self.record(
                &key,
                digest_schedule::KIND,
                started,
                result.err(),
                &mut summary,
            );
        }
        summary
    }

    fn record(
        &self,
        key: &str,
        kind: &str,
        started: Instant,
        error: Option<ReconcileError>,
        summary: &mut ReconcileSummary,
    ) {
        summary.reconciled += 1;
        let failure = error.as_ref().map(ReconcileError::category);
        self.ctx
            .metrics
            .observe(kind, started.elapsed().as_secs_f64(), failure);
        if let Some(error) = error {
            warn!(resource = key, error = %error, "reconcile failed");
            summary.failed.push((key.to_string(), error.to_string()));
        }
    }

    /// Reconciles until a pass changes nothing in the cluster (statuses settle, sources appear),
    /// or `max_passes` passes were made. Returns the last pass.
    pub async fn settle(&self, max_passes: usize) -> ReconcileSummary {
        let mut summary = ReconcileSummary::default();
        for pass in 1..=max_passes {
            let before = self.cluster.revision();
            summary = self.reconcile_all().await;
            if self.cluster.revision() == before && summary.failed.is_empty() {
                info!(pass, "local resources settled");
                break;
            }
        }
        summary
    }

    /// Keeps reconciling: after every change in the cluster, and at least every `resync`.
    pub async fn run(&self, resync: Duration, shutdown: impl Future<Output = ()>) {
        let mut changes = self.cluster.subscribe();
        tokio::pin!(shutdown);
        loop {
            self.settle(10).await;
            changes.borrow_and_update();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = changes.changed() => {}
                _ = tokio::time::sleep(resync) => {}
            }
        }
    }
}
