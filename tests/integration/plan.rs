//! `alertops plan`, the real binary against the AWS emulator: state made by the reconcilers,
//! then the plan of changed manifests, read-only.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use alertops::aws::{AwsClients, CloudWatchAlarms, EventBridgeRules, SqsQueues};
use alertops::k8s::MemoryCluster;
use alertops::names::OwnerIdentity;
use alertops::reconcile::{Context, OperatorSettings, alarm_policy, alert_route};
use alertops::resources::{AlarmPolicy, AlertRoute, Tags};
use serde_json::{Value, json};

use crate::harness;

/// One alarm of the policy, with its threshold.
fn alarm(name: &str, threshold: f64) -> Value {
    json!({
        "name": name,
        "severity": "High",
        "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors",
                   "dimensions": {"LoadBalancerName": "broker"}, "statistic": "Sum"},
        "period": 60, "evaluationPeriods": 5, "datapointsToAlarm": 3,
        "threshold": threshold,
        "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
    })
}

fn policy(namespace: &str, alarms: Vec<Value>) -> Value {
    json!({
        "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicy",
        "metadata": {"name": "broker-elb", "namespace": namespace},
        "spec": {"tags": {"Team": "platform"}, "alarms": alarms,
                 "eventRules": [{"name": "emr-failed", "preset": "EmrClusterFailed"}]}
    })
}

