//! `alertops interact` and `alertops retry` end to end: the server runs in-process over a
//! MemoryCluster, the AWS emulator holds real EMR clusters, and the Slack stand-in records the
//! response-URL answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alertops::alert::{
    Alert, EMR_FAILED_STATE, Fingerprint, ORIGINAL_CLUSTER_TAG, RETRY_ATTEMPT_TAG,
};
use alertops::aws::AwsClients;
use alertops::cli::{Cli, Command};
use alertops::interact::job::{ORIGINAL_CLUSTER_LABEL, RESPONSE_URL_ENV, SLACK_MESSAGE_ENV};
use alertops::interact::{
    InteractMetrics, InteractState, RetryJobSettings, SlackRequestVerifier, server_router,
};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::resources::{AlertKind, AlertState};
use alertops::retry::{self, RetryOutcome};
use alertops::slack::{
    ACTIONS_BLOCK_ID, ActionSigner, ButtonSigning, ButtonVerifier, RenderOptions, RouteRef,
    SlackClient, SlackMessage, SlackSettings, render_alert,
};
use aws_sdk_emr::types::{
    ActionOnFailure, Application, BootstrapActionConfig, EbsBlockDeviceConfig, EbsConfiguration,
    HadoopJarStepConfig, InstanceGroupConfig, InstanceRoleType, JobFlowInstancesConfig, KeyValue,
    MarketType, ScriptBootstrapActionConfig, StepConfig, Tag, VolumeSpecification,
};
use base64::Engine;
use clap::Parser;
use k8s_openapi::api::batch::v1::Job;
use serde_json::json;

use crate::harness::slack::{RecordedRequest, SlackRecorder};
use crate::harness::{moto, sdk_config, test_settings, unique};

const SIGNING_SECRET: &str = "test-signing-secret-0123456789";
const TOKEN_KEY: &[u8] = b"test-action-token-key-0123456789abcdef";
const NAMESPACE: &str = "data";
const ALLOWED: &str = "UALLOWED1";
const ALSO_ALLOWED: &str = "UALLOWED2";
const IN_GROUP: &str = "UGROUPIE1";
const STRANGER: &str = "USTRANGER";
const GROUP: &str = "SDATAENG1";
const BOT_TOKEN: &str = "xoxb-test-bot";
/// Slack's deadline for the HTTP answer.
const SLACK_DEADLINE: Duration = Duration::from_secs(3);
/// How long the work after the answer may take in a test.
const WORK_TIMEOUT: Duration = Duration::from_secs(30);

/// A running interaction server with its fakes.
struct Fixture {
    url: String,
    http: reqwest::Client,
    slack: SlackRecorder,
    cluster: MemoryCluster,
    signer: ActionSigner,
    verifier: SlackRequestVerifier,
    route: String,
}

impl Fixture {
    /// A server whose AWS clients are `aws`, with a route allowing retries (`max_attempts`) and
    /// taking every alert.
    async fn start(aws: AwsClients, max_attempts: i32) -> Fixture {
        Fixture::start_matching(aws, max_attempts, json!({})).await
    }

