//! The consumer loop of one route: receive → decode → enrich → match → group → deliver → delete.
//!
//! An SQS message is deleted only after every destination of the route accepted the alert it
//! carries — SES (the email that lists it) and Slack (the post or update that contains it) — or
//! when the route's match deliberately filtered it out. Every other outcome leaves it in the
//! queue: a transient failure (enrichment, SES) or a permanent refusal makes it visible again
//! after a backoff that grows with its receive count, and after `maxReceiveCount` receives SQS
//! moves it to the dead-letter queue. A transient Slack failure (5xx, timeouts, 429s through all
//! retries) instead opens the circuit (see [`super::circuit`]): the batch is held and probed
//! until Slack answers or the outage tolerance runs out, and the backlog then goes out as one
//! storm summary (see [`super::storm`]). Dropping the batch
//! future at any point (abort, shutdown) therefore loses nothing: undeleted messages come back
//! after their visibility timeout.
//!
//! Never doubled: each destination gets an alert once. When one destination accepted and another
//! did not, a receipt keyed by the SQS message id (see [`super::receipts`]) makes the retry skip
//! the one that has it. While a delivery is in progress the visibility of the held messages is
//! extended every third of the timeout, so no other replica receives them meanwhile. Duplicates
//! remain possible only in the windows the README's Reliability section lists.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::alert::{Alert, Enricher, Fingerprint, LogLineFetcher, decode_sqs_body};
use crate::aws::AwsClients;
use crate::email::EmailError;
use crate::k8s::ClusterApi;
use crate::resources::{AlertRoute, EmailDestination};
use crate::slack::snooze::{self, Snooze};
use crate::slack::{
    ActionSigner, ButtonSigning, PostedMessage, RenderOptions, RouteRef, SlackClient, SlackError,
    SlackTarget, human_std_duration, render_alert, render_group_headed, render_storm_summary,
};
use crate::telemetry::Readiness;

use super::ConsumeError;
use super::attribute_groups::{group_key, heading, partition};
use super::circuit::{CircuitSettings, OnFailure, SlackCircuit};
use super::clock::{Clock, system_clock};
use super::metrics::ConsumerMetrics;
use super::plan::{Delivery, PendingAlert, collapse, plan};
use super::queue::{self, QueueFacts, ReceivedMessage, SQS_BATCH};
use super::receipts::{self, Destination, Receipts};
use super::store::{self, MessageIndex};
use super::storm::plan_storm;

/// Firing alarms of one batch whose log lines are read at most (concurrently, within one time
/// budget). More alarms than this go out as a group, which shows no lines anyway.
const MAX_LOG_EXCERPTS_PER_BATCH: usize = 5;

/// Tuning of a consumer. The defaults are the production values.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Long-poll wait of `ReceiveMessage` (whole seconds, at most 20).
    pub wait_time: Duration,
    /// Delay before a failed message is offered again after its first receive; doubles with
    /// each further receive.
    pub retry_initial: Duration,
    /// Longest such delay.
    pub retry_max: Duration,
    /// How long the AlertRoute, its Secret and the queue attributes read are reused.
    pub route_refresh: Duration,
    /// How long enrichment facts (EMR cluster, alarm tags) are cached.
    pub enrichment_ttl: Duration,
    /// Most SQS messages collected into one batch while grouping.
    pub max_batch_messages: usize,
    /// On shutdown, how long a batch already received may take to finish before it is
    /// abandoned (its undeleted messages come back after their visibility timeout).
    pub shutdown_grace: Duration,
    /// Longest pause after a batch that failed to run (route not ready, AWS unreachable).
    pub error_backoff_max: Duration,
    /// Longest Slack outage during which the consumer holds its batch and receives nothing new
    /// (see [`super::circuit`]); beyond it, failed messages are handed back with their backoff
    /// and reach the dead-letter queue after `maxReceiveCount` receives. At most 11 hours: SQS
    /// keeps a received message invisible for at most 12.
    pub slack_outage_tolerance: Duration,
    /// First wait before probing Slack again while the circuit is open; doubles per probe.
    pub probe_initial: Duration,
    /// Longest wait between two probes.
    pub probe_max: Duration,
    /// Most SQS messages drained into one storm summary after an outage; a larger backlog gets
    /// one summary per this many messages.
    pub storm_max_messages: usize,
    /// A batch whose oldest message waited longer than this is a backlog (the consumer was down,
    /// or restarted while Slack was) and is drained into a storm summary, as after an outage
    /// this process saw.
    pub backlog_age: Duration,
}

/// Why a batch drains the queue's backlog into a storm summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backlog {
    /// This process held alerts through a Slack outage of this length.
    AfterOutage(Duration),
    /// The oldest message waited longer than `backlog_age` (a restart during an outage, or a
    /// consumer that was down).
    Found,
}

impl Backlog {
    fn outage(self) -> Option<Duration> {
        match self {
            Backlog::AfterOutage(outage) => Some(outage),
            Backlog::Found => None,
        }
    }
}

/// The longest outage tolerance: a received message stays invisible for at most 12 hours in
/// SQS, and the held batch must not reappear (an hour of margin).
pub const MAX_OUTAGE_TOLERANCE: Duration = Duration::from_secs(11 * 3600);

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            wait_time: Duration::from_secs(20),
            retry_initial: Duration::from_secs(10),
            retry_max: Duration::from_secs(900),
            route_refresh: Duration::from_secs(30),
            enrichment_ttl: Duration::from_secs(300),
            max_batch_messages: 100,
            shutdown_grace: Duration::from_secs(20),
            error_backoff_max: Duration::from_secs(60),
            slack_outage_tolerance: Duration::from_secs(2 * 3600),
            probe_initial: Duration::from_secs(10),
            probe_max: Duration::from_secs(300),
            storm_max_messages: 1000,
            backlog_age: Duration::from_secs(10 * 60),
        }
    }
}

impl ConsumerOptions {
    fn circuit(&self) -> CircuitSettings {
        CircuitSettings {
            tolerance: self.slack_outage_tolerance.min(MAX_OUTAGE_TOLERANCE),
            probe_initial: self.probe_initial,
            probe_max: self.probe_max.max(self.probe_initial),
        }
    }
}

/// What one batch did. Counts are of SQS messages unless they say otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Messages received.
    pub received: usize,
    /// Messages whose alert Slack accepted (then deleted).
    pub delivered: usize,
    /// Messages delivered inside a message listing several alerts.
    pub grouped: usize,
    /// Messages the route's match filtered out (deleted on purpose).
    pub filtered: usize,
    /// Messages kept for a later attempt (enrichment or Slack failure, Slack refusal).
    pub failed: usize,
    /// Of `failed`: messages whose Slack call was refused for good (bad token, unknown channel).
    pub rejected: usize,
    /// Of `failed`: messages that failed on their last receive before the dead-letter queue.
    pub dead_letter_risk: usize,
    /// Slack messages posted (thread replies included).
    pub posts: usize,
    /// Slack messages rewritten with `chat.update`.
    pub updates: usize,
    /// Emails SES accepted.
    pub emails: usize,
    /// Messages SQS confirmed deleted.
    pub deleted: usize,
    /// Storm summaries posted (after a Slack outage), also counted in `posts`.
    pub storm_summaries: usize,
    /// Reminders of alerts still firing posted (not SQS messages).
    pub reminders: usize,
    /// Of `delivered`: messages whose alert a snooze held back from Slack (counted on the
    /// snooze, then deleted).
    pub suppressed: usize,
    /// Snooze ends announced in Slack.
    pub snoozes_ended: usize,
}