fn route(namespace: &str) -> Value {
    json!({
        "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
        "metadata": {"name": "broker-alarms", "namespace": namespace},
        "spec": {"sources": [{"alarmPolicy": "broker-elb"}],
                 "slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}
    })
}

/// A cluster id and namespace of their own, the state the reconcilers made for `manifests`,
/// and the AWS clients that see it.
struct Fixture {
    settings: OperatorSettings,
    namespace: String,
    aws: AwsClients,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Reconciles `manifests` (policies first) into the emulator.
    async fn reconciled(manifests: &[fn(&str) -> Value]) -> Fixture {
        let settings = OperatorSettings::new(harness::unique("plan").to_lowercase());
        let namespace = harness::unique("ns").to_lowercase();
        let aws = harness::aws_clients().await;
        let cluster = MemoryCluster::new();
        let ctx = Context::new(cluster.clone(), aws.clone(), settings.clone());
        for manifest in manifests {
            cluster.apply_manifest(manifest(&namespace)).unwrap();
        }
        for policy in cluster.list_all::<AlarmPolicy>().unwrap() {
            alarm_policy::reconcile(Arc::new(policy), &ctx)
                .await
                .expect("the policy reconciles");
        }
        for route in cluster.list_all::<AlertRoute>().unwrap() {
            alert_route::reconcile(Arc::new(route), &ctx)
                .await
                .expect("the route reconciles");
        }
        Fixture {
            settings,
            namespace,
            aws,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn policy_owner(&self) -> OwnerIdentity {
        OwnerIdentity::new(
            &self.settings.cluster_id,
            alarm_policy::KIND,
            &self.namespace,
            "broker-elb",
        )
    }

    /// Writes the manifests the plan reads.
    fn write(&self, manifests: &[Value]) {
        let text: Vec<String> = manifests
            .iter()
            .map(|m| serde_yaml_ng::to_string(m).unwrap())
            .collect();
        std::fs::write(self.dir.path().join("manifests.yaml"), text.join("---\n")).unwrap();
    }

    /// Runs `alertops plan` on the manifests: exit code, stdout, stderr.
    async fn plan(&self, extra: &[&str]) -> (i32, String, String) {
        plan_binary(self.dir.path(), &self.settings.cluster_id, extra).await
    }

    /// What AWS holds of the policy and the route, to compare before and after a plan.
    async fn state(&self) -> String {
        let owner = self.policy_owner();
        let alarms = self
            .aws
            .alarms_with_prefix(&owner.alarm_prefix())
            .await
            .unwrap();
        let rules = self
            .aws
            .rules_with_prefix(&owner.rule_prefix())
            .await
            .unwrap();
        let route = OwnerIdentity::new(
            &self.settings.cluster_id,
            alert_route::KIND,
            &self.namespace,
            "broker-alarms",
        );
        let queue = self.aws.queue_url(&route.queue_name("")).await.unwrap();
        let attributes = match &queue {
            Some(url) => {
                let mut a: Vec<_> = self
                    .aws
                    .queue_attributes(url)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
                a.sort();
                a
            }
            None => Vec::new(),
        };
        format!("{alarms:?}\n{rules:?}\n{queue:?}\n{attributes:?}")
    }
}

async fn plan_binary(dir: &Path, cluster_id: &str, extra: &[&str]) -> (i32, String, String) {
    let moto = harness::moto().await;
    let output = tokio::process::Command::from({
        let mut command = Command::new(env!("CARGO_BIN_EXE_alertops"));
        command
            .arg("plan")
            .arg("-f")
            .arg(dir)
            .args(["--cluster-id", cluster_id])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", moto.cloudwatch_endpoint())
            .env("AWS_REGION", harness::REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    })
    .output()
    .await
    .expect("alertops runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn manifests_that_match_aws_plan_no_change_and_exit_0() {
    let fixture = Fixture::reconciled(&[
        |ns| policy(ns, vec![alarm("errors", 100.0), alarm("latency", 5.0)]),
        route,
    ])
    .await;
    let ns = fixture.namespace.clone();
    fixture.write(&[
        policy(&ns, vec![alarm("errors", 100.0), alarm("latency", 5.0)]),
        route(&ns),
    ]);

    let (code, out, err) = fixture.plan(&[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("No changes: AWS matches the manifests."),
        "{out}"
    );

    let (code, out, err) = fixture.plan(&["--output", "json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).expect("the JSON output parses");
    assert_eq!(plan["schemaVersion"], 1);
    assert_eq!(plan["changes"], false);
    assert_eq!(plan["clusterId"], fixture.settings.cluster_id.as_str());
    let resources = plan["resources"].as_array().unwrap();
    let of = |kind: &str| resources.iter().filter(|r| r["type"] == kind).count();
    // Topic, two alarms, one rule; two queues and one subscription.
    assert_eq!(of("SnsTopic"), 1, "{plan:#}");
    assert_eq!(of("CloudWatchAlarm"), 2, "{plan:#}");
    assert_eq!(of("EventBridgeRule"), 1, "{plan:#}");
    assert_eq!(of("SqsQueue"), 2, "{plan:#}");
    assert_eq!(of("SnsSubscription"), 1, "{plan:#}");
    assert!(
        resources.iter().all(|r| r["action"] == "noChange"),
        "{plan:#}"
    );
    assert_eq!(plan["summary"]["noChange"], 7);
    assert_eq!(plan["awsCalls"]["writes"], 0);
    assert!(plan["awsCalls"]["reads"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn changes_are_planned_field_by_field_and_nothing_is_written() {
    let fixture = Fixture::reconciled(&[
        |ns| policy(ns, vec![alarm("errors", 100.0), alarm("latency", 5.0)]),
        route,
    ])
    .await;
    let owner = fixture.policy_owner();
    // An alarm of the name alertops derives for "theirs", made by someone else (no ownership
    // tags): the plan must leave it alone.
    let existing = fixture
        .aws
        .alarms_with_prefix(&owner.alarm_prefix())
        .await
        .unwrap();
    let mut theirs = existing[0].definition.clone();
    theirs.alarm_name = owner.alarm_name("theirs");
    fixture
        .aws
        .put_alarm(
            &theirs,
            Some(&Tags::from([("Team".into(), "other".into())])),
        )
        .await
        .unwrap();

    let ns = fixture.namespace.clone();
    fixture.write(&[
        // errors: threshold 100 → 250; latency removed; new-one added; theirs declared.
        policy(
            &ns,
            vec![
                alarm("errors", 250.0),
                alarm("new-one", 1.0),
                alarm("theirs", 1.0),
            ],
        ),
        route(&ns),
    ]);
    let before = fixture.state().await;

    let (code, out, err) = fixture.plan(&[]).await;
    assert_eq!(code, 2, "changes exit 2: {out}{err}");
    let errors = owner.alarm_name("errors");
    assert!(
        out.contains(&format!(
            "~ update CloudWatch alarm {errors}\n      threshold: 100.0 → 250.0\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "+ create CloudWatch alarm {}\n",
            owner.alarm_name("new-one")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "- delete CloudWatch alarm {}\n",
            owner.alarm_name("latency")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "! not owned, left alone CloudWatch alarm {}\n",
            owner.alarm_name("theirs")
        )),
        "{out}"
    );
    assert!(out.contains("not Ready (AlarmNotOwned)"), "{out}");

    let (code, out, err) = fixture.plan(&["-o", "json"]).await;
    assert_eq!(code, 2, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).expect("the JSON output parses");
    assert_eq!(plan["changes"], true);
    let find = |name: &str| -> Value {
        plan["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is in the plan: {plan:#}"))
    };
    let updated = find(&errors);
    assert_eq!(updated["action"], "update");
    assert_eq!(updated["type"], "CloudWatchAlarm");
    assert_eq!(updated["owner"], owner.owner_tag());
    assert_eq!(
        updated["fields"],
        json!([{"field": "threshold", "old": 100.0, "new": 250.0}])
    );
    assert_eq!(find(&owner.alarm_name("new-one"))["action"], "create");
    assert_eq!(find(&owner.alarm_name("latency"))["action"], "delete");
    assert_eq!(find(&owner.alarm_name("theirs"))["action"], "notOwned");
    assert_eq!(
        plan["summary"],
        json!({"create": 1, "update": 1, "delete": 1, "adopt": 0, "noChange": 5, "notOwned": 1})
    );
    assert_eq!(plan["blocked"][0]["reason"], "AlarmNotOwned");
    assert_eq!(plan["awsCalls"]["writes"], 0);

    assert_eq!(
        fixture.state().await,
        before,
        "the plans changed nothing in AWS"
    );
}

#[tokio::test]
async fn a_fresh_folder_plans_every_creation_including_the_routes_queues() {
    let fixture = Fixture::reconciled(&[]).await;
    let ns = fixture.namespace.clone();
    fixture.write(&[policy(&ns, vec![alarm("errors", 100.0)]), route(&ns)]);
    let (code, out, err) = fixture.plan(&["-o", "json"]).await;
    assert_eq!(code, 2, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<(String, String)> = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let create = |t: &str| (t.to_string(), "create".to_string());
    assert_eq!(
        actions,
        vec![
            create("SnsTopic"),
            create("CloudWatchAlarm"),
            create("EventBridgeRule"),
            create("SqsQueue"),
            create("SqsQueue"),
            create("SnsSubscription"),
        ],
        "{plan:#}"
    );
    let queue = &plan["resources"][4];
    let redrive = queue["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "RedrivePolicy")
        .expect("the queue's attributes are shown with its creation");
    assert!(
        redrive["new"]["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with("-dlq"),
        "{queue:#}"
    );
    assert!(
        plan["resources"][5]["reason"]
            .as_str()
            .unwrap()
            .contains("once AlarmPolicy"),
        "the subscription waits for the policy's new topic: {plan:#}"
    );
    assert_eq!(
        fixture.state().await,
        format!("[]\n[]\nNone\n[]"),
        "nothing was created"
    );
}

#[tokio::test]
async fn prune_shows_what_a_policy_missing_from_the_folder_leaves_behind() {
    let fixture =
        Fixture::reconciled(&[|ns| policy(ns, vec![alarm("errors", 100.0)]), route]).await;
    // The folder keeps the route but not the policy it subscribes to.
    let ns = fixture.namespace.clone();
    fixture.write(&[route(&ns)]);
    let owner = fixture.policy_owner();

    let (code, out, err) = fixture.plan(&["-o", "json"]).await;
    assert_eq!(
        code, 0,
        "without --prune the policy is taken to exist in the cluster: {out}{err}"
    );
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        plan["blocked"],
        json!([]),
        "its topic is found in AWS: {plan:#}"
    );

    let (code, out, err) = fixture.plan(&["-o", "json", "--prune"]).await;
    assert_eq!(code, 2, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let mut deleted: Vec<(String, String)> = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "delete")
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    deleted.sort();
    let route = OwnerIdentity::new(
        &fixture.settings.cluster_id,
        alert_route::KIND,
        &ns,
        "broker-alarms",
    );
    let mut expected = vec![
        ("CloudWatchAlarm".to_string(), owner.alarm_name("errors")),
        ("EventBridgeRule".to_string(), owner.rule_name("emr-failed")),
        (
            "SnsSubscription".to_string(),
            format!("{} → {}", owner.topic_name(), route.queue_name("")),
        ),
        ("SnsTopic".to_string(), owner.topic_name()),
    ];
    expected.sort();
    assert_eq!(deleted, expected, "{plan:#}");
    assert_eq!(plan["blocked"][0]["reason"], "SourceNotReady", "{plan:#}");
}

#[tokio::test]
async fn an_invalid_manifest_exits_1_with_the_error_and_plans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: alertops.dev/v1alpha1\nkind: AlarmPolicy\nmetadata: {name: bad, namespace: x}\n\
         spec:\n  alarms:\n  - name: errors\n    period: sixty\n",
    )
    .unwrap();
    let (code, out, err) = plan_binary(dir.path(), "plan-invalid", &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "no plan is printed: {out}");
    assert!(
        err.contains("invalid manifests, nothing was planned"),
        "{err}"
    );
    assert!(err.contains("spec.alarms[0]"), "the field is named: {err}");

    let (code, _, err) = plan_binary(dir.path(), "Not_A_Cluster_Id", &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("cluster id"), "{err}");
}

#[tokio::test]
async fn the_examples_plan_against_an_empty_account_without_writing() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let cluster_id = harness::unique("ex").to_lowercase();
    let (code, out, err) = plan_binary(&examples, &cluster_id, &["-o", "json"]).await;
    assert_eq!(code, 2, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).expect("the JSON output parses");
    let resources = plan["resources"].as_array().unwrap();
    assert!(!resources.is_empty());
    for resource in resources {
        assert!(
            ["create", "noChange"].contains(&resource["action"].as_str().unwrap()),
            "only creations, and referenced topics left as they are: {resource:#}"
        );
    }
    for kind in ["AlarmPolicy/", "AlertRoute/", "DigestSchedule/"] {
        assert!(
            resources
                .iter()
                .any(|r| r["owner"].as_str().unwrap().starts_with(kind)),
            "{kind} resources are planned: {plan:#}"
        );
    }
    assert_eq!(plan["awsCalls"]["writes"], 0);
}

/// The log group of the log-alarm plan test (filter names carry the test's own cluster id).
const PLAN_LOG_GROUP: &str = "/aws/lambda/plan-checkout";

fn log_alarm(name: &str, pattern: &str) -> Value {
    json!({
        "name": name,
        "logs": {"logGroup": PLAN_LOG_GROUP, "filterPattern": pattern,
                 "metric": {"namespace": "Checkout/Logs", "name": name}},
        "period": 60, "evaluationPeriods": 5, "threshold": 10,
        "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
    })
}

fn policy_with_log_alarms(namespace: &str, log_alarms: Vec<Value>) -> Value {
    let mut manifest = policy(namespace, vec![alarm("errors", 100.0)]);
    manifest["spec"]["logAlarms"] = Value::from(log_alarms);
    manifest
}

#[tokio::test]
async fn log_alarms_metric_filters_are_planned_field_by_field_and_nothing_is_written() {
    let aws = harness::aws_clients().await;
    match aws
        .logs
        .create_log_group()
        .log_group_name(PLAN_LOG_GROUP)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception()) => {}
        Err(e) => panic!("CreateLogGroup: {e:?}"),
    }
    let fixture = Fixture::reconciled(&[
        |ns| policy_with_log_alarms(ns, vec![log_alarm("checkout-errors", "ERROR")]),
        route,
    ])
    .await;
    let owner = fixture.policy_owner();
    let filters = || async {
        let mut names: Vec<(String, String)> = aws
            .logs
            .describe_metric_filters()
            .log_group_name(PLAN_LOG_GROUP)
            .filter_name_prefix(owner.alarm_prefix())
            .send()
            .await
            .expect("DescribeMetricFilters")
            .metric_filters()
            .iter()
            .map(|f| {
                (
                    f.filter_name().unwrap_or_default().to_owned(),
                    f.filter_pattern().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        names.sort();
        names
    };
    let before = filters().await;
    let errors = owner.metric_filter_name("checkout-errors");
    assert_eq!(before, [(errors.clone(), "ERROR".to_owned())]);

    let ns = fixture.namespace.clone();
    fixture.write(&[
        policy_with_log_alarms(
            &ns,
            vec![
                log_alarm("checkout-errors", "?ERROR ?FATAL"),
                log_alarm("checkout-timeouts", "Timeout"),
            ],
        ),
        route(&ns),
    ]);
    let (code, out, err) = fixture.plan(&["-o", "json"]).await;
    assert_eq!(code, 2, "changes exit 2: {out}{err}");
    let plan: Value = serde_json::from_str(&out).expect("the JSON output parses");
    let find = |name: &str| -> Value {
        plan["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is in the plan: {plan:#}"))
    };
    let updated = find(&format!("{PLAN_LOG_GROUP} {errors}"));
    assert_eq!(updated["action"], "update");
    assert_eq!(updated["type"], "LogMetricFilter");
    assert_eq!(
        updated["fields"],
        json!([{"field": "filterPattern", "old": "ERROR", "new": "?ERROR ?FATAL"}])
    );
    let created = find(&format!(
        "{PLAN_LOG_GROUP} {}",
        owner.metric_filter_name("checkout-timeouts")
    ));
    assert_eq!(created["action"], "create");
    assert_eq!(plan["awsCalls"]["writes"], 0);

    let (code, out, _) = fixture.plan(&[]).await;
    assert_eq!(code, 2);
    assert!(
        out.contains(&format!(
            "~ update CloudWatch Logs metric filter {PLAN_LOG_GROUP} {errors}\n"
        )),
        "{out}"
    );
    assert_eq!(
        filters().await,
        before,
        "the plans changed no metric filter"
    );
}
