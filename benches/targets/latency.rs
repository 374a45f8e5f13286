//! Publish-to-Slack latency through the real consumer, and the post rate each channel sees.
//!
//! Several routes, each with its own SNS topic, SQS queue and Slack channel (bot token), and
//! `groupWaitSeconds: 0`; one consumer per route with the production options (20 s long polls,
//! 1 post/s per channel). Alerts (CloudWatch alarm notifications, which the consumer enriches
//! with an uncached tag lookup, and plain SNS messages) are published a little slower than the
//! per-channel pacing, so the latency measured is the pipeline's, not the pacing's. Then a burst
//! on one channel checks the pacing itself: at most one post per second whatever arrives.
//!
//! A second run keeps the routes' defaults (grouping waits `groupWaitSeconds`, 1 s, for more
//! alerts before posting): its latency is the group wait plus what alertops adds, and the row
//! prints that addition.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alertops::aws::{AwsClients, AwsSettings};
use alertops::consume::{Consumer, ConsumerOptions};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::resources::AlertRoute;
use alertops::slack::{ActionSigner, RouteRef, SlackClient, SlackSettings};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::Row;
use crate::emulator::{Moto, REGION};

/// Routes (channels) served at once.
const ROUTES: usize = 6;
/// Alerts published to each route in the latency phase.
const ALERTS_PER_ROUTE: usize = 20;
/// Interval between two alerts of one route: above the 1 s pacing, so pacing never delays.
const ROUTE_INTERVAL: Duration = Duration::from_millis(1_250);
/// Alerts of the pacing burst, all to one channel.
const BURST: usize = 8;
/// Interval between the burst's alerts.
const BURST_INTERVAL: Duration = Duration::from_millis(100);
/// The design's bound on p99 publish-to-Slack latency.
const TARGET_P99: Duration = Duration::from_secs(1);
/// The client spaces posts to a channel by exactly 1 s when it sends them; arrival times at
/// the stand-in may differ by scheduling jitter.
const ARRIVAL_JITTER: Duration = Duration::from_millis(25);
/// Latency above which an alert counts as slow in the report (for diagnosis; no target).
const SLOW: Duration = Duration::from_millis(250);
/// How long after the last publish every alert must have reached Slack.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
/// Marks each alert's text so the stand-in can tell which alerts a post carries.
const TOKEN: &str = "bench-seq-";

const ACCOUNT: &str = "123456789012";

/// The routes' grouping in a run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// `groupWaitSeconds: 0`: every alert is posted as soon as it arrives; the pacing burst runs.
    NoWait,
    /// No `grouping` in the spec: the route defaults, group wait included; no pacing burst.
    RouteDefaults,
}

/// Extra latency allowed above the configured group wait (issue 12).
const TARGET_ABOVE_GROUP_WAIT: Duration = Duration::from_millis(500);

