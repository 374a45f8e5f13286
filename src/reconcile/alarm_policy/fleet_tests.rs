//! The AlarmPolicy reconciler over the controller's inventory ([`crate::aws::Inventory`]) and
//! the in-memory AWS: a resync of many policies lists each kind once, and drift made behind the
//! controller's back is repaired in the next generation.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{KIND, reconcile};
use crate::aws::Inventory;
use crate::aws::fake::FakeAws;
use crate::k8s::MemoryCluster;
use crate::reconcile::{Context, OperatorSettings};
use crate::resources::AlarmPolicy;

const CLUSTER: &str = "test";

fn count(aws: &FakeAws, operation: &str) -> usize {
    aws.calls().iter().filter(|c| *c == operation).count()
}

struct Fleet {
    cluster: MemoryCluster,
    aws: FakeAws,
    inventory: Inventory<FakeAws>,
    ctx: Context<MemoryCluster>,
    names: Vec<String>,
}

impl Fleet {
    /// `policies` AlarmPolicies of `alarms` alarms each, no rules.
    fn new(policies: usize, alarms: usize) -> Fleet {
        let cluster = MemoryCluster::new();
        let aws = FakeAws::new();
        let inventory = Inventory::new(aws.clone(), CLUSTER, Duration::from_secs(600));
        let ctx = Context::new(
            cluster.clone(),
            inventory.clone(),
            OperatorSettings::new(CLUSTER),
        );
        for p in 0..policies {
            let alarms: Vec<_> = (0..alarms)
                .map(|a| {
                    json!({
                        "name": format!("a{a}"),
                        "metric": {"namespace": "AWS/ELB", "name": "Errors", "statistic": "Sum"},
                        "period": 60, "evaluationPeriods": 1, "threshold": a,
                        "comparison": "GreaterThanThreshold"
                    })
                })
                .collect();
            cluster
                .apply_manifest(json!({
                    "apiVersion": "alertops.dev/v1alpha1",
                    "kind": "AlarmPolicy",
                    "metadata": {"name": format!("p{p}"), "namespace": "team"},
                    "spec": {"tags": {"Team": "web"}, "alarms": alarms}
                }))
                .expect("manifest applies");
        }
        Fleet {
            cluster,
            aws,
            inventory,
            ctx,
            names: (0..policies).map(|p| format!("p{p}")).collect(),
        }
    }

    fn policies(&self) -> Vec<AlarmPolicy> {
        self.names
            .iter()
            .map(|name| {
                self.cluster
                    .object::<AlarmPolicy>("team", name)
                    .expect("read")
                    .expect("exists")
            })
            .collect()
    }

    /// Reconciles every policy; a finalizer is added on the first pass, so it runs twice.
    async fn reconcile_all(&self) {
        for _ in 0..2 {
            for policy in self.policies() {
                reconcile(Arc::new(policy), &self.ctx)
                    .await
                    .expect("reconciled");
            }
        }
    }
}

#[tokio::test]
async fn a_resync_of_many_policies_lists_each_kind_once_and_writes_nothing() {
    let fleet = Fleet::new(20, 3);
    fleet.reconcile_all().await;
    assert_eq!(fleet.aws.alarm_names().len(), 60);

    fleet.aws.clear_calls();
    fleet.inventory.invalidate().await;
    fleet.reconcile_all().await;
    assert_eq!(fleet.aws.writes(), Vec::<String>::new());
    assert_eq!(
        count(&fleet.aws, "DescribeAlarms"),
        1,
        "{:?}",
        fleet.aws.calls()
    );
    assert_eq!(count(&fleet.aws, "ListTopics"), 1);
    // Policies without rules list none; topic details were read at creation.
    assert_eq!(fleet.aws.calls().len(), 2, "{:?}", fleet.aws.calls());
}

#[tokio::test]
async fn an_alarm_changed_behind_the_controllers_back_is_repaired_in_the_next_generation() {
    let fleet = Fleet::new(2, 2);
    fleet.reconcile_all().await;
    let name = crate::names::OwnerIdentity::new(CLUSTER, KIND, "team", "p1").alarm_name("a1");
    let (mut definition, tags) = fleet.aws.alarm(&name).expect("created");
    let wanted = definition.threshold;
    definition.threshold = 999.0;
    fleet.aws.insert_alarm(definition, tags);

    // Within the generation the listing is what was read: no call, no repair yet.
    fleet.aws.clear_calls();
    fleet.reconcile_all().await;
    assert_eq!(fleet.aws.calls(), Vec::<String>::new());

    // The resync tick starts a new generation: the drift is seen and repaired.
    fleet.inventory.invalidate().await;
    fleet.reconcile_all().await;
    assert_eq!(fleet.aws.alarm(&name).expect("kept").0.threshold, wanted);
    assert_eq!(fleet.aws.writes(), ["PutMetricAlarm"]);
}