impl std::ops::AddAssign for BatchReport {
    fn add_assign(&mut self, other: BatchReport) {
        self.received += other.received;
        self.delivered += other.delivered;
        self.grouped += other.grouped;
        self.filtered += other.filtered;
        self.failed += other.failed;
        self.rejected += other.rejected;
        self.dead_letter_risk += other.dead_letter_risk;
        self.posts += other.posts;
        self.updates += other.updates;
        self.emails += other.emails;
        self.deleted += other.deleted;
        self.storm_summaries += other.storm_summaries;
        self.reminders += other.reminders;
        self.suppressed += other.suppressed;
        self.snoozes_ended += other.snoozes_ended;
    }
}

/// Everything read about the route, reused for `route_refresh`.
struct RouteState {
    route: AlertRoute,
    /// `namespace/name`, the metrics label.
    key: String,
    queue_url: String,
    queue: QueueFacts,
    /// The Slack destination, when the route has one.
    target: Option<SlackTarget>,
    /// The email destination, when the route has one.
    email: Option<EmailDestination>,
    render: RenderOptions,
    loaded_at: Instant,
}

/// Why a message goes back to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Enrichment,
    SlackTransient,
    SlackRejected,
    EmailTransient,
    EmailRejected,
    /// A snooze holds the alert back but its count could not be recorded.
    SnoozeRecord,
}

impl Failure {
    fn label(self) -> &'static str {
        match self {
            Failure::Enrichment => "enrichment",
            Failure::SlackTransient => "slack_transient",
            Failure::SlackRejected => "slack_rejected",
            Failure::EmailTransient => "email_transient",
            Failure::EmailRejected => "email_rejected",
            Failure::SnoozeRecord => "snooze_record",
        }
    }

    /// Refused for good: the route's destination must be fixed.
    fn is_rejection(self) -> bool {
        matches!(self, Failure::SlackRejected | Failure::EmailRejected)
    }
}

/// The alerts a delivery carries.
fn alerts_of<M>(delivery: &Delivery<M>) -> Vec<&Alert> {
    match delivery {
        Delivery::Post { alerts, .. } => alerts.iter().collect(),
        Delivery::Update { alert, .. } | Delivery::ThreadReply { alert, .. } => vec![alert],
    }
}

/// The messages of one batch and what became of them (indices into `messages`).
struct Batch {
    messages: Vec<ReceivedMessage>,
    pending: Vec<PendingAlert<usize>>,
    filtered: Vec<usize>,
    failed: Vec<(usize, Failure)>,
    first_pending_at: Option<Instant>,
    visibility_renewed_at: Instant,
    /// Messages deleted: no longer held, their visibility is not extended.
    deleted: HashSet<usize>,
}

/// Where the delivery of a batch's pending messages stands.
struct Progress {
    /// Per pending message: the destinations that have not accepted its alert yet.
    needs: HashMap<usize, BTreeSet<Destination>>,
    /// Why a message is not delivered yet (its first failure).
    failures: HashMap<usize, Failure>,
    /// Messages whose alert Slack accepted in a message listing several alerts.
    grouped: HashSet<usize>,
    /// The route's delivery receipts (kept only for routes with several destinations).
    receipts: Receipts,
    several: bool,
    /// Deleted messages that have a receipt to remove.
    to_forget: Vec<usize>,
}

impl Progress {
    /// Whether the alert of `item` still waits for `destination`.
    fn needs(&self, item: &PendingAlert<usize>, destination: Destination) -> bool {
        item.messages
            .iter()
            .any(|i| self.needs.get(i).is_some_and(|n| n.contains(&destination)))
    }

    fn fail(&mut self, messages: &[usize], failure: Failure) {
        for &i in messages {
            self.failures.entry(i).or_insert(failure);
        }
    }
}

/// What a successful Slack call produced.
struct Sent {
    /// The message now showing the alerts (bot token only).
    posted: Option<PostedMessage>,
    /// Whether that message lists several alerts.
    grouped: bool,
    post: bool,
}

/// The consumer of one AlertRoute's queue. Usable in-process (the local mode runs one per
/// route as a task) and as the `alertops consume` workload.
pub struct Consumer<C> {
    cluster: C,
    aws: AwsClients,
    slack: Arc<SlackClient>,
    enricher: Arc<Enricher>,
    log_lines: Arc<LogLineFetcher>,
    signer: Option<ActionSigner>,
    metrics: ConsumerMetrics,
    route: RouteRef,
    options: ConsumerOptions,
    state: Option<Arc<RouteState>>,
    in_flight: Arc<AtomicBool>,
    readiness: Readiness,
    /// Whether Slack is considered down (see [`super::circuit`]).
    circuit: Mutex<SlackCircuit>,
    /// Set when the circuit closed after an outage (its length): the next batches drain the
    /// queue into a storm summary until it is empty.
    backlog_after_outage: Mutex<Option<Duration>>,
    clock: Clock,
}

impl<C: ClusterApi> Consumer<C> {
    /// A consumer of the route `route`, reading it (and its Secret) through `cluster`. Share one
    /// `slack` client between the consumers of a process so that posts to one channel are paced
    /// together.
    pub fn new(
        cluster: C,
        aws: AwsClients,
        slack: Arc<SlackClient>,
        route: RouteRef,
        options: ConsumerOptions,
    ) -> Self {
        let enricher = Arc::new(Enricher::new(aws.clone(), options.enrichment_ttl));
        let log_lines = Arc::new(LogLineFetcher::new(
            Arc::new(aws.clone()),
            options.enrichment_ttl,
        ));
        let circuit = Mutex::new(SlackCircuit::new(options.circuit()));
        Consumer {
            cluster,
            aws,
            slack,
            enricher,
            log_lines,
            signer: None,
            metrics: ConsumerMetrics::new(),
            route,
            options,
            state: None,
            in_flight: Arc::new(AtomicBool::new(false)),
            readiness: Readiness::default(),
            circuit,
            backlog_after_outage: Mutex::new(None),
            clock: system_clock(),
        }
    }

    /// Reads the time from `clock` (tests move it to make reminders and snoozes due).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Whether the oldest message of the batch waited longer than `backlog_age` in the queue.
    fn waited_too_long(&self, batch: &Batch) -> bool {
        let Ok(age) = chrono::Duration::from_std(self.options.backlog_age) else {
            return false;
        };
        batch
            .messages
            .iter()
            .filter_map(|m| m.sent_at)
            .min()
            .is_some_and(|oldest| self.now() - oldest > age)
    }

    /// Ready once the route was read and its queue answered; not ready while a batch cannot
    /// run (route missing, no queue yet, AWS unreachable). `/readyz` serves it.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The AWS clients (whose metrics `/metrics` serves).
    pub fn aws(&self) -> &AwsClients {
        &self.aws
    }