/// Runs the latency phase (and, without group wait, the pacing burst) and reports.
pub async fn measure(moto: &Moto, grouping: Grouping) -> Result<Vec<Row>, String> {
    let recorder = Recorder::start().await?;
    let aws = moto.clients(AwsSettings::default()).await;
    let cluster = MemoryCluster::new();
    let namespace = "payments";
    let mut routes = Vec::new();
    for i in 0..ROUTES {
        routes.push(Route::create(&aws, &cluster, namespace, i, grouping).await?);
    }
    let group_wait = Duration::from_secs(routes[0].group_wait_seconds);

    let slack = Arc::new(SlackClient::new(SlackSettings {
        api_base: recorder.api_base(),
        ..SlackSettings::default()
    }));
    let signer = ActionSigner::new(b"a bench key long enough for hmac-sha256 signing")
        .map_err(|e| format!("signer: {e}"))?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for route in &routes {
        let mut consumer = Consumer::new(
            cluster.clone(),
            aws.clone(),
            slack.clone(),
            RouteRef {
                namespace: namespace.to_string(),
                name: route.name.clone(),
            },
            ConsumerOptions::default(),
        )
        .with_signer(signer.clone());
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            consumer
                .run(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        }));
    }

    let mut published: HashMap<u64, Instant> = HashMap::new();
    let mut seq = 0u64;

    // Warm-up: one alert per route (route read, first long poll, connections); not measured.
    let mut warm_up = Vec::new();
    for route in &routes {
        published.insert(seq, Instant::now());
        publish(&aws, &route.topic_arn, seq).await?;
        warm_up.push(seq);
        seq += 1;
    }
    let warmed = recorder.wait_for(&warm_up, DRAIN_DEADLINE).await?;

    // Latency phase: routes interleaved, each at ROUTE_INTERVAL, starting once the warm-up
    // posts no longer hold back the next post to their channel.
    let pacing = slack.settings().min_post_interval;
    let last_warm_up = warmed.values().max().copied().unwrap_or_else(Instant::now);
    tokio::time::sleep_until((last_warm_up + pacing).into()).await;
    let started = Instant::now();
    let mut latency_seqs = Vec::new();
    let mut schedule: Vec<(Duration, usize)> = (0..ALERTS_PER_ROUTE)
        .flat_map(|k| {
            (0..ROUTES).map(move |r| {
                let offset = ROUTE_INTERVAL * k as u32 + ROUTE_INTERVAL * r as u32 / ROUTES as u32;
                (offset, r)
            })
        })
        .collect();
    schedule.sort();
    for (offset, r) in schedule {
        tokio::time::sleep_until((started + offset).into()).await;
        published.insert(seq, Instant::now());
        publish(&aws, &routes[r].topic_arn, seq).await?;
        latency_seqs.push(seq);
        seq += 1;
    }
    let latency_receipts = recorder.wait_for(&latency_seqs, DRAIN_DEADLINE).await?;

    // Pacing phase: a burst at one channel.
    let mut burst_seqs = Vec::new();
    let burst_start = Instant::now();
    if grouping == Grouping::NoWait {
        for k in 0..BURST {
            tokio::time::sleep_until((burst_start + BURST_INTERVAL * k as u32).into()).await;
            published.insert(seq, Instant::now());
            publish(&aws, &routes[0].topic_arn, seq).await?;
            burst_seqs.push(seq);
            seq += 1;
        }
        recorder.wait_for(&burst_seqs, DRAIN_DEADLINE).await?;
    }

    let _ = stop.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }

    let mut latencies: Vec<Duration> = latency_seqs
        .iter()
        .filter_map(|s| Some(latency_receipts.get(s)?.duration_since(*published.get(s)?)))
        .collect();
    latencies.sort();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let max = latencies.last().copied().unwrap_or_default();
    let slow = latencies.iter().filter(|l| **l > SLOW).count();

    let posts = recorder.posts_by_channel();
    let burst_posts = posts.get(&routes[0].channel).map_or(0, |times| {
        times.iter().filter(|t| **t >= burst_start).count()
    });
    let min_spacing = posts
        .values()
        .flat_map(|times| times.windows(2).map(|w| w[1].duration_since(w[0])))
        .min()
        .unwrap_or(Duration::MAX);
    let max_rate = 1.0 / min_spacing.as_secs_f64();
    let total_posts: usize = posts.values().map(Vec::len).sum();

    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    if grouping == Grouping::RouteDefaults {
        let bound = group_wait + TARGET_ABOVE_GROUP_WAIT;
        return Ok(vec![
            Row::info(
                format!(
                    "  route defaults (group wait {} s): alerts, routes",
                    group_wait.as_secs()
                ),
                format!("{}, {ROUTES}", latencies.len()),
            ),
            Row::checked(
                "publish-to-Slack latency p99, route defaults",
                ms(p99),
                format!(
                    "<= {} (group wait + {})",
                    ms(bound),
                    ms(TARGET_ABOVE_GROUP_WAIT)
                ),
                p99 <= bound,
            ),
            Row::info(
                "  added by alertops beyond the group wait: p50 / p99 / max",
                format!(
                    "{} / {} / {}",
                    ms(p50.saturating_sub(group_wait)),
                    ms(p99.saturating_sub(group_wait)),
                    ms(max.saturating_sub(group_wait))
                ),
            ),
        ]);
    }
    Ok(vec![
        Row::info(
            "  latency phase: alerts, routes (channels)",
            format!("{}, {ROUTES}", latencies.len()),
        ),
        Row::info("publish-to-Slack latency p50", ms(p50)),
        Row::checked(
            "publish-to-Slack latency p99",
            ms(p99),
            format!("< {}", ms(TARGET_P99)),
            p99 < TARGET_P99,
        ),
        Row::info("publish-to-Slack latency max", ms(max)),
        Row::info(
            format!("  alerts slower than {}", ms(SLOW)),
            format!("{slow} of {}", latencies.len()),
        ),
        Row::info(
            "  pacing burst: alerts at 10/s to one channel -> posts",
            format!("{BURST} -> {burst_posts}"),
        ),
        Row::checked(
            format!("max posts per channel ({total_posts} posts, all phases)"),
            format!("{max_rate:.2}/s (min gap {})", ms(min_spacing)),
            format!("<= 1/s (gap >= 1 s - {} jitter)", ms(ARRIVAL_JITTER)),
            min_spacing.saturating_add(ARRIVAL_JITTER) >= Duration::from_secs(1),
        ),
    ])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::MAX;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One route's topic, queue, AlertRoute and channel.