    /// [`Fixture::start`] with the route's `match` block.
    async fn start_matching(
        aws: AwsClients,
        max_attempts: i32,
        route_match: serde_json::Value,
    ) -> Fixture {
        let slack = SlackRecorder::start().await;
        slack.set_group_members(GROUP, &[IN_GROUP]);
        let cluster = MemoryCluster::new();
        let route = unique("emr-route");
        cluster
            .apply_manifest(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "slack-bot", "namespace": NAMESPACE},
                "data": {"token": base64::engine::general_purpose::STANDARD.encode(BOT_TOKEN)},
            }))
            .unwrap();
        cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
                "metadata": {"name": route, "namespace": NAMESPACE},
                "spec": {
                    "sources": [{"alarmPolicy": "emr"}],
                    "match": route_match,
                    "slack": {"botTokenSecretRef": {"name": "slack-bot", "key": "token"}, "channel": "C0ALERTS"},
                    "actions": {"acknowledge": true, "retry": {
                        "enabled": true, "maxAttempts": max_attempts,
                        "allowedUsers": [ALLOWED, ALSO_ALLOWED], "allowedUserGroups": [GROUP],
                    }, "snooze": {"timeZone": "America/Los_Angeles"}},
                },
            }))
            .unwrap();
        // The server holds the master key; the consumer of this route signs with its own key.
        let signer = ActionSigner::for_route(
            TOKEN_KEY,
            &RouteRef {
                namespace: NAMESPACE.into(),
                name: route.clone(),
            },
        )
        .unwrap();
        let verifier = SlackRequestVerifier::new(SIGNING_SECRET.as_bytes());
        let state = InteractState {
            cluster: cluster.clone(),
            aws,
            slack: SlackClient::new(SlackSettings {
                api_base: slack.api_base(),
                initial_backoff: Duration::from_millis(10),
                ..Default::default()
            }),
            verifier: verifier.clone(),
            buttons: ButtonVerifier::new(TOKEN_KEY).unwrap(),
            button_max_age: chrono::Duration::days(7),
            jobs: RetryJobSettings {
                image: "alertops:test".into(),
                slack_api_base: slack.api_base(),
                aws_region: Some("us-east-1".into()),
                ttl_seconds_after_finished: 604_800,
                service_account: None,
                image_pull_policy: None,
            },
            metrics: InteractMetrics::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // The workload's own server: the interactions next to /metrics, /healthz and /readyz.
        let mut registry = prometheus_client::registry::Registry::with_prefix("alertops");
        state.metrics.register(&mut registry);
        let readiness = alertops::telemetry::Readiness::default();
        readiness.set(true);
        let app = server_router(Arc::new(state), Arc::new(registry), readiness);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fixture {
            url,
            http: reqwest::Client::new(),
            slack,
            cluster,
            signer,
            verifier,
            route,
        }
    }

    /// The server's `/metrics` text.
    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The message the consumer would have posted for the failed cluster, with signed buttons.
    fn message(&self, cluster_id: &str, original: Option<&str>) -> (Fingerprint, SlackMessage) {
        self.message_signed_by(&self.signer, cluster_id, original)
    }

    /// The same message, its buttons signed by `signer`.
    fn message_signed_by(
        &self,
        signer: &ActionSigner,
        cluster_id: &str,
        original: Option<&str>,
    ) -> (Fingerprint, SlackMessage) {
        let fingerprint = Fingerprint::of(AlertKind::EmrClusterStateChange, &[cluster_id]);
        let mut alert = Alert::new(
            AlertKind::EmrClusterStateChange,
            AlertState::Firing,
            fingerprint.clone(),
            format!("EMR cluster {cluster_id} failed"),
        );
        alert.source_state = Some(EMR_FAILED_STATE.into());
        alert.resource = Some(cluster_id.into());
        if let Some(original) = original {
            alert
                .tags
                .insert(ORIGINAL_CLUSTER_TAG.into(), original.into());
        }
        let options = RenderOptions {
            route: RouteRef {
                namespace: NAMESPACE.into(),
                name: self.route.clone(),
            },
            mentions: vec![],
            acknowledge: true,
            retry: true,
            snooze: false,
        };
        let signing = ButtonSigning {
            signer,
            now: chrono::Utc::now(),
        };
        (fingerprint, render_alert(&alert, &options, Some(signing)))
    }

    /// The `payload` of a press of the button whose action id starts with `prefix`.
    fn press(&self, message: &SlackMessage, prefix: &str, user: &str, response: &str) -> String {
        let button = message
            .blocks
            .iter()
            .filter(|b| b["block_id"] == ACTIONS_BLOCK_ID)
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .find(|e| {
                e["action_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(prefix))
            })
            .unwrap_or_else(|| panic!("no {prefix} button in {:#?}", message.blocks));
        let payload = json!({
            "type": "block_actions",
            "user": {"id": user, "username": user.to_lowercase(), "team_id": "T1"},
            "api_app_id": "A1",
            "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": "C0ALERTS"},
            "channel": {"id": "C0ALERTS", "name": "alerts"},
            "message": {"type": "message", "ts": "1700000000.000001", "text": message.text, "blocks": message.blocks},
            "response_url": self.slack.response_url(response),
            "actions": [{"action_id": button["action_id"], "block_id": ACTIONS_BLOCK_ID, "type": "button",
                         "value": button["value"], "action_ts": "1700000001.000001"}],
        });
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }

    /// POSTs `body` signed at `timestamp`; returns the status and how long the answer took.
    async fn post(&self, body: &str, timestamp: i64, signature: &str) -> (u16, Duration) {
        let started = Instant::now();
        let response = self
            .http
            .post(format!("{}/slack/interactions", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header("x-slack-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), started.elapsed())
    }

    /// POSTs `body` signed now, as Slack would.
    async fn click(&self, body: &str) -> (u16, Duration) {
        let now = chrono::Utc::now().timestamp();
        let signature = self.verifier.sign(now, body.as_bytes());
        self.post(body, now, &signature).await
    }

    /// Waits for answers on the response URL `name`.
    async fn responses(&self, name: &str, count: usize) -> Vec<RecordedRequest> {
        let path = format!("/response/{name}");
        self.slack
            .wait_until(WORK_TIMEOUT, |requests| {
                requests.iter().filter(|r| r.path == path).count() >= count
            })
            .await
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Retry Jobs made for an original cluster.
    fn jobs_for(&self, original: &str) -> Vec<Job> {
        self.cluster
            .list_all::<Job>()
            .unwrap()
            .into_iter()
            .filter(|j| {
                j.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ORIGINAL_CLUSTER_LABEL))
                    .map(String::as_str)
                    == Some(original)
            })
            .collect()
    }

    async fn wait_for_jobs(&self, original: &str, count: usize) -> Vec<Job> {
        let original_owned = original.to_string();
        self.cluster
            .wait_until(WORK_TIMEOUT, |c| {
                c.list_all::<Job>()
                    .unwrap()
                    .iter()
                    .filter(|j| {
                        j.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(ORIGINAL_CLUSTER_LABEL))
                            == Some(&original_owned)
                    })
                    .count()
                    >= count
            })
            .await
            .unwrap_or_else(|_| panic!("no retry Job for {original}"));
        self.jobs_for(original)
    }
}

/// A failed cluster in the emulator with everything a retry must carry over: the emulator cannot
/// fail a cluster, so [`emr_proxy`] reports it as `TERMINATED_WITH_ERRORS`.
async fn failed_cluster(aws: &AwsClients, name: &str, extra_tags: &[(&str, &str)]) -> String {
    let id = running_cluster(aws, name, extra_tags).await;
    mark_failed(&id);
    id
}

