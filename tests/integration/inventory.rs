//! The controller's cluster-wide inventory against the AWS emulator: a resync of several
//! policies lists alarms and topics once, and an alarm edited or deleted behind the
//! controller's back is repaired in the next generation (the controller starts one every
//! resync period).

use std::sync::Arc;
use std::time::Duration;

use alertops::aws::{AlarmDefinition, AlarmMetric, AwsClients, CloudWatchAlarms, Inventory};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::reconcile::{Context, OperatorSettings, alarm_policy};
use alertops::resources::AlarmPolicy;
use serde_json::json;

use crate::harness;

const POLICIES: [&str; 3] = ["web", "api", "jobs"];

struct Fleet {
    cluster: MemoryCluster,
    ctx: Context<MemoryCluster>,
    aws: AwsClients,
    inventory: Inventory<AwsClients>,
    cluster_id: String,
    namespace: String,
}

impl Fleet {
    async fn new() -> Fleet {
        let cluster = MemoryCluster::new();
        let cluster_id = harness::unique("inv").to_lowercase();
        let aws = harness::aws_clients().await;
        let inventory = Inventory::new(aws.clone(), &cluster_id, Duration::from_secs(600));
        let ctx = Context::new(
            cluster.clone(),
            inventory.clone(),
            OperatorSettings::new(cluster_id.clone()),
        );
        let namespace = harness::unique("ns").to_lowercase();
        let alarms: Vec<_> = ["errors", "latency"]
            .map(|alarm| {
                json!({
                    "name": alarm,
                    "metric": {"namespace": "AWS/ELB", "name": "Errors", "statistic": "Sum"},
                    "period": 60, "evaluationPeriods": 1, "threshold": 10,
                    "comparison": "GreaterThanThreshold"
                })
            })
            .into();
        for name in POLICIES {
            cluster
                .apply_manifest(json!({
                    "apiVersion": "alertops.dev/v1alpha1",
                    "kind": "AlarmPolicy",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "tags": {"Team": "web"},
                        "alarms": alarms
                    }
                }))
                .expect("manifest applies");
        }
        Fleet {
            cluster,
            ctx,
            aws,
            inventory,
            cluster_id,
            namespace,
        }
    }

    /// One resync: every policy reconciled (twice on the first pass, which adds the finalizer).
    async fn reconcile_all(&self) {
        for _ in 0..2 {
            for name in POLICIES {
                let policy: AlarmPolicy = self
                    .cluster
                    .get(&self.namespace, name)
                    .await
                    .expect("get")
                    .expect("exists");
                alarm_policy::reconcile(Arc::new(policy), &self.ctx)
                    .await
                    .expect("reconcile succeeds");
            }
        }
    }

    fn alarm_name(&self, policy: &str, alarm: &str) -> String {
        format!(
            "alertops/{}/{}/{policy}/{alarm}",
            self.cluster_id, self.namespace
        )
    }

    async fn threshold(&self, name: &str) -> Option<f64> {
        let alarms = self.aws.alarms_with_prefix(name).await.expect("described");
        alarms
            .into_iter()
            .find(|a| a.definition.alarm_name == name)
            .map(|a| a.definition.threshold)
    }
}

#[tokio::test]
async fn a_resync_lists_once_and_repairs_what_was_changed_behind_its_back() {
    let fleet = Fleet::new().await;
    fleet.reconcile_all().await;
    let calls = fleet.aws.call_log();

    // A new generation with nothing changed: one DescribeAlarms page and one ListTopics for
    // every policy, no writes.
    fleet.inventory.invalidate().await;
    calls.reset();
    fleet.reconcile_all().await;
    assert_eq!(calls.count("DescribeAlarms"), 1);
    assert_eq!(calls.count("ListTopics"), 1);
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    assert_eq!(calls.snapshot().len(), 2, "{:?}", calls.snapshot());

    // Someone edits one alarm and deletes another in the console.
    let edited = fleet.alarm_name("web", "errors");
    let deleted = fleet.alarm_name("jobs", "latency");
    let mut definition = fleet
        .aws
        .alarms_with_prefix(&edited)
        .await
        .expect("described")
        .remove(0)
        .definition;
    definition.threshold = 999.0;
    fleet
        .aws
        .put_alarm(&definition, None)
        .await
        .expect("edited");
    fleet
        .aws
        .delete_alarms(std::slice::from_ref(&deleted))
        .await
        .expect("deleted");

    // Within the generation the controller does not see it (and makes no call)...
    calls.reset();
    fleet.reconcile_all().await;
    assert!(calls.snapshot().is_empty(), "{:?}", calls.snapshot());
    assert_eq!(fleet.threshold(&edited).await, Some(999.0));

    // ...and at the next resync it repairs both.
    fleet.inventory.invalidate().await;
    calls.reset();
    fleet.reconcile_all().await;
    assert_eq!(fleet.threshold(&edited).await, Some(10.0));
    assert_eq!(fleet.threshold(&deleted).await, Some(10.0));
    let writes: Vec<String> = calls.writes().into_iter().map(|c| c.operation).collect();
    assert_eq!(writes, ["PutMetricAlarm", "PutMetricAlarm"]);
}

/// 130 alarms in three policy folders, listed in two DescribeAlarms pages (the CloudWatch
/// translator pages by 100, as CloudWatch does): the inventory packs them page by page, a
/// folder split across the pages comes back whole, and every folder reads its own alarms.
#[tokio::test]
async fn a_listing_of_several_pages_serves_every_policy_its_own_alarms() {
    let aws = harness::aws_clients().await;
    let cluster_id = harness::unique("pages").to_lowercase();
    let root = format!("alertops/{cluster_id}/ns/");
    let folders = [("a", 50), ("b", 60), ("c", 20)];
    for (folder, count) in folders {
        for i in 0..count {
            aws.put_alarm(&definition(&format!("{root}{folder}/alarm-{i:03}")), None)
                .await
                .expect("put");
        }
    }
    let inventory = Inventory::new(aws.clone(), &cluster_id, Duration::from_secs(600));
    let calls = aws.call_log();
    calls.reset();
    for (folder, count) in folders {
        let listed = inventory
            .alarms_with_prefix(&format!("{root}{folder}/"))
            .await
            .expect("listed");
        let names: Vec<String> = listed
            .iter()
            .map(|a| a.definition.alarm_name.clone())
            .collect();
        let expected: Vec<String> = (0..count)
            .map(|i| format!("{root}{folder}/alarm-{i:03}"))
            .collect();
        assert_eq!(names, expected, "folder {folder}");
        assert_eq!(listed[0].definition, definition(&expected[0]));
    }
    assert_eq!(calls.count("DescribeAlarms"), 2, "{:?}", calls.snapshot());
}

fn definition(name: &str) -> AlarmDefinition {
    AlarmDefinition {
        alarm_name: name.to_string(),
        description: Some("five errors a minute".into()),
        actions_enabled: true,
        alarm_actions: Vec::new(),
        ok_actions: Vec::new(),
        insufficient_data_actions: Vec::new(),
        metric: AlarmMetric::Single {
            namespace: "AWS/ELB".into(),
            name: "Errors".into(),
            dimensions: vec![("LoadBalancerName".into(), "web".into())],
            statistic: Some("Sum".into()),
            extended_statistic: None,
            period: 60,
            unit: None,
        },
        evaluation_periods: 1,
        datapoints_to_alarm: 1,
        threshold: 5.0,
        threshold_metric_id: None,
        comparison: "GreaterThanThreshold".into(),
        treat_missing_data: "missing".into(),
    }
}