struct Route {
    name: String,
    channel: String,
    topic_arn: String,
    /// The group wait the route's spec holds, defaults filled.
    group_wait_seconds: u64,
}

impl Route {
    async fn create(
        aws: &AwsClients,
        cluster: &MemoryCluster,
        namespace: &str,
        i: usize,
        grouping: Grouping,
    ) -> Result<Route, String> {
        // Each run its own topics and queues (CreateQueue of an existing name returns it).
        let run = match grouping {
            Grouping::NoWait => "nowait",
            Grouping::RouteDefaults => "defaults",
        };
        let name = format!("oncall-{i}");
        let channel = format!("C0BENCH{i:02}");
        let topic_arn = aws
            .sns
            .create_topic()
            .name(format!("bench-alerts-{run}-{i}"))
            .send()
            .await
            .map_err(|e| format!("CreateTopic: {e}"))?
            .topic_arn()
            .ok_or("CreateTopic returned no ARN")?
            .to_string();
        let queue_url = aws
            .sqs
            .create_queue()
            .queue_name(format!("bench-route-{run}-{i}"))
            .attributes(QueueAttributeName::VisibilityTimeout, "60")
            .send()
            .await
            .map_err(|e| format!("CreateQueue: {e}"))?
            .queue_url()
            .ok_or("CreateQueue returned no URL")?
            .to_string();
        let queue_arn = aws
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| format!("GetQueueAttributes: {e}"))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or("no queue ARN")?;
        let subscription_arn = aws
            .sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .map_err(|e| format!("Subscribe: {e}"))?
            .subscription_arn()
            .unwrap_or_default()
            .to_string();

        let apply = |manifest: Value| {
            cluster
                .apply_manifest(manifest)
                .map_err(|e| format!("apply: {e}"))
        };
        apply(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("slack-{i}"), "namespace": namespace},
            "stringData": {"token": "xoxb-bench-token"},
        }))?;
        let mut spec = json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"botTokenSecretRef": {"name": format!("slack-{i}"), "key": "token"},
                      "channel": channel, "mentions": ["<!subteam^S0PAYMENTS>"]},
            "actions": {"acknowledge": true},
        });
        if grouping == Grouping::NoWait {
            spec["grouping"] = json!({"groupWaitSeconds": 0});
        }
        apply(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }))?;
        let route: AlertRoute = cluster
            .get(namespace, &name)
            .await
            .map_err(|e| format!("get route: {e}"))?
            .ok_or("route not stored")?;
        cluster
            .patch_status(
                &route,
                json!({
                    "queueUrl": queue_url,
                    "subscriptions": [{"topicArn": topic_arn, "subscriptionArn": subscription_arn}],
                    "subscribedSources": 1,
                }),
            )
            .await
            .map_err(|e| format!("route status: {e}"))?;
        Ok(Route {
            name,
            channel,
            topic_arn,
            group_wait_seconds: u64::try_from(route.spec.grouping.group_wait_seconds)
                .unwrap_or_default(),
        })
    }
}