    /// Signs Acknowledge and Retry buttons with `signer`; without one, messages have no buttons.
    pub fn with_signer(mut self, signer: ActionSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Uses `enricher` (for example one shared by every consumer of a process).
    pub fn with_enricher(mut self, enricher: Arc<Enricher>) -> Self {
        self.enricher = enricher;
        self
    }

    /// Reads the log lines of firing log alarms with `log_lines` (for example one whose
    /// CloudWatch Logs refuses, in tests).
    pub fn with_log_lines(mut self, log_lines: Arc<LogLineFetcher>) -> Self {
        self.log_lines = log_lines;
        self
    }

    /// Counts into `metrics` (for example one set registered once for the whole process).
    pub fn with_metrics(mut self, metrics: ConsumerMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The metrics this consumer counts into.
    pub fn metrics(&self) -> &ConsumerMetrics {
        &self.metrics
    }

    /// The route this consumer serves.
    pub fn route(&self) -> &RouteRef {
        &self.route
    }

    /// Runs batches until `shutdown` completes. A batch that already holds messages when it
    /// does gets `shutdown_grace` to finish and is then abandoned; an idle long poll is dropped
    /// at once. Batch errors are logged, counted and retried with a growing pause.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = pin!(shutdown);
        let mut failures: u32 = 0;
        let route_key = format!("{}/{}", self.route.namespace, self.route.name);
        let in_flight = self.in_flight.clone();
        let grace = self.options.shutdown_grace;
        let error_backoff_max = self.options.error_backoff_max;
        let metrics = self.metrics.clone();
        let readiness = self.readiness.clone();
        loop {
            let result = {
                let mut batch = pin!(self.run_once());
                tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        if in_flight.load(Ordering::SeqCst) {
                            tracing::info!(route = %route_key, "shutting down: finishing the batch in flight");
                            if tokio::time::timeout(grace, &mut batch).await.is_err() {
                                tracing::warn!(route = %route_key, "shutting down: abandoned the batch in flight; its undelivered messages return to the queue");
                            }
                        }
                        tracing::info!(route = %route_key, "consumer stopped");
                        return;
                    }
                    result = &mut batch => result,
                }
            };
            match result {
                Ok(report) => {
                    failures = 0;
                    readiness.set(true);
                    if report.received > 0 {
                        tracing::debug!(route = %route_key, ?report, "batch done");
                    }
                }
                Err(error) => {
                    readiness.set(false);
                    failures = failures.saturating_add(1);
                    metrics.batch_error(&route_key, error.category());
                    let pause = Duration::from_secs(1)
                        .saturating_mul(1u32 << failures.min(10))
                        .min(error_backoff_max);
                    tracing::warn!(route = %route_key, %error, ?pause, "consumer batch failed");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => {
                            tracing::info!(route = %route_key, "consumer stopped");
                            return;
                        }
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// One batch: a long poll, the grouping window (after a Slack outage: the whole backlog,
    /// up to `storm_max_messages`), delivery, deletes and delays.
    pub async fn run_once(&mut self) -> Result<BatchReport, ConsumeError> {
        self.in_flight.store(false, Ordering::SeqCst);
        let state = self.route_state().await?;
        let mut report = BatchReport::default();
        let first = queue::receive(
            &self.aws,
            &state.queue_url,
            SQS_BATCH,
            self.options.wait_time,
        )
        .await?;
        if first.is_empty() {
            // Nothing waits: any backlog of an outage is delivered.
            self.backlog_after_outage
                .lock()
                .expect("not poisoned")
                .take();
            self.housekeeping(&state, &mut report).await;
            return Ok(report);
        }
        let outage = self
            .backlog_after_outage
            .lock()
            .expect("not poisoned")
            .take();
        self.in_flight.store(true, Ordering::SeqCst);
        let mut batch = Batch {
            messages: Vec::new(),
            pending: Vec::new(),
            filtered: Vec::new(),
            failed: Vec::new(),
            first_pending_at: None,
            visibility_renewed_at: Instant::now(),
            deleted: HashSet::new(),
        };
        self.absorb(&state, first, &mut batch).await;
        let backlog = match outage {
            Some(outage) => Some(Backlog::AfterOutage(outage)),
            None => self.waited_too_long(&batch).then_some(Backlog::Found),
        };
        let backlog_left = match backlog {
            Some(_) => !self.collect_backlog(&state, &mut batch).await,
            None => {
                self.collect_group(&state, &mut batch).await;
                false
            }
        };
        report.received = batch.messages.len();
        self.metrics.received(&state.key, report.received);

        // Filtered on purpose: gone at once.
        report.filtered = batch.filtered.len();
        self.metrics.filtered(&state.key, report.filtered);
        if !batch.filtered.is_empty() {
            let filtered: Vec<&ReceivedMessage> =
                batch.filtered.iter().map(|&i| &batch.messages[i]).collect();
            report.deleted += self.delete(&state, &filtered).await;
            batch.deleted.extend(batch.filtered.iter().copied());
        }

        let mut pending = collapse(std::mem::take(&mut batch.pending));
        if backlog.is_none() {
            // A backlog goes out as one storm summary, which shows no log lines.
            self.attach_log_lines(&mut pending).await;
        }
        if !pending.is_empty() {
            self.deliver(&state, &mut batch, pending, backlog, &mut report)
                .await;
        }
        self.delay_failed(&state, &batch, &mut report).await;
        if let Some(Backlog::AfterOutage(outage)) = backlog.filter(|_| backlog_left) {
            // More than one summary's worth: the next batch summarises the rest. A newer
            // outage that ended during this batch is kept instead.
            self.backlog_after_outage
                .lock()
                .expect("not poisoned")
                .get_or_insert(outage);
        }
        self.housekeeping(&state, &mut report).await;
        Ok(report)
    }

    /// After each pass: announce the snoozes that ended, then post due reminders.
    async fn housekeeping(&self, state: &RouteState, report: &mut BatchReport) {
        let snoozes = self.load_snoozes(state).await;
        report.snoozes_ended = self.end_snoozes(state, &snoozes).await;
        report.reminders = self.remind(state, &snoozes).await;
        self.metrics.snoozes_ended(&state.key, report.snoozes_ended);
        self.metrics.reminded(&state.key, report.reminders);
    }

    /// The route's snoozes (routes with `actions.snooze`); none when they cannot be read, so
    /// that alerts are posted rather than held back on a guess.
    async fn load_snoozes(&self, state: &RouteState) -> Vec<Snooze> {
        if !snooze::route_snoozes(&state.route) {
            return Vec::new();
        }
        match snooze::list(&self.cluster, &self.route.namespace, &self.route.name).await {
            Ok(snoozes) => snoozes,
            Err(error) => {
                tracing::warn!(route = %state.key, %error, "cannot read the route's snoozes; snoozed alerts are posted");
                Vec::new()
            }
        }
    }

    /// Announces, once across replicas, each snooze whose time is up ("ended: N suppressed" in
    /// the alert's thread), and deletes ended snoozes past their retention. Returns how many
    /// ends were announced.
    async fn end_snoozes(&self, state: &RouteState, snoozes: &[Snooze]) -> usize {
        let now = self.now();
        let bot_token = match &state.target {
            Some(SlackTarget::Bot { token, .. }) => Some(token.as_str()),
            _ => None,
        };
        let mut announced = 0;
        for ended in snoozes.iter().filter(|s| s.is_due_to_end(now)) {
            match snooze::claim_end(&self.cluster, ended, now).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(route = %state.key, snooze = %ended.name, %error, "cannot mark the snooze ended; trying again on the next pass");
                    continue;
                }
            }
            let text = crate::slack::render_snooze_ended(&ended.by, ended.suppressed);
            let sent = match (bot_token, &ended.message) {
                (Some(token), Some(message)) => self
                    .slack
                    .reply_in_thread(token, message, &text)
                    .await
                    .map(|_| ()),
                // No thread to post in: the record says it ended, and kubectl shows the count.
                _ => Ok(()),
            };
            match sent {
                Ok(()) => {
                    announced += 1;
                    tracing::info!(route = %state.key, snooze = %ended.name, fingerprint = %ended.fingerprint, suppressed = ended.suppressed, "snooze ended");
                }
                Err(error) => {
                    tracing::warn!(route = %state.key, snooze = %ended.name, %error, "the end of the snooze did not reach Slack; announcing it again next pass");
                    if let Err(error) = snooze::release_end(&self.cluster, ended).await {
                        tracing::warn!(route = %state.key, snooze = %ended.name, %error, "cannot release the snooze's end; its end stays unannounced");
                    }
                }
            }
        }
        for expired in snoozes.iter().filter(|s| s.is_expired(now)) {
            if let Err(error) = snooze::remove(&self.cluster, expired).await {
                tracing::debug!(route = %state.key, snooze = %expired.name, %error, "cannot delete an expired snooze");
            }
        }
        announced
    }

    /// Holds back the Slack delivery of firing alerts that an active snooze covers: each is
    /// counted on its snooze (one key per SQS message), and only then accepted for Slack, so
    /// its message is deleted once its other destinations have it too. A count that cannot be
    /// recorded keeps the message for a later attempt. Returns the alerts to deliver.
    async fn hold_snoozed(
        &self,
        state: &RouteState,
        batch: &mut Batch,
        progress: &mut Progress,
        for_slack: Vec<PendingAlert<usize>>,
        report: &mut BatchReport,
    ) -> Vec<PendingAlert<usize>> {
        let snoozes = self.load_snoozes(state).await;
        if snoozes.is_empty() {
            return for_slack;
        }
        let now = self.now();
        let mut deliver = Vec::with_capacity(for_slack.len());
        for item in for_slack {
            let active = (item.alert.state == crate::resources::AlertState::Firing)
                .then(|| snooze::active_for(&snoozes, &item.alert.fingerprint, now))
                .flatten();
            let Some(active) = active else {
                deliver.push(item);
                continue;
            };
            let ids: Vec<&str> = item
                .messages
                .iter()
                .map(|&i| batch.messages[i].message_id.as_str())
                .collect();
            match snooze::count_suppressed(&self.cluster, active, &ids, now).await {
                Ok(()) => {
                    tracing::info!(route = %state.key, fingerprint = %item.alert.fingerprint, snooze = %active.name, until = %active.until, "alert held back by a snooze: counted, not posted");
                    report.suppressed += item.messages.len();
                    self.metrics.snoozed(&state.key, item.messages.len());
                    self.accepted(
                        state,
                        batch,
                        progress,
                        &item.messages,
                        Destination::Slack,
                        report,
                    )
                    .await;
                }
                Err(error) => {
                    tracing::warn!(route = %state.key, fingerprint = %item.alert.fingerprint, %error, "cannot count the alert on its snooze; it stays queued");
                    progress.fail(&item.messages, Failure::SnoozeRecord);
                }
            }
        }
        deliver
    }

    /// Posts the reminders due on the route (see [`super::reminders`]): a reply in the thread
    /// of each alert's message, also shown in the channel, linking to the first post. Only
    /// routes with `grouping.repeatIntervalMinutes` and a bot token have them. Returns how
    /// many were posted; failures are logged (that reminder is skipped, the next one comes an
    /// interval later).
    async fn remind(&self, state: &RouteState, snoozes: &[Snooze]) -> usize {
        let (Some(minutes), Some(SlackTarget::Bot { token, .. })) = (
            state.route.spec.grouping.repeat_interval_minutes,
            state.target.as_ref(),
        ) else {
            return 0;
        };
        let interval = chrono::Duration::minutes(i64::from(minutes.max(1)));
        let now = self.now();
        let snoozed: Vec<Fingerprint> = snoozes
            .iter()
            .filter(|s| s.is_active(now))
            .map(|s| s.fingerprint.clone())
            .collect();
        let claimed = match super::reminders::claim(
            &self.cluster,
            &self.route.namespace,
            &self.route.name,
            now,
            interval,
            &snoozed,
        )
        .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(route = %state.key, %error, "cannot read or claim due reminders; trying again on the next pass");
                return 0;
            }
        };
        let mut posted = 0;
        for reminder in claimed {
            let message = reminder.message.posted();
            let permalink = match self.slack.permalink(token, &message).await {
                Ok(permalink) => Some(permalink),
                Err(error) => {
                    tracing::debug!(route = %state.key, %error, "no permalink for the reminder; it goes without the link");
                    None
                }
            };
            let text = crate::slack::render_reminder(
                reminder.message.title.as_deref(),
                reminder.firing_for,
                permalink.as_deref(),
            );
            match self.slack.broadcast_in_thread(token, &message, &text).await {
                Ok(_) => {
                    posted += 1;
                    tracing::info!(route = %state.key, fingerprint = %reminder.fingerprint, destination = "slack", call = "reminder", "alert still firing: reminder posted");
                }
                Err(error) => {
                    tracing::warn!(route = %state.key, fingerprint = %reminder.fingerprint, %error, "the reminder did not reach Slack; the next one comes an interval later");
                }
            }
        }
        posted
    }

    /// Delivers the batch's pending alerts to every destination of the route that has not
    /// accepted them yet — email first (one email per group), then Slack — and deletes each
    /// message once all its destinations accepted. While a destination accepted a message and
    /// another has not, a receipt records it, so the retry skips the destination that has it.
    /// Every call runs under [`Consumer::holding`], which keeps the messages invisible to other
    /// consumers however long the call waits.
    async fn deliver(
        &self,
        state: &RouteState,
        batch: &mut Batch,
        pending: Vec<PendingAlert<usize>>,
        backlog: Option<Backlog>,
        report: &mut BatchReport,
    ) {
        let destinations: Vec<Destination> = [
            state.target.as_ref().map(|_| Destination::Slack),
            state.email.as_ref().map(|_| Destination::Email),
        ]
        .into_iter()
        .flatten()
        .collect();
        let several = destinations.len() > 1;
        let receipts = if several {
            self.load_receipts(state).await
        } else {
            Receipts::default()
        };
        let mut needs = HashMap::new();
        for &i in pending.iter().flat_map(|p| &p.messages) {
            let id = batch.messages[i].message_id.as_str();
            let open: BTreeSet<Destination> = destinations
                .iter()
                .copied()
                .filter(|d| !receipts.accepted(id, *d))
                .collect();
            needs.insert(i, open);
        }
        let mut progress = Progress {
            needs,
            failures: HashMap::new(),
            grouped: HashSet::new(),
            receipts,
            several,
            to_forget: Vec::new(),
        };
        let max_per_message = state
            .route
            .spec
            .grouping
            .max_alerts_per_message
            .clamp(1, 40) as usize;
        let by_attributes = &state.route.spec.grouping.by_attributes;

        // Destinations that accepted on an earlier receive are skipped; a message they were
        // the last of is complete now.
        let complete: Vec<usize> = progress
            .needs
            .iter()
            .filter(|(_, open)| open.is_empty())
            .map(|(&i, _)| i)
            .collect();
        self.settle(state, batch, &mut progress, &complete, report)
            .await;

        if let Some(email) = &state.email {
            let for_email: Vec<&PendingAlert<usize>> = pending
                .iter()
                .filter(|p| progress.needs(p, Destination::Email))
                .collect();
            // One email per attribute group too (each alert shows the values it is grouped by).
            let groups = partition(for_email, |p| group_key(&p.alert, by_attributes));
            for group in groups
                .iter()
                .flat_map(|(_, members)| members.chunks(max_per_message))
            {
                let alerts: Vec<&Alert> = group.iter().map(|p| &p.alert).collect();
                let ids: Vec<usize> = group.iter().flat_map(|p| p.messages.clone()).collect();
                let sent = self
                    .holding(state, batch, self.deliver_by_email(state, email, &alerts))
                    .await;
                match sent {
                    Ok(()) => {
                        report.emails += 1;
                        self.accepted(
                            state,
                            batch,
                            &mut progress,
                            &ids,
                            Destination::Email,
                            report,
                        )
                        .await;
                    }
                    Err(failure) => progress.fail(&ids, failure),
                }
            }
        }

        if let Some(target) = &state.target {
            let for_slack: Vec<PendingAlert<usize>> = pending
                .iter()
                .filter(|p| progress.needs(p, Destination::Slack))
                .cloned()
                .collect();
            let bot_token = match target {
                SlackTarget::Bot { token, .. } => Some(token.clone()),
                _ => None,
            };
            let index = match bot_token {
                Some(_) if !for_slack.is_empty() => Some(self.load_index(state).await),
                _ => None,
            };
            let for_slack = self
                .hold_snoozed(state, batch, &mut progress, for_slack, report)
                .await;
            // After an outage the backlog is summarised (see `super::storm`); otherwise, and for
            // what needs its own message, the usual plan.
            let (summary, deliveries) = match backlog {
                Some(backlog) => {
                    let storm = plan_storm(
                        for_slack,
                        index.as_ref(),
                        max_per_message,
                        by_attributes,
                        backlog.outage(),
                    );
                    (storm.summary, storm.deliveries)
                }
                None => (
                    None,
                    plan(for_slack, index.as_ref(), max_per_message, by_attributes),
                ),
            };
            if let Some(post) = summary {
                let ids = post.messages;
                let message = render_storm_summary(&post.summary, &state.render);
                let sent = self
                    .through_circuit(state, batch, || {
                        self.deliver_summary(state, target, &message, post.summary.lines.len())
                    })
                    .await;
                match sent {
                    Ok(sent) => {
                        if let Some(posted) = &sent.posted {
                            // The summary notified people of each alert it lists.
                            let at = self.now();
                            let entries = post
                                .alerts
                                .iter()
                                .map(|alert| {
                                    let earlier = index
                                        .as_ref()
                                        .and_then(|index| index.get(&alert.fingerprint));
                                    let record = super::plan::record_after(
                                        earlier, true, alert, posted, true, at,
                                    );
                                    (alert.fingerprint.clone(), record)
                                })
                                .collect();
                            self.save_records(state, &entries).await;
                        }
                        report.posts += 1;
                        report.storm_summaries += 1;
                        progress.grouped.extend(ids.iter().copied());
                        self.accepted(
                            state,
                            batch,
                            &mut progress,
                            &ids,
                            Destination::Slack,
                            report,
                        )
                        .await;
                    }
                    Err(failure) => progress.fail(&ids, failure),
                }
            }
            let now = self.now();
            let signing = self
                .signer
                .as_ref()
                .map(|signer| ButtonSigning { signer, now });
            for delivery in deliveries {
                let ids = delivery.messages().to_vec();
                let sent = self
                    .through_circuit(state, batch, || {
                        self.deliver_to_slack(
                            state,
                            target,
                            bot_token.as_deref(),
                            &delivery,
                            signing,
                        )
                    })
                    .await;
                match sent {
                    Ok(sent) => {
                        if sent.post {
                            report.posts += 1;
                        } else {
                            report.updates += 1;
                        }
                        if sent.grouped {
                            progress.grouped.extend(ids.iter().copied());
                        }
                        self.accepted(
                            state,
                            batch,
                            &mut progress,
                            &ids,
                            Destination::Slack,
                            report,
                        )
                        .await;
                    }
                    Err(failure) => progress.fail(&ids, failure),
                }
            }
        }

        for (&i, open) in &progress.needs {
            let failure = progress.failures.get(&i).copied().unwrap_or(
                // Every open destination was tried; this only guards the bookkeeping.
                match open.first() {
                    Some(Destination::Email) => Failure::EmailTransient,
                    _ => Failure::SlackTransient,
                },
            );
            batch.failed.push((i, failure));
        }
        if !progress.to_forget.is_empty() {
            let ids: Vec<&str> = progress
                .to_forget
                .iter()
                .map(|&i| batch.messages[i].message_id.as_str())
                .collect();
            if let Err(error) = receipts::forget(&self.cluster, &state.route, &ids).await {
                tracing::warn!(route = %state.key, %error, "cannot remove the delivery receipts of deleted messages; they expire with the oldest");
            }
        }
    }

    /// `destination` accepted the alerts of `messages`: messages it was the last destination
    /// of are deleted, the others get a receipt saying it has them.
    async fn accepted(
        &self,
        state: &RouteState,
        batch: &mut Batch,
        progress: &mut Progress,
        messages: &[usize],
        destination: Destination,
        report: &mut BatchReport,
    ) {
        let mut complete = Vec::new();
        let mut waiting = Vec::new();
        for &i in messages {
            let Some(open) = progress.needs.get_mut(&i) else {
                continue;
            };
            open.remove(&destination);
            if open.is_empty() {
                complete.push(i);
            } else {
                waiting.push(i);
            }
        }
        if progress.several && !waiting.is_empty() {
            let at = self.now();
            for &i in &waiting {
                progress
                    .receipts
                    .accept(&batch.messages[i].message_id, destination, at);
            }
            let ids: Vec<&str> = waiting
                .iter()
                .map(|&i| batch.messages[i].message_id.as_str())
                .collect();
            if let Err(error) =
                receipts::record(&self.cluster, &state.route, &progress.receipts, &ids).await
            {
                tracing::warn!(route = %state.key, destination = destination.as_str(), %error, "cannot record that the destination accepted; a retry may send it the alerts again");
            }
        }
        self.settle(state, batch, progress, &complete, report).await;
    }

    /// Deletes `complete` messages (every destination accepted their alert) and counts them.
    async fn settle(
        &self,
        state: &RouteState,
        batch: &mut Batch,
        progress: &mut Progress,
        complete: &[usize],
        report: &mut BatchReport,
    ) {
        if complete.is_empty() {
            return;
        }
        report.delivered += complete.len();
        self.metrics.delivered(&state.key, complete.len());
        let grouped = complete
            .iter()
            .filter(|i| progress.grouped.contains(i))
            .count();
        if grouped > 0 {
            report.grouped += grouped;
            self.metrics.grouped(&state.key, grouped);
        }
        let messages: Vec<&ReceivedMessage> =
            complete.iter().map(|&i| &batch.messages[i]).collect();
        report.deleted += self.delete(state, &messages).await;
        for &i in complete {
            progress.needs.remove(&i);
            batch.deleted.insert(i);
            if progress.receipts.contains(&batch.messages[i].message_id) {
                progress.to_forget.push(i);
            }
        }
    }

    /// Runs `work` (one delivery) while keeping the batch's undeleted messages invisible to
    /// other consumers: their visibility timeout is extended every third of it until `work`
    /// completes. A single Slack call can wait minutes (Retry-After, pacing of a channel);
    /// without this another replica would receive the messages and deliver them again.
    async fn holding<T>(
        &self,
        state: &RouteState,
        batch: &mut Batch,
        work: impl Future<Output = T>,
    ) -> T {
        let period = (state.queue.visibility_timeout / 3).max(Duration::from_millis(500));
        let mut work = pin!(work);
        loop {
            let next = batch.visibility_renewed_at + period;
            tokio::select! {
                biased;
                output = &mut work => return output,
                () = tokio::time::sleep_until(next) => self.extend_visibility(state, batch).await,
            }
        }
    }

    /// Runs one Slack delivery (`attempt`) through the circuit breaker, under [`Consumer::holding`].
    /// A transient failure opens the circuit: the batch is held (its visibility extended, nothing
    /// new received) and `attempt` is repeated as the probe, at a growing interval, until Slack
    /// accepts it or the outage outlasts the tolerance (then the failure is returned and the
    /// messages go back with their backoff). A refusal is returned at once. The first success
    /// after an outage closes the circuit and asks the next batches for a storm summary.
    async fn through_circuit<F, Fut>(
        &self,
        state: &RouteState,
        batch: &mut Batch,
        mut attempt: F,
    ) -> Result<Sent, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Sent, Failure>>,
    {
        loop {
            match self.holding(state, batch, attempt()).await {
                Ok(sent) => {
                    let closed = self
                        .circuit
                        .lock()
                        .expect("not poisoned")
                        .succeeded(Instant::now());
                    if let Some(outage) = closed {
                        self.metrics.circuit_open(&state.key, false);
                        tracing::info!(route = %state.key, outage = %human_std_duration(outage), "Slack accepts again: circuit closed; the backlog follows as a storm summary");
                        *self.backlog_after_outage.lock().expect("not poisoned") = Some(outage);
                    }
                    return Ok(sent);
                }
                Err(Failure::SlackTransient) => {
                    let verdict = self
                        .circuit
                        .lock()
                        .expect("not poisoned")
                        .failed(Instant::now());
                    let held = batch.messages.len() - batch.deleted.len();
                    match verdict {
                        OnFailure::Hold { probe_in, opened } => {
                            if opened {
                                self.metrics.circuit_open(&state.key, true);
                                tracing::warn!(route = %state.key, held, tolerance = %human_std_duration(self.options.circuit().tolerance), "Slack unreachable: circuit open; holding the batch (visibility extended), receiving nothing new, probing at a growing interval");
                            }
                            tracing::info!(route = %state.key, held, next_probe_in = ?probe_in, "circuit open: Slack still failing");
                            self.holding(state, batch, tokio::time::sleep(probe_in))
                                .await;
                        }
                        OnFailure::GiveUp { open_for } => {
                            tracing::error!(route = %state.key, held, open_for = %human_std_duration(open_for), "Slack unreachable for longer than the outage tolerance: handing the messages back with their backoff; after maxReceiveCount receives they reach the dead-letter queue (see the route's DeadLetters condition)");
                            return Err(Failure::SlackTransient);
                        }
                    }
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// After an outage: receives the queue's backlog into the batch, up to
    /// `storm_max_messages`, keeping what it holds invisible meanwhile. Returns whether the
    /// queue was drained (a receive came back empty).
    async fn collect_backlog(&self, state: &RouteState, batch: &mut Batch) -> bool {
        let period = (state.queue.visibility_timeout / 3).max(Duration::from_millis(500));
        let max = self.options.storm_max_messages.max(SQS_BATCH);
        while batch.messages.len() < max {
            if batch.visibility_renewed_at.elapsed() >= period {
                self.extend_visibility(state, batch).await;
            }
            let room = (max - batch.messages.len()).min(SQS_BATCH);
            // A long poll of a second: a short poll may miss messages that are there.
            match queue::receive(&self.aws, &state.queue_url, room, Duration::from_secs(1)).await {
                Ok(more) if more.is_empty() => return true,
                Ok(more) => self.absorb(state, more, batch).await,
                Err(error) => {
                    tracing::warn!(route = %state.key, %error, "receive failed while draining the backlog; summarising what is held");
                    return false;
                }
            }
        }
        false
    }

    /// Posts the storm summary of `problems` problems.
    async fn deliver_summary(
        &self,
        state: &RouteState,
        target: &SlackTarget,
        message: &crate::slack::SlackMessage,
        problems: usize,
    ) -> Result<Sent, Failure> {
        let started = Instant::now();
        match self.slack.post(target, message).await {
            Ok(posted) => {
                self.metrics
                    .slack_latency(&state.key, "post", started.elapsed());
                tracing::info!(route = %state.key, destination = "slack", call = "storm_summary", problems, "storm summary delivered");
                Ok(Sent {
                    posted,
                    grouped: true,
                    post: true,
                })
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(route = %state.key, destination = "slack", %error, "Slack did not take the storm summary");
                Err(Failure::SlackTransient)
            }
            Err(error) => {
                tracing::error!(route = %state.key, destination = "slack", %error, "SLACK REFUSED the storm summary; fix the route's Slack destination");
                Err(Failure::SlackRejected)
            }
        }
    }

    /// Delivers to Slack, logging each alert with the route and its fingerprint; on success the
    /// message that now shows the alerts is remembered.
    async fn deliver_to_slack(
        &self,
        state: &RouteState,
        target: &SlackTarget,
        bot_token: Option<&str>,
        delivery: &Delivery<usize>,
        signing: Option<ButtonSigning<'_>>,
    ) -> Result<Sent, Failure> {
        let started = Instant::now();
        match self.send(state, target, bot_token, delivery, signing).await {
            Ok(sent) => {
                let call = match (delivery, sent.post) {
                    (Delivery::ThreadReply { .. }, _) => "thread_reply",
                    (_, true) => "post",
                    (_, false) => "update",
                };
                self.metrics
                    .slack_latency(&state.key, call, started.elapsed());
                for alert in alerts_of(delivery) {
                    tracing::info!(route = %state.key, fingerprint = %alert.fingerprint, destination = "slack", call, alerts = delivery.alert_count(), "alert delivered");
                }
                if let Some(posted) = &sent.posted {
                    self.remember(state, delivery, posted, sent.grouped).await;
                }
                Ok(sent)
            }
            Err(error) if error.is_transient() => {
                for alert in alerts_of(delivery) {
                    tracing::warn!(route = %state.key, fingerprint = %alert.fingerprint, destination = "slack", %error, "Slack did not take the alert; it stays queued and returns after a backoff");
                }
                Err(Failure::SlackTransient)
            }
            Err(error) => {
                for alert in alerts_of(delivery) {
                    tracing::error!(route = %state.key, fingerprint = %alert.fingerprint, destination = "slack", %error, "SLACK REFUSED the alert; fix the route's Slack destination — the message stays queued and goes to the dead-letter queue after maxReceiveCount receives");
                }
                Err(Failure::SlackRejected)
            }
        }
    }

    /// Sends one email listing `alerts` through SES, logging each alert with the route and its
    /// fingerprint.
    async fn deliver_by_email(
        &self,
        state: &RouteState,
        destination: &EmailDestination,
        alerts: &[&Alert],
    ) -> Result<(), Failure> {
        let owned: Vec<Alert> = alerts.iter().map(|a| (*a).clone()).collect();
        let message =
            super::email::render(&state.key, &owned, destination.subject_prefix.as_deref());
        let started = Instant::now();
        match crate::email::send_email(&self.aws, destination, &message).await {
            Ok(sent) => {
                self.metrics.email_sent(&state.key, started.elapsed());
                for alert in alerts {
                    tracing::info!(route = %state.key, fingerprint = %alert.fingerprint, destination = "email", ses_message_id = sent.message_id.as_deref().unwrap_or_default(), alerts = alerts.len(), "alert delivered");
                }
                Ok(())
            }
            Err(error) => {
                let failure = email_failure(&error);
                for alert in alerts {
                    if failure == Failure::EmailTransient {
                        tracing::warn!(route = %state.key, fingerprint = %alert.fingerprint, destination = "email", %error, "SES did not take the email; the alert stays queued and returns after a backoff");
                    } else {
                        tracing::error!(route = %state.key, fingerprint = %alert.fingerprint, destination = "email", %error, "SES REFUSED the email; fix the route's email destination (is the sender verified?) — the message stays queued and goes to the dead-letter queue after maxReceiveCount receives");
                    }
                }
                Err(failure)
            }
        }
    }

    /// The route, its Slack target and its queue's attributes, read again after `route_refresh`.
    async fn route_state(&mut self) -> Result<Arc<RouteState>, ConsumeError> {
        if let Some(state) = &self.state
            && state.loaded_at.elapsed() < self.options.route_refresh
        {
            return Ok(state.clone());
        }
        let RouteRef { namespace, name } = &self.route;
        let key = format!("{namespace}/{name}");
        let route: AlertRoute = self
            .cluster
            .get(namespace, name)
            .await?
            .ok_or_else(|| ConsumeError::RouteNotFound(key.clone()))?;
        let queue_url = route
            .status
            .as_ref()
            .and_then(|s| s.queue_url.clone())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ConsumeError::QueueNotReady(key.clone()))?;
        if route.spec.slack.is_none() && route.spec.email.is_none() {
            return Err(ConsumeError::NoDestination(key));
        }
        let target = match &route.spec.slack {
            Some(slack) => {
                Some(super::resolve_target(&self.cluster, namespace, &key, slack).await?)
            }
            None => None,
        };
        let queue = queue::queue_facts(&self.aws, &queue_url).await?;
        self.record_queue_depths(&key, &route, &queue).await;
        let state = Arc::new(RouteState {
            render: RenderOptions::for_route(&route),
            email: route.spec.email.clone(),
            route,
            key,
            queue_url,
            queue,
            target,
            loaded_at: Instant::now(),
        });
        self.state = Some(state.clone());
        // The route was read and its queue answered GetQueueAttributes.
        self.readiness.set(true);
        Ok(state)
    }

    /// Sets the depth gauges of the route's queue (from the facts just read) and of its
    /// dead-letter queue (one more GetQueueAttributes per route refresh). A failed read of the
    /// dead-letter queue only leaves its gauge as it was: it never stops delivery.
    async fn record_queue_depths(&self, key: &str, route: &AlertRoute, queue: &QueueFacts) {
        if let Some(waiting) = queue.waiting_messages {
            self.metrics.queue_depth(key, "main", waiting);
        }
        let Some(dead_letter_url) = route
            .status
            .as_ref()
            .and_then(|s| s.dead_letter_queue_url.as_deref())
            .filter(|u| !u.is_empty())
        else {
            return;
        };
        match queue::queue_facts(&self.aws, dead_letter_url).await {
            Ok(facts) => {
                if let Some(waiting) = facts.waiting_messages {
                    self.metrics.queue_depth(key, "dead_letter", waiting);
                }
            }
            Err(error) => {
                tracing::debug!(route = %key, %error, "cannot read the dead-letter queue's depth")
            }
        }
    }

    /// Keeps receiving until the route's group wait has passed since the first matching alert
    /// (capped at a third of the visibility timeout, so grouping never lets messages reappear).
    async fn collect_group(&self, state: &RouteState, batch: &mut Batch) {
        let wait_seconds = state.route.spec.grouping.group_wait_seconds.max(0) as u64;
        let group_wait = Duration::from_secs(wait_seconds).min(state.queue.visibility_timeout / 3);
        let Some(first) = batch.first_pending_at else {
            return;
        };
        let deadline = first + group_wait;
        while batch.messages.len() < self.options.max_batch_messages {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let room = (self.options.max_batch_messages - batch.messages.len()).min(SQS_BATCH);
            let wait = match queue::group_poll(deadline - now) {
                queue::GroupPoll::Long(wait) => wait,
                queue::GroupPoll::SleepThenShort(pause) => {
                    tokio::time::sleep(pause).await;
                    Duration::ZERO
                }
            };
            match queue::receive(&self.aws, &state.queue_url, room, wait).await {
                Ok(more) => self.absorb(state, more, batch).await,
                Err(error) => {
                    // Deliver what is held; the next batch polls again.
                    tracing::warn!(route = %state.key, %error, "receive failed while grouping");
                    break;
                }
            }
        }
    }

    /// Decodes, enriches and matches received messages into the batch.
    async fn absorb(&self, state: &RouteState, messages: Vec<ReceivedMessage>, batch: &mut Batch) {
        let single_topic = state
            .route
            .status
            .as_ref()
            .filter(|s| s.subscriptions.len() == 1)
            .map(|s| s.subscriptions[0].topic_arn.clone());
        for message in messages {
            let index = batch.messages.len();
            let mut alert = decode_sqs_body(&message.body);
            if alert.source_topic_arn.is_none() {
                // Raw delivery carries no topic; a route with one source knows it.
                alert.source_topic_arn = single_topic.clone();
            }
            let enrichment = match self.enricher.enrich(&mut alert).await {
                Ok(enrichment) => enrichment,
                Err(error) => {
                    tracing::warn!(route = %state.key, fingerprint = %alert.fingerprint, %error, "enrichment failed; the message returns after a backoff");
                    batch.messages.push(message);
                    batch.failed.push((index, Failure::Enrichment));
                    continue;
                }
            };
            if let Some(missing) = &enrichment.missing {
                tracing::warn!(route = %state.key, fingerprint = %alert.fingerprint, operation = %missing.operation, code = %missing.code, missing = missing.what, "AWS refused enrichment; delivering without these facts (grant the permission to get them)");
            }
            batch.messages.push(message);
            if enrichment.accepts(&state.route.spec.match_, &alert) {
                alert.show_attributes(&state.route.spec.shown_attributes());
                batch.first_pending_at.get_or_insert_with(Instant::now);
                batch.pending.push(PendingAlert {
                    alert,
                    messages: vec![index],
                });
            } else {
                tracing::debug!(route = %state.key, fingerprint = %alert.fingerprint, "filtered out by the route's match");
                batch.filtered.push(index);
            }
        }
    }

    /// Reads the log lines of the batch's firing log alarms (the first
    /// [`MAX_LOG_EXCERPTS_PER_BATCH`] firing CloudWatch alarms), concurrently, each within the
    /// fetcher's time budget. An alarm whose lines cannot be read keeps an excerpt that says why;
    /// nothing here holds an alert back.
    async fn attach_log_lines(&self, pending: &mut [PendingAlert<usize>]) {
        let candidates: Vec<&mut PendingAlert<usize>> = pending
            .iter_mut()
            .filter(|p| p.alert.log_excerpt.is_none())
            .filter(|p| crate::alert::log_lines::AlarmWindow::of(&p.alert).is_some())
            .take(MAX_LOG_EXCERPTS_PER_BATCH)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let fetcher = &self.log_lines;
        futures::future::join_all(candidates.into_iter().map(|p| async move {
            p.alert.log_excerpt = fetcher.excerpt(&p.alert).await;
        }))
        .await;
    }

    /// Extends the visibility of every message the batch still holds to a whole timeout from now.
    async fn extend_visibility(&self, state: &RouteState, batch: &mut Batch) {
        let timeout = state.queue.visibility_timeout;
        batch.visibility_renewed_at = Instant::now();
        let held: Vec<(&ReceivedMessage, Duration)> = batch
            .messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !batch.deleted.contains(i))
            .map(|(_, m)| (m, timeout))
            .collect();
        if held.is_empty() {
            return;
        }
        if let Err(error) = queue::delay(&self.aws, &state.queue_url, &held).await {
            tracing::warn!(route = %state.key, %error, "could not extend the visibility of held messages; another consumer may receive them");
        }
    }

    /// Makes one Slack call for `delivery`.
    async fn send(
        &self,
        state: &RouteState,
        target: &SlackTarget,
        bot_token: Option<&str>,
        delivery: &Delivery<usize>,
        signing: Option<ButtonSigning<'_>>,
    ) -> Result<Sent, SlackError> {
        match delivery {
            Delivery::Post { alerts, group, .. } => {
                let message = if alerts.len() == 1 {
                    // One alert shows its grouping values itself (see `shown_attributes`).
                    render_alert(&alerts[0], &state.render, signing)
                } else {
                    render_group_headed(alerts, heading(group).as_deref(), &state.render, signing)
                };
                let posted = self.slack.post(target, &message).await?;
                Ok(Sent {
                    posted,
                    grouped: alerts.len() > 1,
                    post: true,
                })
            }
            Delivery::Update { stored, alert, .. } => {
                let token = bot_token.expect("updates are planned for bot targets only");
                let message = render_alert(alert, &state.render, signing);
                match self.slack.update(token, &stored.posted(), &message).await {
                    Ok(()) => Ok(Sent {
                        posted: Some(stored.posted()),
                        grouped: false,
                        post: false,
                    }),
                    Err(SlackError::Rejected { error, .. }) => {
                        // The message is gone or can no longer be edited: a new one is better
                        // than none.
                        tracing::warn!(route = %state.key, %error, ts = %stored.ts, "could not update the alert's message; posting a new one");
                        let posted = self.slack.post(target, &message).await?;
                        Ok(Sent {
                            posted,
                            grouped: false,
                            post: true,
                        })
                    }
                    Err(error) => Err(error),
                }
            }
            Delivery::ThreadReply {
                stored,
                alert,
                change,
                ..
            } => {
                let token = bot_token.expect("thread replies are planned for bot targets only");
                let text =
                    crate::slack::render_thread_reply(alert, &state.render, change.as_deref());
                self.slack
                    .reply_in_thread(token, &stored.posted(), &text)
                    .await?;
                Ok(Sent {
                    posted: Some(stored.posted()),
                    // A reply under a single-alert message keeps it single, so that the
                    // resolution still rewrites it.
                    grouped: stored.grouped,
                    post: true,
                })
            }
        }
    }

    /// The route's message index; empty (so alerts are posted, not lost) when it cannot be read.
    async fn load_index(&self, state: &RouteState) -> MessageIndex {
        match store::load(&self.cluster, &self.route.namespace, &self.route.name).await {
            Ok(index) => index,
            Err(error) => {
                tracing::warn!(route = %state.key, %error, "cannot read the message index; known alerts are posted anew");
                MessageIndex::new()
            }
        }
    }

    /// The route's delivery receipts; empty (so every destination gets the alerts, and some may
    /// get them twice) when they cannot be read.
    async fn load_receipts(&self, state: &RouteState) -> Receipts {
        match receipts::load(&self.cluster, &self.route.namespace, &self.route.name).await {
            Ok(receipts) => receipts,
            Err(error) => {
                tracing::warn!(route = %state.key, %error, "cannot read the delivery receipts; destinations that already have an alert may get it again");
                Receipts::default()
            }
        }
    }

    /// Records which message now shows the delivery's alerts. A failure only costs later
    /// updates (they become new posts), so it is logged and the messages are still deleted.
    async fn remember(
        &self,
        state: &RouteState,
        delivery: &Delivery<usize>,
        posted: &PostedMessage,
        grouped: bool,
    ) {
        let at = self.now();
        let entries = alerts_of(delivery)
            .into_iter()
            .map(|alert| {
                let record = super::plan::record_of(delivery, alert, posted, grouped, at);
                (alert.fingerprint.clone(), record)
            })
            .collect();
        self.save_records(state, &entries).await;
    }

    /// Saves the records of delivered alerts (see [`Consumer::remember`]).
    async fn save_records(&self, state: &RouteState, entries: &MessageIndex) {
        if let Err(error) = store::save(&self.cluster, &state.route, entries).await {
            tracing::warn!(route = %state.key, %error, "cannot record the Slack message of delivered alerts; their next state change will be posted anew");
        }
    }

    async fn delete(&self, state: &RouteState, messages: &[&ReceivedMessage]) -> usize {
        match queue::delete(&self.aws, &state.queue_url, messages).await {
            Ok(deleted) => deleted,
            Err(error) => {
                // The alerts were delivered (or filtered); they come back and go out again.
                tracing::warn!(route = %state.key, %error, "DeleteMessageBatch failed; delivered messages may be delivered again");
                0
            }
        }
    }

    /// Hands failed messages back with their backoff, counting those at risk of dead-lettering.
    async fn delay_failed(&self, state: &RouteState, batch: &Batch, report: &mut BatchReport) {
        if batch.failed.is_empty() {
            return;
        }
        let mut delays = Vec::with_capacity(batch.failed.len());
        for &(i, failure) in &batch.failed {
            let message = &batch.messages[i];
            report.failed += 1;
            self.metrics.failed(&state.key, failure.label(), 1);
            if failure.is_rejection() {
                report.rejected += 1;
            }
            if state
                .queue
                .max_receive_count
                .is_some_and(|max| message.receive_count >= max)
            {
                report.dead_letter_risk += 1;
                self.metrics.dead_letter_risk(&state.key, 1);
                tracing::error!(route = %state.key, message_id = %message.message_id, receives = message.receive_count, reason = failure.label(), "message failed on its last receive; SQS moves it to the dead-letter queue next");
            }
            let delay = queue::retry_delay(
                message.receive_count,
                self.options.retry_initial,
                self.options.retry_max,
            );
            delays.push((message, delay));
        }
        if let Err(error) = queue::delay(&self.aws, &state.queue_url, &delays).await {
            tracing::warn!(route = %state.key, %error, "could not delay failed messages; they return after the visibility timeout");
        }
    }
}

/// Transient SES failures come back after a backoff; refusals (unverified sender, invalid
/// destination) too, but they are logged as errors the route's owner must fix.
fn email_failure(error: &EmailError) -> Failure {
    if error.is_transient() {
        Failure::EmailTransient
    } else {
        Failure::EmailRejected
    }
}
