//! A fleet of many small AlarmPolicies through the controller's inventory, against the emulator
//! behind a proxy that enforces AWS's per-API CloudWatch quotas ([`QuotaProxy`]), every quota
//! and every alertops rate multiplied by one factor so that the run fits on this machine:
//!
//! - first creation of every alarm: throttles (target 0) and time ÷ (alarms ÷ PutMetricAlarm
//!   rate), the quota's own minimum (target ≤ 1.1);
//! - no-op resync of the whole fleet in a new inventory generation: AWS calls in all (target
//!   ≤ ceil(alarms / 100) + 10), writes and throttles (target 0).
//!
//! Policies are reconciled as many at a time as the controller runs them
//! ([`alertops::controller::RECONCILE_CONCURRENCY`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alertops::aws::{AwsApi, AwsSettings, CallOutcome, Inventory, SnsTopics};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::reconcile::{Context, OperatorSettings, alarm_policy};
use alertops::resources::AlarmPolicy;
use futures::{TryStreamExt, stream};
use serde_json::json;

use crate::Row;
use crate::emulator::{self, Moto};
use crate::policies;
use crate::quota_proxy::QuotaProxy;

/// How big a fleet, and the factor applied to AWS's quotas and alertops' rates alike.
pub struct Scale {
    /// AlarmPolicies.
    pub policies: usize,
    /// Alarms in each.
    pub alarms: usize,
    /// Quota multiplier.
    pub factor: u32,
}

impl Scale {
    /// 1,000 policies × 10 alarms at 10 × AWS's quotas (PutMetricAlarm 30/s): about six
    /// minutes of creation. At × 30 the emulator (moto and the CloudWatch translator, Python
    /// processes on this 2-core machine) could not serve 90 PutMetricAlarm/s with the reads
    /// around them: the quota was no longer what the run measured (more reconciles in flight
    /// made it slower). `ALERTOPS_BENCH_FLEET_POLICIES` makes the fleet smaller for a trial,
    /// `ALERTOPS_BENCH_FLEET_FACTOR` sets another factor.
    pub fn full() -> Scale {
        let policies = std::env::var("ALERTOPS_BENCH_FLEET_POLICIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000);
        Scale {
            policies,
            alarms: 10,
            factor: std::env::var("ALERTOPS_BENCH_FLEET_FACTOR")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10),
        }
    }
}

/// Policies reconciled at once: as many as the controller runs.
const CONCURRENCY: usize = alertops::controller::RECONCILE_CONCURRENCY as usize;

/// Every API's default rate and burst times `factor`.
fn scaled_settings(factor: u32) -> AwsSettings {
    AwsApi::ALL
        .into_iter()
        .fold(AwsSettings::default(), |settings, api| {
            let rate = api.default_rate();
            settings.with_rate(
                api,
                alertops::aws::ApiRate::per_second(rate.per_second.get() * factor)
                    .with_burst(rate.burst.get() * factor),
            )
        })
}