/// A cluster as the emulator runs it (never failed).
async fn running_cluster(aws: &AwsClients, name: &str, extra_tags: &[(&str, &str)]) -> String {
    let volume = VolumeSpecification::builder()
        .volume_type("gp2")
        .size_in_gb(64)
        .build();
    let instances = JobFlowInstancesConfig::builder()
        .ec2_key_name("ops-key")
        .instance_groups(
            InstanceGroupConfig::builder()
                .name("Primary")
                .instance_role(InstanceRoleType::Master)
                .market(MarketType::OnDemand)
                .instance_type("m5.xlarge")
                .instance_count(1)
                .build(),
        )
        .instance_groups(
            InstanceGroupConfig::builder()
                .name("Workers")
                .instance_role(InstanceRoleType::Core)
                .market(MarketType::OnDemand)
                .instance_type("r5.2xlarge")
                .instance_count(3)
                .ebs_configuration(
                    EbsConfiguration::builder()
                        .ebs_block_device_configs(
                            EbsBlockDeviceConfig::builder()
                                .volume_specification(volume)
                                .volumes_per_instance(2)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .keep_job_flow_alive_when_no_steps(false)
        .build();
    let step = |name: &str, script: &str| {
        StepConfig::builder()
            .name(name)
            .action_on_failure(ActionOnFailure::TerminateCluster)
            .hadoop_jar_step(
                HadoopJarStepConfig::builder()
                    .jar("command-runner.jar")
                    .args("spark-submit")
                    .args(script)
                    .properties(
                        KeyValue::builder()
                            .key("mapreduce.job.queuename")
                            .value("etl")
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let mut request = aws
        .emr
        .run_job_flow()
        .name(name)
        .release_label("emr-7.1.0")
        .log_uri("s3://logs/emr/")
        .service_role("EMR_DefaultRole")
        .job_flow_role("EMR_EC2_DefaultRole")
        .visible_to_all_users(true)
        .instances(instances)
        .applications(Application::builder().name("Spark").build())
        .applications(Application::builder().name("Hive").build())
        .steps(step("extract", "s3://jobs/extract.py"))
        .steps(step("transform", "s3://jobs/transform.py"))
        .steps(step("load", "s3://jobs/load.py"))
        .bootstrap_actions(
            BootstrapActionConfig::builder()
                .name("install-deps")
                .script_bootstrap_action(
                    ScriptBootstrapActionConfig::builder()
                        .path("s3://boot/install.sh")
                        .args("--fast")
                        .build(),
                )
                .build(),
        )
        .tags(Tag::builder().key("Team").value("data").build())
        .tags(Tag::builder().key("Feature").value("nightly").build());
    for (key, value) in extra_tags {
        request = request.tags(Tag::builder().key(*key).value(*value).build());
    }
    request.send().await.unwrap().job_flow_id.unwrap()
}

/// An instance group as compared: type, name, instance type, count, EBS volumes (size, type).
type GroupShape = (String, String, String, i32, Vec<(i32, String)>);

/// What a retry must reproduce, read back from the emulator.
#[derive(Debug, PartialEq)]
struct Shape {
    release_label: Option<String>,
    applications: Vec<String>,
    groups: Vec<GroupShape>,
    steps: Vec<(String, String, Vec<String>, String)>,
    bootstrap: Vec<(String, String, Vec<String>)>,
    tags: Vec<(String, String)>,
}

async fn shape(aws: &AwsClients, id: &str) -> Shape {
    let cluster = aws
        .emr
        .describe_cluster()
        .cluster_id(id)
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    let mut applications: Vec<String> = cluster
        .applications()
        .iter()
        .filter_map(|a| a.name().map(str::to_string))
        .collect();
    applications.sort();
    let mut tags: Vec<(String, String)> = cluster
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    tags.sort();
    let groups = aws
        .emr
        .list_instance_groups()
        .cluster_id(id)
        .send()
        .await
        .unwrap();
    let mut groups: Vec<_> = groups
        .instance_groups()
        .iter()
        .map(|g| {
            (
                g.instance_group_type().unwrap().as_str().to_string(),
                g.name().unwrap_or_default().to_string(),
                g.instance_type().unwrap_or_default().to_string(),
                g.requested_instance_count().unwrap_or_default(),
                g.ebs_block_devices()
                    .iter()
                    .map(|d| {
                        let v = d.volume_specification().unwrap();
                        (
                            v.size_in_gb().unwrap_or_default(),
                            v.volume_type().unwrap_or_default().to_string(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    groups.sort();
    let steps = aws.emr.list_steps().cluster_id(id).send().await.unwrap();
    let steps = steps
        .steps()
        .iter()
        .map(|s| {
            let config = s.config().unwrap();
            (
                s.name().unwrap_or_default().to_string(),
                config.jar().unwrap_or_default().to_string(),
                config.args().to_vec(),
                s.action_on_failure()
                    .map(|a| a.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let boot = aws
        .emr
        .list_bootstrap_actions()
        .cluster_id(id)
        .send()
        .await
        .unwrap();
    let bootstrap = boot
        .bootstrap_actions()
        .iter()
        .map(|b| {
            (
                b.name().unwrap_or_default().to_string(),
                b.script_path().unwrap_or_default().to_string(),
                b.args().to_vec(),
            )
        })
        .collect();
    Shape {
        release_label: cluster.release_label().map(str::to_string),
        applications,
        groups,
        steps,
        bootstrap,
        tags,
    }
}

/// Runs the Job's command in-process: its container args and the env it passes as flags.
async fn run_job(job: &Job, cluster: &MemoryCluster, aws: &AwsClients) -> RetryOutcome {
    let container = &job
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let mut argv = vec!["alertops".to_string()];
    argv.extend(container.args.clone().unwrap());
    for env in container.env.clone().unwrap_or_default() {
        let flag = match env.name.as_str() {
            RESPONSE_URL_ENV => "--response-url",
            SLACK_MESSAGE_ENV => "--message-json",
            _ => continue,
        };
        // As the kubelet does: a value, or the key of the Secret it references (the response
        // URL is kept out of the Job spec).
        let value = match (env.value, env.value_from.and_then(|v| v.secret_key_ref)) {
            (Some(value), _) => value,
            (None, Some(reference)) => cluster
                .secret_value(
                    job.metadata.namespace.as_deref().unwrap(),
                    &reference.name,
                    &reference.key,
                )
                .await
                .unwrap()
                .expect("the Job's Secret exists once the click was answered"),
            (None, None) => panic!("{} has no value", env.name),
        };
        argv.push(flag.to_string());
        argv.push(value);
    }
    let Command::Retry(args) = Cli::try_parse_from(&argv).unwrap().command else {
        panic!("the Job does not run `alertops retry`: {argv:?}")
    };
    let request = args.request().unwrap();
    let slack = SlackClient::new(SlackSettings {
        api_base: args.slack_api_base.clone(),
        ..Default::default()
    });
    retry::run(cluster, aws, &slack, &request).await
}

fn text_of(request: &RecordedRequest) -> String {
    request.all_text()
}

#[tokio::test]
async fn a_signed_retry_click_creates_one_job_whose_command_resubmits_the_cluster() {
    let aws = emr_aws().await;
    let fixture = Fixture::start(aws.clone(), 2).await;
    let name = unique("nightly-etl");
    let failed = failed_cluster(&aws, &name, &[]).await;
    let (_, message) = fixture.message(&failed, None);
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "retry-1");

    let (status, took) = fixture.click(&body).await;
    assert_eq!(status, 200);
    assert!(took < SLACK_DEADLINE, "answered in {took:?}");

    let started = fixture.responses("retry-1", 1).await;
    assert_eq!(started[0].body["replace_original"], true);
    assert!(
        text_of(&started[0]).contains(&format!("Retry 1/2 started by <@{ALLOWED}>")),
        "{}",
        text_of(&started[0])
    );
    let jobs = fixture.wait_for_jobs(&failed, 1).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(format!("alertops-retry-{}-1", failed.to_lowercase()).as_str())
    );
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.name, fixture.route);

    let outcome = run_job(job, &fixture.cluster, &aws).await;
    let RetryOutcome::Submitted { new_cluster_id } = outcome else {
        panic!("the retry did not submit: {outcome:?}")
    };
    assert_ne!(new_cluster_id, failed);

    let original = shape(&aws, &failed).await;
    let retried = shape(&aws, &new_cluster_id).await;
    assert_eq!(retried.release_label, original.release_label);
    assert_eq!(retried.applications, original.applications);
    assert_eq!(retried.groups, original.groups);
    assert_eq!(retried.steps, original.steps);
    assert_eq!(retried.bootstrap, original.bootstrap);
    let mut expected_tags = original.tags.clone();
    expected_tags.push((ORIGINAL_CLUSTER_TAG.into(), failed.clone()));
    expected_tags.push((RETRY_ATTEMPT_TAG.into(), "1".into()));
    expected_tags.sort();
    assert_eq!(retried.tags, expected_tags);
    assert_eq!(
        original.groups.len(),
        2,
        "the fixture has what it should: {original:?}"
    );
    assert_eq!(original.steps.len(), 3);
    assert_eq!(
        original.groups[0].4.len(),
        2,
        "two EBS volumes on the core group"
    );

    // The Job reported back: the message through the response URL, and a thread reply.
    let reported = fixture.responses("retry-1", 2).await;
    assert!(
        text_of(&reported[1]).contains(&format!("new cluster `{new_cluster_id}`")),
        "{}",
        text_of(&reported[1])
    );
    let replies = fixture
        .slack
        .wait_until(WORK_TIMEOUT, |r| {
            r.iter().any(|r| r.method() == Some("chat.postMessage"))
        })
        .await;
    let reply = replies
        .iter()
        .find(|r| r.method() == Some("chat.postMessage"))
        .unwrap();
    assert_eq!(reply.body["thread_ts"], "1700000000.000001");
    assert_eq!(
        reply.authorization.as_deref(),
        Some(format!("Bearer {BOT_TOKEN}").as_str())
    );
    assert!(
        reply.body["text"]
            .as_str()
            .unwrap()
            .contains(&new_cluster_id)
    );
}

#[tokio::test]
async fn two_clicks_within_a_second_create_one_job() {
    let aws = emr_aws().await;
    let fixture = Fixture::start(aws.clone(), 3).await;
    let failed = failed_cluster(&aws, &unique("double"), &[]).await;
    let (_, message) = fixture.message(&failed, None);
    let first = fixture.press(&message, "alertops_retry:", ALLOWED, "double-a");
    let second = fixture.press(&message, "alertops_retry:", ALSO_ALLOWED, "double-b");
    let ((status_a, _), (status_b, _)) =
        tokio::join!(fixture.click(&first), fixture.click(&second));
    assert_eq!((status_a, status_b), (200, 200));
    // Slack re-sending the first request changes nothing either.
    assert_eq!(fixture.click(&first).await.0, 200);

    let a = fixture.responses("double-a", 2).await;
    let b = fixture.responses("double-b", 1).await;
    let answers: Vec<String> = a.iter().chain(&b).map(text_of).collect();
    let started = answers
        .iter()
        .filter(|t| t.contains("Retry 1/3 started by"))
        .count();
    let running = answers
        .iter()
        .filter(|t| t.contains("Retry 1 is already running"))
        .count();
    assert_eq!((started, running), (1, 2), "{answers:#?}");
    assert_eq!(fixture.jobs_for(&failed).len(), 1);
}

#[tokio::test]
async fn at_the_cap_the_click_and_the_job_are_refused_and_nothing_starts() {
    let aws = emr_aws().await;
    let fixture = Fixture::start(aws.clone(), 2).await;
    let name = unique("capped");
    // The second retry of j-ORIGIN failed: both attempts are used.
    let failed = failed_cluster(
        &aws,
        &name,
        &[(ORIGINAL_CLUSTER_TAG, "j-ORIGIN"), (RETRY_ATTEMPT_TAG, "2")],
    )
    .await;
    let (_, message) = fixture.message(&failed, Some("j-ORIGIN"));
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "capped");
    assert_eq!(fixture.click(&body).await.0, 200);
    let answer = fixture.responses("capped", 1).await;
    assert_eq!(answer[0].body["response_type"], "ephemeral");
    assert_eq!(answer[0].body["replace_original"], false);
    assert!(
        text_of(&answer[0]).contains("all 2 retries of cluster j-ORIGIN have been used"),
        "{}",
        text_of(&answer[0])
    );
    assert!(
        fixture.cluster.list_all::<Job>().unwrap().is_empty(),
        "no Job at the cap"
    );

    // A Job run by hand past the cap is refused too, and starts no cluster.
    let (fingerprint, _) = fixture.message(&failed, Some("j-ORIGIN"));
    let request = retry::RetryRequest {
        route: RouteRef {
            namespace: NAMESPACE.into(),
            name: fixture.route.clone(),
        },
        cluster_id: failed.clone(),
        attempt: 3,
        user_id: ALLOWED.into(),
        fingerprint: Some(fingerprint),
        response_url: Some(fixture.slack.response_url("capped-job")),
        message: Some(message.clone()),
        posted: None,
    };
    let slack = SlackClient::new(SlackSettings {
        api_base: fixture.slack.api_base(),
        ..Default::default()
    });
    let outcome = retry::run(&fixture.cluster, &aws, &slack, &request).await;
    assert!(
        matches!(&outcome, RetryOutcome::Refused { reason } if reason.contains("all 2 retries")),
        "{outcome:?}"
    );
    let named = clusters_named(&aws, &name).await.len();
    assert_eq!(named, 1, "no new cluster");
    let reported = fixture.responses("capped-job", 1).await;
    assert!(
        text_of(&reported[0]).contains("Retry refused"),
        "{}",
        text_of(&reported[0])
    );
}

#[tokio::test]
async fn only_listed_users_and_group_members_may_retry() {
    let aws = emr_aws().await;
    let fixture = Fixture::start(aws.clone(), 2).await;
    let failed = failed_cluster(&aws, &unique("allow"), &[]).await;
    let (_, message) = fixture.message(&failed, None);
    let stranger = fixture.press(&message, "alertops_retry:", STRANGER, "stranger");
    assert_eq!(fixture.click(&stranger).await.0, 200);
    let answer = fixture.responses("stranger", 1).await;
    assert_eq!(answer[0].body["response_type"], "ephemeral");
    assert!(
        text_of(&answer[0]).contains("not on the retry allow-list"),
        "{}",
        text_of(&answer[0])
    );
    assert!(fixture.jobs_for(&failed).is_empty());

    // A member of an allowed user group, looked up with the route's bot token.
    let member = fixture.press(&message, "alertops_retry:", IN_GROUP, "member");
    assert_eq!(fixture.click(&member).await.0, 200);
    assert_eq!(fixture.wait_for_jobs(&failed, 1).await.len(), 1);
    let lookup = fixture.slack.delivered("/api/usergroups.users.list");
    assert_eq!(
        lookup[0].authorization.as_deref(),
        Some(format!("Bearer {BOT_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn forged_stale_and_altered_requests_get_401_and_change_nothing() {
    let aws = emr_aws().await;
    let fixture = Fixture::start(aws.clone(), 2).await;
    let failed = failed_cluster(&aws, &unique("forged"), &[]).await;
    let (_, message) = fixture.message(&failed, None);
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "forged");
    let now = chrono::Utc::now().timestamp();

    let forged = SlackRequestVerifier::new(b"not the secret").sign(now, body.as_bytes());
    assert_eq!(
        fixture.post(&body, now, &forged).await.0,
        401,
        "bad signature"
    );

    let old = now - 6 * 60;
    let stale = fixture.verifier.sign(old, body.as_bytes());
    assert_eq!(
        fixture.post(&body, old, &stale).await.0,
        401,
        "six minutes old"
    );

    let signature = fixture.verifier.sign(now, body.as_bytes());
    let altered = body.replace(ALLOWED, STRANGER);
    assert_ne!(altered, body);
    assert_eq!(
        fixture.post(&altered, now, &signature).await.0,
        401,
        "altered after signing"
    );

    // A correctly signed body that is not an interaction is malformed.
    let garbage = "payload=%7Bnot-json";
    assert_eq!(fixture.click(garbage).await.0, 400);

    let health = fixture
        .http
        .get(format!("{}/healthz", fixture.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = fixture
        .http
        .get(format!("{}/readyz", fixture.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = fixture.metrics().await;
    for expected in [
        r#"alertops_interact_requests_total{outcome="bad_signature"} 2"#,
        r#"alertops_interact_requests_total{outcome="stale"} 1"#,
        r#"alertops_interact_requests_total{outcome="malformed"} 1"#,
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from {metrics}"
        );
    }
    assert!(
        !metrics.contains(r#"outcome="accepted""#),
        "nothing was accepted: {metrics}"
    );
    assert!(
        fixture.slack.requests().is_empty(),
        "nothing was said to Slack"
    );
    assert!(
        fixture.cluster.list_all::<Job>().unwrap().is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_button_signed_with_another_routes_key_is_refused() {
    let aws = crate::harness::aws_clients().await;
    let fixture = Fixture::start(aws.clone(), 2).await;
    let failed = failed_cluster(&aws, &unique("cross-route"), &[]).await;
    // Another route's consumer (another namespace's key) mints a Retry naming this route.
    let other = ActionSigner::for_route(
        TOKEN_KEY,
        &RouteRef {
            namespace: "other-team".into(),
            name: fixture.route.clone(),
        },
    )
    .unwrap();
    let (_, message) = fixture.message_signed_by(&other, &failed, None);
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "cross-route");
    assert_eq!(fixture.click(&body).await.0, 400);
    // And the master key itself signs nothing the server accepts.
    let master = ActionSigner::new(TOKEN_KEY).unwrap();
    let (_, message) = fixture.message_signed_by(&master, &failed, None);
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "cross-route");
    assert_eq!(fixture.click(&body).await.0, 400);
    // This route's own key is accepted.
    let (_, message) = fixture.message(&failed, None);
    let body = fixture.press(&message, "alertops_ack:", ALLOWED, "cross-route-own");
    assert_eq!(fixture.click(&body).await.0, 200);

    let metrics = fixture.metrics().await;
    assert!(
        metrics.contains(r#"alertops_interact_requests_total{outcome="invalid_button"} 2"#),
        "{metrics}"
    );
    assert!(fixture.cluster.list_all::<Job>().unwrap().is_empty());
}

#[tokio::test]
async fn acknowledge_shows_who_and_when() {
    let aws = emr_aws().await;
    let fixture = Fixture::start(aws.clone(), 2).await;
    let (_, message) = fixture.message("j-ACKME", None);
    let body = fixture.press(&message, "alertops_ack:", ALLOWED, "ack");
    assert_eq!(fixture.click(&body).await.0, 200);
    let answer = fixture.responses("ack", 1).await;
    assert_eq!(answer[0].body["replace_original"], true);
    let text = text_of(&answer[0]);
    assert!(
        text.contains(&format!("Acknowledged by <@{ALLOWED}>")),
        "{text}"
    );
    assert!(
        !text.contains("alertops_ack:"),
        "the Acknowledge button is gone: {text}"
    );
    let metrics = fixture.metrics().await;
    assert!(
        metrics.contains("alertops_interact_acknowledges_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"alertops_interact_requests_total{outcome="accepted"} 1"#),
        "{metrics}"
    );
    assert!(
        text.contains("alertops_retry:"),
        "the Retry button stays: {text}"
    );
}

/// Clusters the proxy reports as `TERMINATED_WITH_ERRORS`.
static FAILED_CLUSTERS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

fn mark_failed(cluster_id: &str) {
    FAILED_CLUSTERS
        .lock()
        .unwrap()
        .insert(cluster_id.to_string());
}

/// A DescribeCluster answer with the state of a cluster marked failed rewritten.
fn rewrite_describe_cluster(target: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    if target != Some("ElasticMapReduce.DescribeCluster") {
        return None;
    }
    let mut answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = answer["Cluster"]["Id"].as_str()?.to_string();
    if !FAILED_CLUSTERS.lock().unwrap().contains(&id) {
        return None;
    }
    answer["Cluster"]["Status"]["State"] = json!("TERMINATED_WITH_ERRORS");
    answer["Cluster"]["Status"]["StateChangeReason"] =
        json!({"Code": "STEP_FAILURE", "Message": "Step transform failed"});
    serde_json::to_vec(&answer).ok()
}

/// An HTTP proxy in front of the emulator that holds every request for `delay` and reports the
/// clusters of [`mark_failed`] as `TERMINATED_WITH_ERRORS`, which the emulator cannot do.
async fn proxy(delay: Duration) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let target = moto().await.endpoint().to_string();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (client, target) = (client.clone(), target.clone());
            async move {
                tokio::time::sleep(delay).await;
                let amz_target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let mut request = client.request(method, format!("{target}{path}")).body(body);
                for (name, value) in &headers {
                    if name != "host" && name != "content-length" {
                        request = request.header(name, value);
                    }
                }
                let response = request.send().await.unwrap();
                let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                let content_type = response.headers().get("content-type").cloned();
                let mut bytes = response.bytes().await.unwrap().to_vec();
                if status.is_success()
                    && let Some(rewritten) = rewrite_describe_cluster(amz_target.as_deref(), &bytes)
                {
                    bytes = rewritten;
                }
                let mut answer = axum::response::Response::new(axum::body::Body::from(bytes));
                *answer.status_mut() = status;
                if let Some(content_type) = content_type {
                    answer.headers_mut().insert("content-type", content_type);
                }
                answer
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// AWS clients through a [`proxy`] without delay: the emulator, with failed clusters.
async fn emr_aws() -> AwsClients {
    let config = sdk_config()
        .await
        .into_builder()
        .endpoint_url(proxy(Duration::ZERO).await)
        .build();
    AwsClients::from_sdk_config(&config, test_settings())
}

/// Every cluster of the emulator named `name` (every page: other tests of this process start
/// clusters in the same emulator, and ListClusters returns 50 per page).
async fn clusters_named(aws: &AwsClients, name: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut marker = None;
    loop {
        let page = aws
            .emr
            .list_clusters()
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        named.extend(
            page.clusters()
                .iter()
                .filter(|c| c.name() == Some(name))
                .filter_map(|c| c.id().map(str::to_string)),
        );
        marker = page.marker().map(str::to_string);
        if marker.is_none() {
            return named;
        }
    }
}

#[tokio::test]
async fn the_answer_beats_slacks_deadline_while_aws_is_slow() {
    let fast = emr_aws().await;
    let failed = failed_cluster(&fast, &unique("slow"), &[]).await;
    let proxy = proxy(Duration::from_secs(5)).await;
    let slow_config = sdk_config()
        .await
        .into_builder()
        .endpoint_url(proxy)
        .build();
    let slow = AwsClients::from_sdk_config(&slow_config, test_settings());
    let fixture = Fixture::start(slow, 2).await;
    let (_, message) = fixture.message(&failed, None);

    let retry = fixture.press(&message, "alertops_retry:", ALLOWED, "slow-retry");
    let clicked = Instant::now();
    let (status, took) = fixture.click(&retry).await;
    assert_eq!(status, 200);
    assert!(
        took < SLACK_DEADLINE,
        "the retry click was answered in {took:?}"
    );
    let ack = fixture.press(&message, "alertops_ack:", ALLOWED, "slow-ack");
    let (status, took) = fixture.click(&ack).await;
    assert_eq!(status, 200);
    assert!(
        took < SLACK_DEADLINE,
        "the acknowledge click was answered in {took:?}"
    );

    // The work still happens, after the slow DescribeCluster.
    assert_eq!(fixture.wait_for_jobs(&failed, 1).await.len(), 1);
    let started = fixture.responses("slow-retry", 1).await;
    assert!(
        text_of(&started[0]).contains("Retry 1/2 started by"),
        "{}",
        text_of(&started[0])
    );
    assert!(
        clicked.elapsed() >= Duration::from_secs(5),
        "the Job came after the slow DescribeCluster, {:?} after the click",
        clicked.elapsed()
    );
}

/// The retry Job's request for attempt 1 of `failed`, as `interact` would write it.
fn job_request(
    fixture: &Fixture,
    failed: &str,
    attempt: u32,
    response: &str,
) -> retry::RetryRequest {
    let (fingerprint, message) = fixture.message(failed, None);
    retry::RetryRequest {
        route: RouteRef {
            namespace: NAMESPACE.into(),
            name: fixture.route.clone(),
        },
        cluster_id: failed.to_string(),
        attempt,
        user_id: ALLOWED.into(),
        fingerprint: Some(fingerprint),
        response_url: Some(fixture.slack.response_url(response)),
        message: Some(message),
        posted: None,
    }
}

fn fixture_slack(fixture: &Fixture) -> SlackClient {
    SlackClient::new(SlackSettings {
        api_base: fixture.slack.api_base(),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_cluster_that_did_not_fail_is_not_retried_whatever_the_message_says() {
    let aws = emr_aws().await;
    let fixture = Fixture::start(aws.clone(), 3).await;
    let name = unique("healthy");
    // The message says TERMINATED_WITH_ERRORS (anyone may publish that); EMR says it runs.
    let healthy = running_cluster(&aws, &name, &[]).await;
    let (_, message) = fixture.message(&healthy, None);
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "healthy");
    assert_eq!(fixture.click(&body).await.0, 200);
    let answer = fixture.responses("healthy", 1).await;
    assert_eq!(answer[0].body["response_type"], "ephemeral");
    let text = text_of(&answer[0]);
    assert!(
        text.contains(&format!("cluster {healthy} is"))
            && text.contains("not TERMINATED_WITH_ERRORS"),
        "{text}"
    );
    assert!(fixture.jobs_for(&healthy).is_empty(), "no Job");

    // The Job run by hand checks again before RunJobFlow.
    let request = job_request(&fixture, &healthy, 1, "healthy-job");
    let outcome = retry::run(&fixture.cluster, &aws, &fixture_slack(&fixture), &request).await;
    assert!(
        matches!(&outcome, RetryOutcome::Refused { reason } if reason.contains("not TERMINATED_WITH_ERRORS")),
        "{outcome:?}"
    );
    assert_eq!(
        clusters_named(&aws, &name).await,
        vec![healthy],
        "no new cluster"
    );
}

#[tokio::test]
async fn a_cluster_whose_tags_the_route_does_not_match_is_not_retried() {
    let aws = emr_aws().await;
    // The route takes the web team's alerts; the failed cluster is the data team's.
    let fixture = Fixture::start_matching(
        aws.clone(),
        3,
        json!({"tags": [{"key": "Team", "operator": "In", "values": ["web"]}]}),
    )
    .await;
    let name = unique("not-ours");
    let failed = failed_cluster(&aws, &name, &[]).await;
    let (_, message) = fixture.message(&failed, None);
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "not-ours");
    assert_eq!(fixture.click(&body).await.0, 200);
    let answer = fixture.responses("not-ours", 1).await;
    let text = text_of(&answer[0]);
    assert!(
        text.contains(&format!(
            "the tags of cluster {failed} do not match AlertRoute {NAMESPACE}/{}",
            fixture.route
        )),
        "{text}"
    );
    assert!(fixture.jobs_for(&failed).is_empty(), "no Job");

    let request = job_request(&fixture, &failed, 1, "not-ours-job");
    let outcome = retry::run(&fixture.cluster, &aws, &fixture_slack(&fixture), &request).await;
    assert!(
        matches!(&outcome, RetryOutcome::Refused { reason } if reason.contains("do not match AlertRoute")),
        "{outcome:?}"
    );
    assert_eq!(
        clusters_named(&aws, &name).await,
        vec![failed],
        "no new cluster"
    );
}

#[tokio::test]
async fn a_replayed_job_or_a_click_after_the_job_is_gone_starts_no_second_cluster() {
    let aws = emr_aws().await;
    let fixture = Fixture::start_matching(
        aws.clone(),
        3,
        json!({"tags": [{"key": "Team", "operator": "In", "values": ["data"]}]}),
    )
    .await;
    let name = unique("once");
    let failed = failed_cluster(&aws, &name, &[]).await;
    let (_, message) = fixture.message(&failed, None);
    let body = fixture.press(&message, "alertops_retry:", ALLOWED, "once-1");
    assert_eq!(fixture.click(&body).await.0, 200);
    let jobs = fixture.wait_for_jobs(&failed, 1).await;
    let RetryOutcome::Submitted { new_cluster_id } =
        run_job(&jobs[0], &fixture.cluster, &aws).await
    else {
        panic!("the first retry did not submit")
    };

    // The same Job replayed (another namespace's Job for the same attempt runs the same check).
    let replayed = run_job(&jobs[0], &fixture.cluster, &aws).await;
    assert_eq!(
        replayed,
        RetryOutcome::Refused {
            reason: format!(
                "retry 1 of cluster {failed} already exists as cluster {new_cluster_id}; nothing more was started"
            )
        }
    );

    // The Job is gone (TTL, or deleted by hand): the same click again creates no Job.
    let job_name = jobs[0].metadata.name.clone().unwrap();
    assert!(
        fixture
            .cluster
            .request_delete("batch/v1", "Job", NAMESPACE, &job_name)
            .unwrap()
    );
    assert!(fixture.jobs_for(&failed).is_empty());
    let again = fixture.press(&message, "alertops_retry:", ALLOWED, "once-2");
    assert_eq!(fixture.click(&again).await.0, 200);
    let answer = fixture.responses("once-2", 1).await;
    assert!(
        text_of(&answer[0]).contains(&format!("already exists as cluster {new_cluster_id}")),
        "{}",
        text_of(&answer[0])
    );
    assert!(fixture.jobs_for(&failed).is_empty(), "no second Job");

    let mut clusters = clusters_named(&aws, &name).await;
    clusters.sort();
    let mut expected = vec![failed.clone(), new_cluster_id.clone()];
    expected.sort();
    assert_eq!(clusters, expected, "one retry in AWS");
}

/// The message of a failed cluster with Snooze buttons, signed by `signer` at `issued_at`.
fn snoozable_message(
    fixture: &Fixture,
    signer: &ActionSigner,
    issued_at: chrono::DateTime<chrono::Utc>,
) -> SlackMessage {
    let fingerprint = Fingerprint::of(AlertKind::EmrClusterStateChange, &["j-SNOOZE"]);
    let alert = Alert::new(
        AlertKind::EmrClusterStateChange,
        AlertState::Firing,
        fingerprint,
        "EMR cluster j-SNOOZE failed".to_string(),
    );
    let options = RenderOptions {
        route: RouteRef {
            namespace: NAMESPACE.into(),
            name: fixture.route.clone(),
        },
        mentions: vec![],
        acknowledge: true,
        retry: false,
        snooze: true,
    };
    let signing = ButtonSigning {
        signer,
        now: issued_at,
    };
    render_alert(&alert, &options, Some(signing))
}

fn snoozes(fixture: &Fixture) -> Vec<alertops::slack::snooze::Snooze> {
    fixture
        .cluster
        .list_all::<k8s_openapi::api::core::v1::ConfigMap>()
        .unwrap()
        .iter()
        .filter_map(alertops::slack::snooze::Snooze::from_config_map)
        .collect()
}

/// Issue 14, snooze: a signed Snooze press is answered within Slack's deadline, recorded as a
/// ConfigMap saying who, until when and why, noted in the alert's thread and on the message;
/// a press signed with another key is refused and an expired one only says so, neither records
/// anything.
#[tokio::test]
async fn a_snooze_press_is_recorded_in_kubernetes_and_noted_in_the_thread() {
    let aws = crate::harness::aws_clients().await;
    let fixture = Fixture::start(aws, 2).await;

    // Forged: signed with another route's key.
    let other = ActionSigner::for_route(
        TOKEN_KEY,
        &RouteRef {
            namespace: "other-team".into(),
            name: fixture.route.clone(),
        },
    )
    .unwrap();
    let forged = snoozable_message(&fixture, &other, chrono::Utc::now());
    let body = fixture.press(&forged, "alertops_snooze:4h:", ALLOWED, "snooze-forged");
    assert_eq!(fixture.click(&body).await.0, 400);

    // Expired: signed eight days ago (buttons live seven).
    let old = snoozable_message(
        &fixture,
        &fixture.signer,
        chrono::Utc::now() - chrono::Duration::days(8),
    );
    let body = fixture.press(&old, "alertops_snooze:4h:", ALLOWED, "snooze-expired");
    assert_eq!(fixture.click(&body).await.0, 200);
    let answer = fixture.responses("snooze-expired", 1).await;
    assert!(
        text_of(&answer[0]).contains("expired"),
        "{}",
        text_of(&answer[0])
    );
    assert!(snoozes(&fixture).is_empty(), "neither recorded a snooze");

    // Valid: four hours, by a user anyone can be.
    let message = snoozable_message(&fixture, &fixture.signer, chrono::Utc::now());
    let body = fixture.press(&message, "alertops_snooze:4h:", STRANGER, "snooze");
    let pressed_at = chrono::Utc::now();
    let (status, took) = fixture.click(&body).await;
    assert_eq!(status, 200);
    assert!(took < SLACK_DEADLINE, "answered in {took:?}");
    let replaced = fixture.responses("snooze", 1).await;
    assert_eq!(replaced[0].body["replace_original"], true);
    assert!(text_of(&replaced[0]).contains(&format!("Snoozed by <@{STRANGER}> until")));
    let notes = fixture
        .slack
        .wait_until(WORK_TIMEOUT, |requests| {
            requests.iter().any(|r| r.path == "/api/chat.postMessage")
        })
        .await
        .into_iter()
        .filter(|r| r.path == "/api/chat.postMessage")
        .collect::<Vec<_>>();
    assert_eq!(notes[0].body["thread_ts"], "1700000000.000001");
    assert_eq!(
        notes[0].authorization.as_deref(),
        Some(format!("Bearer {BOT_TOKEN}").as_str())
    );
    let note = notes[0].body["text"].as_str().unwrap();
    assert!(
        note.starts_with(&format!(":zzz: Snoozed for 4 h by <@{STRANGER}>")),
        "{note}"
    );

    let recorded = snoozes(&fixture);
    assert_eq!(recorded.len(), 1);
    let snooze = &recorded[0];
    assert_eq!(snooze.by, STRANGER);
    assert_eq!(
        snooze.by_name.as_deref(),
        Some(STRANGER.to_lowercase().as_str())
    );
    assert_eq!(snooze.route_label, fixture.route);
    assert_eq!(
        snooze.fingerprint,
        Fingerprint::of(AlertKind::EmrClusterStateChange, &["j-SNOOZE"])
    );
    let four_hours = (snooze.until - pressed_at - chrono::Duration::hours(4))
        .num_seconds()
        .abs();
    assert!(
        four_hours < 30,
        "until {} for a press at {pressed_at}",
        snooze.until
    );
    assert!(
        snooze
            .reason
            .as_deref()
            .unwrap()
            .contains("EMR cluster j-SNOOZE failed")
    );
    assert_eq!(
        snooze
            .message
            .as_ref()
            .map(|m| (m.channel.as_str(), m.ts.as_str())),
        Some(("C0ALERTS", "1700000000.000001"))
    );
    let map: k8s_openapi::api::core::v1::ConfigMap = fixture
        .cluster
        .get(NAMESPACE, &snooze.name)
        .await
        .unwrap()
        .unwrap();
    let owner = &map.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("AlertRoute", fixture.route.as_str())
    );
    assert_eq!(
        map.metadata.labels.unwrap()["alertops.dev/snooze"],
        fixture.route
    );

    // Until tomorrow 09:00 in the route's zone (Los Angeles) moves the end of the same snooze.
    let body = fixture.press(&message, "alertops_snooze:tm:", ALLOWED, "snooze-tomorrow");
    assert_eq!(fixture.click(&body).await.0, 200);
    fixture.responses("snooze-tomorrow", 1).await;
    let moved = snoozes(&fixture);
    assert_eq!(moved.len(), 1, "one snooze per problem");
    let local = moved[0]
        .until
        .with_timezone(&chrono_tz::America::Los_Angeles);
    assert_eq!(local.format("%H:%M").to_string(), "09:00");
    assert_eq!(moved[0].by, ALLOWED);
}
