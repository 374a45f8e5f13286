//! No-op resync of one AlarmPolicy of 1,000 alarms through the real reconciler: how many
//! DescribeAlarms calls and writes the second reconcile makes. (The CRD caps a policy at 500
//! alarms; the reconciler has no such cap, and 1,000 exercises the paging the target is about.)
//!
//! CloudWatch answers through the emulator's CBOR translator, which pages DescribeAlarms as
//! CloudWatch does (`MaxRecords` up to 100, default 50, `NextToken`; moto itself ignores
//! `MaxRecords`), so the pages counted are real.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alertops::aws::{ApiRate, AwsSettings};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::reconcile::{Context, OperatorSettings, alarm_policy};
use alertops::resources::AlarmPolicy;
use serde_json::json;

use crate::Row;
use crate::emulator::Moto;
use crate::policies;

/// Alarms in the policy.
const ALARMS: usize = 1_000;
/// CloudWatch's largest DescribeAlarms page.
const MAX_PAGE: usize = 100;

/// Creates the alarms, resyncs, and reports the second reconcile's calls.
pub async fn measure(moto: &Moto) -> Result<Vec<Row>, String> {
    let cluster = MemoryCluster::new();
    let settings = OperatorSettings {
        resync_interval: Duration::from_secs(600),
        ..OperatorSettings::new(format!("bench{}", std::process::id()))
    };
    // Creating 1,000 alarms at production rates takes minutes; the resync runs at them.
    let generous = AwsSettings::default().with_all_rates(ApiRate::per_second(10_000));
    let setup = Context::new(
        cluster.clone(),
        moto.clients(generous).await,
        settings.clone(),
    );
    let production_aws = moto.clients(AwsSettings::default()).await;
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