/// Creates the fleet, then resyncs it; reports both.
pub async fn measure(moto: &Moto, scale: Scale) -> Result<Vec<Row>, String> {
    let proxy = QuotaProxy::start(
        moto.cloudwatch_endpoint(),
        moto.endpoint(),
        f64::from(scale.factor),
    )
    .await?;
    let aws = emulator::clients_at(&proxy.endpoint, scaled_settings(scale.factor))
        .await
        .with_cloudwatch_endpoint(&proxy.endpoint);
    let cluster_id = format!("fleet{}", std::process::id());
    let inventory = Inventory::new(aws.clone(), &cluster_id, Duration::from_secs(600));
    let cluster = MemoryCluster::new();
    let ctx = Context::new(
        cluster.clone(),
        inventory.clone(),
        OperatorSettings::new(cluster_id),
    );
    let namespace = "fleet";
    let names: Vec<String> = (0..scale.policies).map(|p| format!("svc-{p:04}")).collect();
    for (p, name) in names.iter().enumerate() {
        cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlarmPolicy",
                "metadata": {"name": name, "namespace": namespace},
                "spec": policies::spec(p, scale.alarms),
            }))
            .map_err(|e| format!("apply policy {name}: {e}"))?;
    }
    let total = scale.policies * scale.alarms;
    let put_rate = f64::from(AwsApi::PutMetricAlarm.default_rate().per_second.get() * scale.factor);

    // First pass adds the finalizer, second creates: both timed, as a first install.
    let started = Instant::now();
    for _ in 0..2 {
        reconcile_all(&cluster, &ctx, namespace, &names).await?;
    }
    let creation = started.elapsed();
    let (forwarded, refused) = proxy.counts();
    let puts = forwarded.get("PutMetricAlarm").copied().unwrap_or(0);
    if puts < total {
        return Err(format!("the first install made {puts} of {total} alarms"));
    }
    // Where creation time goes: before the first PutMetricAlarm, between the first and the last
    // (the quota's own part), after the last.
    let (first_put, last_put) = proxy
        .span("PutMetricAlarm")
        .ok_or("no PutMetricAlarm was forwarded")?;
    let creation_phases = format!(
        "{:.1} s before the first PutMetricAlarm, {:.1} s from first to last, {:.1} s after",
        first_put.duration_since(started).as_secs_f64(),
        last_put.duration_since(first_put).as_secs_f64(),
        (started + creation)
            .saturating_duration_since(last_put)
            .as_secs_f64()
    );
    for (op, (first, last)) in proxy.spans() {
        eprintln!(
            "creation {op}: {} calls, {:.1} s to {:.1} s",
            forwarded.get(&op).copied().unwrap_or(0),
            first.duration_since(started).as_secs_f64(),
            last.duration_since(started).as_secs_f64()
        );
    }
    let creation_throttles: usize = refused.values().sum::<usize>() + sdk_throttles(&aws);
    let ideal = total as f64 / put_rate;
    let ratio = creation.as_secs_f64() / ideal;

    // What a resync costs by construction: one listing of the cluster's alarms (pages of 100)
    // and one of the account's topics (pages of 100); nothing per policy.
    let topics = aws
        .all_topic_arns()
        .await
        .map_err(|e| format!("list topics: {e}"))?
        .len();
    let expected_calls = total.div_ceil(100) + topics.div_ceil(100);

    // A resync: the controller's tick starts a new generation and reconciles every policy.
    inventory.invalidate().await;
    proxy.reset();
    aws.call_log().reset();
    let resynced = Instant::now();
    reconcile_all(&cluster, &ctx, namespace, &names).await?;
    let resync_time = resynced.elapsed();
    let records = aws.call_log().snapshot();
    let writes: Vec<String> = aws
        .call_log()
        .writes()
        .into_iter()
        .map(|r| r.operation)
        .collect();
    let (_, refused) = proxy.counts();
    let resync_throttles = refused.values().sum::<usize>() + sdk_throttles(&aws);
    let call_target = total.div_ceil(100) + 10;
    let mut by_operation = std::collections::BTreeMap::<&str, usize>::new();
    for record in &records {
        *by_operation.entry(record.operation.as_str()).or_default() += 1;
    }
    let breakdown = by_operation
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ");

    let fleet = format!("{} policies × {} alarms", scale.policies, scale.alarms);
    Ok(vec![
        Row::info(
            "  fleet quotas: AWS's per-API quotas and alertops' rates ×",
            scale.factor.to_string(),
        ),
        Row::checked(
            format!("first creation of {total} alarms: throttles"),
            creation_throttles.to_string(),
            "0",
            creation_throttles == 0,
        ),
        Row::checked(
            format!("first creation of {total} alarms: time ÷ (N ÷ PutMetricAlarm rate)"),
            format!(
                "{ratio:.3} ({:.1} s vs {ideal:.1} s at {put_rate}/s)",
                creation.as_secs_f64()
            ),
            "<= 1.1",
            ratio <= 1.1,
        ),
        Row::info("  creation time", creation_phases),
        Row::checked(
            format!("no-op resync, {fleet}: AWS calls"),
            records.len().to_string(),
            format!("<= {call_target}"),
            records.len() <= call_target,
        ),
        Row::checked(
            format!(
                "  by construction: {} DescribeAlarms + {} ListTopics pages ({topics} topics)",
                total.div_ceil(100),
                topics.div_ceil(100)
            ),
            records.len().to_string(),
            format!("= {expected_calls}"),
            records.len() == expected_calls,
        ),
        Row::info("  resync calls by operation", breakdown),
        Row::checked(
            format!("no-op resync, {fleet}: writes, throttles"),
            format!("{}, {resync_throttles}", writes.len()),
            "0, 0",
            writes.is_empty() && resync_throttles == 0,
        ),
        Row::info(
            "  resync time (scaled quotas)",
            format!("{:.2} s", resync_time.as_secs_f64()),
        ),
    ])
}

/// Throttled attempts the SDK saw (the proxy's refusals, and any from the emulator itself).
fn sdk_throttles(aws: &alertops::aws::AwsClients) -> usize {
    aws.call_log()
        .snapshot()
        .iter()
        .filter(|r| r.outcome == CallOutcome::Throttled)
        .count()
}

async fn reconcile_all(
    cluster: &MemoryCluster,
    ctx: &Context<MemoryCluster>,
    namespace: &str,
    names: &[String],
) -> Result<(), String> {
    stream::iter(names.iter().map(Ok))
        .try_for_each_concurrent(CONCURRENCY, |name| async move {
            let policy = cluster
                .get::<AlarmPolicy>(namespace, name)
                .await
                .map_err(|e| format!("get {name}: {e}"))?
                .ok_or_else(|| format!("{name} is gone"))?;
            alarm_policy::reconcile(Arc::new(policy), ctx)
                .await
                .map(|_| ())
                .map_err(|e| format!("reconcile {name}: {e}"))
        })
        .await
}