/// Publishes alert `seq`: even numbers as a CloudWatch alarm notification (its own alarm),
/// odd ones as a plain SNS message.
async fn publish(aws: &AwsClients, topic_arn: &str, seq: u64) -> Result<(), String> {
    let (subject, message) = if seq.is_multiple_of(2) {
        let alarm = format!("{TOKEN}{seq}-api-cpu");
        let body = json!({
            "AlarmName": alarm,
            "AlarmDescription": "CPU of the payments API",
            "AWSAccountId": ACCOUNT,
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [93.5 (01/05/24 10:00:00)] was greater than the threshold (80.0).",
            "StateChangeTime": "2024-05-01T10:00:00.000+0000",
            "Region": "US East (N. Virginia)",
            "AlarmArn": format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}"),
            "OldStateValue": "OK",
            "Trigger": {
                "MetricName": "CPUUtilization", "Namespace": "AWS/EC2",
                "StatisticType": "Statistic", "Statistic": "AVERAGE", "Unit": null,
                "Dimensions": [{"value": "i-0payments", "name": "InstanceId"}],
                "Period": 60, "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold", "Threshold": 80.0,
                "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": ""
            }
        });
        (
            format!("ALARM: \"{alarm}\" in US East (N. Virginia)"),
            body.to_string(),
        )
    } else {
        (
            format!("{TOKEN}{seq} nightly backup failed"),
            format!("Backup job {TOKEN}{seq} failed on db-1: disk full (97% used)."),
        )
    };
    aws.sns
        .publish()
        .topic_arn(topic_arn)
        .subject(subject)
        .message(message)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("Publish: {e}"))
}

/// A Slack stand-in that answers the Web API like Slack and records when each post arrived,
/// to which channel, and which alerts (by [`TOKEN`]) it carried.
#[derive(Clone)]
struct Recorder {
    base: String,
    inner: Arc<Mutex<Recorded>>,
    changed: Arc<Notify>,
}

#[derive(Default)]
struct Recorded {
    /// First arrival of each alert.
    first_seen: HashMap<u64, Instant>,
    /// `chat.postMessage` arrivals per channel, in order.
    posts: BTreeMap<String, Vec<Instant>>,
    next_ts: u64,
}

impl Recorder {
    async fn start() -> Result<Recorder, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind the Slack stand-in: {e}"))?;
        let base = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| format!("Slack stand-in address: {e}"))?
        );
        let recorder = Recorder {
            base,
            inner: Arc::new(Mutex::new(Recorded::default())),
            changed: Arc::new(Notify::new()),
        };
        let app = Router::new().fallback(answer).with_state(recorder.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("Slack stand-in stopped: {error}");
            }
        });
        Ok(recorder)
    }

    fn api_base(&self) -> String {
        format!("{}/api/", self.base)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until every alert of `seqs` has arrived; returns the first arrival of each.
    async fn wait_for(
        &self,
        seqs: &[u64],
        timeout: Duration,
    ) -> Result<HashMap<u64, Instant>, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            {
                let recorded = self.lock();
                let missing: Vec<u64> = seqs
                    .iter()
                    .copied()
                    .filter(|s| !recorded.first_seen.contains_key(s))
                    .collect();
                if missing.is_empty() {
                    return Ok(seqs
                        .iter()
                        .filter_map(|s| Some((*s, *recorded.first_seen.get(s)?)))
                        .collect());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{} of {} alerts did not reach Slack within {timeout:?} (first: {:?})",
                        missing.len(),
                        seqs.len(),
                        &missing[..missing.len().min(5)]
                    ));
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    fn posts_by_channel(&self) -> BTreeMap<String, Vec<Instant>> {
        self.lock().posts.clone()
    }
}

async fn answer(State(recorder): State<Recorder>, uri: Uri, body: Bytes) -> axum::Json<Value> {
    let at = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let channel = body["channel"].as_str().unwrap_or("C000").to_string();
    let method = uri.path().trim_start_matches("/api/").to_string();
    let text = format!("{}{}", body["text"], body["blocks"]);
    let answer = {
        let mut recorded = recorder.lock();
        for seq in tokens(&text) {
            recorded.first_seen.entry(seq).or_insert(at);
        }
        match method.as_str() {
            "chat.postMessage" => {
                recorded.posts.entry(channel.clone()).or_default().push(at);
                recorded.next_ts += 1;
                json!({"ok": true, "channel": channel, "ts": format!("1700000000.{:06}", recorded.next_ts)})
            }
            "chat.update" => json!({"ok": true, "channel": channel, "ts": body["ts"]}),
            _ => json!({"ok": true}),
        }
    };
    recorder.changed.notify_waiters();
    axum::Json(answer)
}

/// The alert numbers marked in a message's text.
fn tokens(text: &str) -> Vec<u64> {
    text.match_indices(TOKEN)
        .filter_map(|(at, _)| {
            let digits: String = text[at + TOKEN.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}
