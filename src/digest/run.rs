//! One digest run: drain → decode, enrich, match → consolidate → render → send → delete →
//! Slack summary → record on the status.
//!
//! Messages are deleted only after SES accepted the email. When sending fails nothing is
//! deleted and every received message is made visible again, so the next run includes it.
//! What an accepted email covered is recorded ([`super::sent`]) before the messages are
//! deleted, so a run that dies in between does not email them again.
//!
//! The run is two steps, [`send_digest_with`] (up to SES's acceptance, recorded) and
//! [`AcceptedDigest::complete`] (delete, Slack summary, `status.lastRun`), so that the crash
//! between them can be reproduced by a test.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::time::Instant;

use super::consolidate::{DigestSummary, consolidate_marking};
use super::queue::{self, BatchOutcome, SQS_BATCH};
use super::render::{DigestContext, render_email, render_slack_summary};
use super::sent::{self, SentRecord, fingerprint};
use crate::alert::{Alert, Enricher, decode_sqs_body};
use crate::aws::{AwsClients, AwsError};
use crate::email::{EmailError, send_email};
use crate::k8s::{ClusterApi, ClusterError, StatusWriter};
use crate::resources::digest_schedule::DigestRun;
use crate::resources::{DigestSchedule, SlackDestination};
use crate::slack::{SlackClient, resolve_target};

/// Timing of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestSettings {
    /// How long received messages stay hidden: longer than the whole run, so no message is
    /// received twice in one run, short enough that a crashed run's messages return well
    /// before the next run.
    pub visibility_timeout: Duration,
    /// Receiving stops after this long even if the queue still has messages (they wait for the
    /// next run), leaving the rest of the visibility timeout to send and delete.
    pub drain_deadline: Duration,
    /// Long-poll wait of each receive: with long polling SQS asks every server, so an empty
    /// answer means the queue is empty rather than that one server had nothing.
    pub receive_wait: Duration,
    /// How long enrichment remembers a resource's tags within the run.
    pub enrichment_ttl: Duration,
}

impl Default for DigestSettings {
    fn default() -> Self {
        DigestSettings {
            visibility_timeout: Duration::from_secs(30 * 60),
            drain_deadline: Duration::from_secs(10 * 60),
            receive_wait: Duration::from_secs(1),
            enrichment_ttl: Duration::from_secs(10 * 60),
        }
    }
}

/// What happened to the Slack summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlackSummaryOutcome {
    /// The schedule has no Slack destination, or no email was sent.
    NotPosted,
    /// Slack accepted the summary.
    Posted,
    /// The summary could not be posted; the email was sent and the messages deleted anyway.
    Failed(String),
}

/// What a successful run did.
#[derive(Clone, Debug, PartialEq)]
pub struct DigestReport {
    /// `namespace/name` of the schedule.
    pub schedule: String,
    /// The run as recorded in `status.lastRun`.
    pub run: DigestRun,
    /// Messages received from the queue.
    pub received: usize,
    /// Messages that repeated one already received (SNS and SQS deliver at least once).
    pub duplicates: usize,
    /// Messages an earlier run's accepted email already covered (that run ended before deleting
    /// them): deleted without being reported again.
    pub already_sent: usize,
    /// Alerts the schedule's match rejected (deleted with the others).
    pub filtered: usize,
    /// Messages kept for the next run because enrichment hit a transient AWS error.
    pub deferred: usize,
    /// Messages deleted.
    pub deleted: usize,
    /// Whether the run stopped at `maxAlertsPerRun` or the drain deadline rather than at an
    /// empty queue: messages may be left for the next run.
    pub more_waiting: bool,
    /// Subject of the email, when one was sent.
    pub subject: Option<String>,
    /// The Slack summary.
    pub slack: SlackSummaryOutcome,
    /// The consolidated alerts.
    pub summary: DigestSummary,
}

/// Why a run failed. Each message says what happened to the queued alerts.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The DigestSchedule does not exist.
    #[error("DigestSchedule {schedule} not found")]
    NotFound {
        /// `namespace/name`.
        schedule: String,
    },
    /// The schedule has no queue yet.
    #[error(
        "DigestSchedule {schedule} has no queue yet (status.queueUrl is empty): the controller creates it when it reconciles the schedule"
    )]
    NoQueue {
        /// `namespace/name`.
        schedule: String,
    },
    /// Reading the schedule failed.
    #[error("reading DigestSchedule {schedule}: {source}")]
    Cluster {
        /// `namespace/name`.
        schedule: String,
        /// The cluster's error.
        #[source]
        source: ClusterError,
    },
    /// Receiving from the queue failed; what was received was released for the next run.
    #[error(
        "receiving the alerts of {schedule} failed after {received} messages, which stay queued for the next run: {source}"
    )]
    Receive {
        /// `namespace/name`.
        schedule: String,
        /// Messages received before the failure.
        received: usize,
        /// The SQS error.
        #[source]
        source: AwsError,
    },
    /// SES did not accept the email; nothing was deleted.
    #[error(
        "sending the digest of {schedule} failed; nothing was deleted and the {received} messages received stay queued for the next run: {source}"
    )]
    Send {
        /// `namespace/name`.
        schedule: String,
        /// Messages received (all of them stay queued).
        received: usize,
        /// Why SES refused.
        #[source]
        source: EmailError,
    },
    /// The email was sent but some messages could not be deleted: they will be in the next
    /// digest too.
    #[error(
        "the digest of {schedule} was sent, but {failed} messages could not be deleted and will appear again in the next digest: {reason}"
    )]
    Delete {
        /// `namespace/name`.
        schedule: String,
        /// Messages not deleted.
        failed: usize,
        /// Why.
        reason: String,
    },
    /// The email was sent and the messages deleted, but `status.lastRun` was not written.
    #[error(
        "the digest of {schedule} was sent, but recording the run on its status failed: {source}"
    )]
    Status {
        /// `namespace/name`.
        schedule: String,
        /// The cluster's error.
        #[source]
        source: ClusterError,
    },
}

/// Runs the digest of DigestSchedule `namespace/name` once, with default [`DigestSettings`].
/// `now` ends the window covered and is recorded as `status.lastRun.time`.
pub async fn run_digest<C: ClusterApi>(
    cluster: &C,
    aws: &AwsClients,
    slack: &SlackClient,
    namespace: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<DigestReport, DigestError> {
    run_digest_with(
        cluster,
        aws,
        slack,
        namespace,
        name,
        now,
        &DigestSettings::default(),
    )
    .await
}

/// [`run_digest`] with explicit settings.
pub async fn run_digest_with<C: ClusterApi>(
    cluster: &C,
    aws: &AwsClients,
    slack: &SlackClient,
    namespace: &str,
    name: &str,
    now: DateTime<Utc>,
    settings: &DigestSettings,
) -> Result<DigestReport, DigestError> {
    send_digest_with(cluster, aws, namespace, name, now, settings)
        .await?
        .complete(cluster, aws, slack)
        .await
}

/// A run whose email SES accepted (or that had nothing to send), with its messages still in
/// the queue: [`AcceptedDigest::complete`] deletes them and records the run.
#[derive(Debug)]
pub struct AcceptedDigest {
    schedule: DigestSchedule,
    schedule_ref: String,
    queue_url: String,
    drained: Drained,
    context: DigestContext,
    report: DigestReport,
}

/// The first step of a run: drain, skip what an earlier accepted email covered, render, record
/// what this email covers, send, record that SES accepted it.
pub async fn send_digest_with<C: ClusterApi>(
    cluster: &C,
    aws: &AwsClients,
    namespace: &str,
    name: &str,
    now: DateTime<Utc>,
    settings: &DigestSettings,
) -> Result<AcceptedDigest, DigestError> {
    let schedule_ref = format!("{namespace}/{name}");
    let schedule = read_schedule(cluster, namespace, name, &schedule_ref).await?;
    let queue_url = schedule
        .status
        .as_ref()
        .and_then(|s| s.queue_url.clone())
        .filter(|url| !url.is_empty())
        .ok_or_else(|| DigestError::NoQueue {
            schedule: schedule_ref.clone(),
        })?;
    let spec = &schedule.spec;
    let time_zone = spec.time_zone.parse::<Tz>().unwrap_or_else(|_| {
        tracing::warn!(schedule = %schedule_ref, zone = %spec.time_zone, "unknown time zone; showing times in UTC");
        Tz::UTC
    });

    // Without the record every message is reported: at worst an email is repeated.
    let record = sent::load(cluster, &schedule).await.unwrap_or_else(|e| {
        tracing::warn!(schedule = %schedule_ref, error = %e, "the record of sent messages cannot be read; alerts a crashed run already emailed may be emailed again");
        SentRecord::default()
    });
    let drained = drain(aws, &queue_url, &schedule, &record, settings)
        .await
        .map_err(|(received, source)| DigestError::Receive {
            schedule: schedule_ref.clone(),
            received,
            source,
        })?;
    tracing::info!(
        schedule = %schedule_ref,
        received = drained.received,
        alerts = drained.alerts.len(),
        already_sent = drained.already_sent.len(),
        filtered = drained.filtered,
        deferred = drained.deferred.len(),
        "queue drained"
    );

    // Snoozes of the routes in this namespace: their alerts are listed, marked.
    let snoozes = match crate::slack::snooze::list_namespace(cluster, namespace).await {
        Ok(snoozes) => snoozes,
        Err(error) => {
            tracing::warn!(schedule = %schedule_ref, %error, "cannot read snoozes; snoozed alerts are listed unmarked");
            Vec::new()
        }
    };
    let summary = consolidate_marking(
        &drained.alerts,
        &schedule.spec.correlation_attributes,
        |alert| {
            let at = alert.time.unwrap_or(now);
            snoozes.iter().any(|s| s.covers(&alert.fingerprint, at))
        },
    );
    let previous_run = schedule
        .status
        .as_ref()
        .and_then(|s| s.last_run.as_ref())
        .map(|r| r.time);
    let window_start = match (previous_run, summary.first_seen) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let retention = schedule.status.as_ref().and_then(|s| s.retention_seconds);
    let possibly_expired = expiry_gap(previous_run, retention, now);
    if let Some((from, until)) = possibly_expired {
        tracing::error!(schedule = %schedule_ref, last_run = %from, %until, "the last successful run is older than the queue's retention: alerts queued in between may have expired unreported; the email says so");
    }
    let context = DigestContext {
        schedule: schedule_ref.clone(),
        subject_prefix: spec.email.subject_prefix.clone(),
        window_start,
        window_end: now,
        time_zone,
        possibly_expired,
    };
    let mut report = DigestReport {
        schedule: schedule_ref.clone(),
        run: DigestRun {
            time: now,
            alert_count: i32::try_from(drained.alerts.len()).unwrap_or(i32::MAX),
            sent: false,
            message_id: None,
        },
        received: drained.received,
        duplicates: drained.duplicates,
        already_sent: drained.already_sent.len(),
        filtered: drained.filtered,
        deferred: drained.deferred.len(),
        deleted: 0,
        more_waiting: drained.more_waiting,
        subject: None,
        slack: SlackSummaryOutcome::NotPosted,
        summary,
    };

    if drained.alerts.is_empty() && !spec.send_empty {
        tracing::info!(schedule = %schedule_ref, "nothing to report; no email sent");
    } else {
        let email = render_email(&context, &report.summary);
        let mut record = SentRecord {
            sent: drained.already_sent.clone(),
            pending: drained.covered.clone(),
        };
        store_record(cluster, &schedule, &schedule_ref, &record).await;
        match send_email(aws, &spec.email, &email).await {
            Ok(sent) => {
                report.run.sent = true;
                report.run.message_id = sent.message_id;
                report.subject = Some(email.subject);
                record.sent.append(&mut record.pending);
                store_record(cluster, &schedule, &schedule_ref, &record).await;
            }
            Err(source) => {
                let mut everything = drained.to_delete.clone();
                everything.extend(drained.deferred.iter().cloned());
                release_logged(aws, &queue_url, &everything, &schedule_ref).await;
                return Err(DigestError::Send {
                    schedule: schedule_ref,
                    received: drained.received,
                    source,
                });
            }
        }
    }

    Ok(AcceptedDigest {
        schedule,
        schedule_ref,
        queue_url,
        drained,
        context,
        report,
    })
}

/// The span whose alerts may have expired before `now`: from the last successful run to the
/// oldest time the queue still keeps (`now - retention`), when that is later. `None` on a first
/// run (nothing is known) or when the queue keeps everything since the last run.
fn expiry_gap(
    previous_run: Option<DateTime<Utc>>,
    retention_seconds: Option<i32>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let kept_since = now - chrono::TimeDelta::seconds(i64::from(retention_seconds?));
    let previous = previous_run?;
    (kept_since > previous).then_some((previous, kept_since))
}

/// Writes the record of sent messages; a failure is logged, not fatal: it widens the window in
/// which a crash makes the next digest repeat these alerts, and sending now is worth more.
async fn store_record<C: ClusterApi>(
    cluster: &C,
    schedule: &DigestSchedule,
    schedule_ref: &str,
    record: &SentRecord,
) {
    if let Err(e) = sent::store(cluster, schedule, record).await {
        tracing::warn!(schedule = %schedule_ref, error = %e, "the record of sent messages was not written; a crash before the messages are deleted would email them again");
    }
}

impl AcceptedDigest {
    /// What the run has done so far.
    pub fn report(&self) -> &DigestReport {
        &self.report
    }

    /// The second step of a run: delete what the email covered, release what waits for the next
    /// run, post the Slack summary, record `status.lastRun`.
    pub async fn complete<C: ClusterApi>(
        self,
        cluster: &C,
        aws: &AwsClients,
        slack: &SlackClient,
    ) -> Result<DigestReport, DigestError> {
        let AcceptedDigest {
            schedule,
            schedule_ref,
            queue_url,
            drained,
            context,
            mut report,
        } = self;
        let spec = &schedule.spec;
        let namespace = schedule.metadata.namespace.as_deref().unwrap_or_default();
        // From here the email is accepted (or deliberately not sent): delete what it covered.
        let deletion = queue::delete(aws, &queue_url, &drained.to_delete).await;
        release_logged(aws, &queue_url, &drained.deferred, &schedule_ref).await;
        let delete_error = match deletion {
            Ok(BatchOutcome { succeeded, failed }) => {
                report.deleted = succeeded;
                (!failed.is_empty()).then(|| (failed.len(), failed.join("; ")))
            }
            Err(e) => Some((drained.to_delete.len(), e.to_string())),
        };

        if report.run.sent
            && let Some(destination) = &spec.slack
        {
            report.slack = post_summary(
                cluster,
                slack,
                namespace,
                destination,
                &context,
                &report.summary,
                spec.email.to.len(),
            )
            .await;
            if let SlackSummaryOutcome::Failed(reason) = &report.slack {
                tracing::error!(schedule = %schedule_ref, %reason, "the Slack summary was not posted (the email was sent)");
            }
        }

        let recorded = record_run(cluster, &schedule, &schedule_ref, &report.run).await;
        if let Some((failed, reason)) = delete_error {
            if let Err(e) = recorded {
                tracing::error!(schedule = %schedule_ref, error = %e, "recording the run failed");
            }
            return Err(DigestError::Delete {
                schedule: schedule_ref,
                failed,
                reason,
            });
        }
        recorded?;
        tracing::info!(
            schedule = %schedule_ref,
            alerts = report.run.alert_count,
            sent = report.run.sent,
            deleted = report.deleted,
            "digest run finished"
        );
        Ok(report)
    }
}

async fn read_schedule<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    name: &str,
    schedule_ref: &str,
) -> Result<DigestSchedule, DigestError> {
    cluster
        .get::<DigestSchedule>(namespace, name)
        .await
        .map_err(|source| DigestError::Cluster {
            schedule: schedule_ref.to_string(),
            source,
        })?
        .ok_or_else(|| DigestError::NotFound {
            schedule: schedule_ref.to_string(),
        })
}

/// What draining the queue produced.
#[derive(Debug)]
struct Drained {
    /// Decoded, enriched alerts the schedule's match accepted, one per distinct message.
    alerts: Vec<Alert>,
    /// Receipt handles to delete once the email is accepted: matched, filtered and duplicate
    /// messages.
    to_delete: Vec<String>,
    /// Receipt handles kept for the next run (enrichment failed transiently).
    deferred: Vec<String>,
    received: usize,
    duplicates: usize,
    filtered: usize,
    more_waiting: bool,
    /// Fingerprints of the messages whose alerts this digest reports (matched ones).
    covered: BTreeSet<String>,
    /// Fingerprints of messages an earlier accepted email covered (skipped, deleted).
    already_sent: BTreeSet<String>,
}

/// Receives until the queue answers empty, `maxAlertsPerRun` messages were received, or the
/// drain deadline passed. On an SQS error, what was received is released and the error returned
/// with the count.
async fn drain(
    aws: &AwsClients,
    queue_url: &str,
    schedule: &DigestSchedule,
    record: &SentRecord,
    settings: &DigestSettings,
) -> Result<Drained, (usize, AwsError)> {
    let max = usize::try_from(schedule.spec.max_alerts_per_run.max(1)).unwrap_or(1);
    let visibility = i32::try_from(settings.visibility_timeout.as_secs())
        .unwrap_or(43_200)
        .clamp(1, 43_200);
    let wait = i32::try_from(settings.receive_wait.as_secs())
        .unwrap_or(20)
        .clamp(0, 20);
    let enricher = Enricher::new(aws.clone(), settings.enrichment_ttl);
    let started = Instant::now();
    let mut seen = HashSet::new();
    let mut drained = Drained {
        alerts: Vec::new(),
        to_delete: Vec::new(),
        deferred: Vec::new(),
        received: 0,
        duplicates: 0,
        filtered: 0,
        more_waiting: false,
        covered: BTreeSet::new(),
        already_sent: BTreeSet::new(),
    };
    loop {
        if drained.received >= max || started.elapsed() >= settings.drain_deadline {
            drained.more_waiting = true;
            break;
        }
        let want = (max - drained.received).min(SQS_BATCH);
        let batch = match queue::receive(aws, queue_url, want, visibility, wait).await {
            Ok(batch) => batch,
            Err(e) => {
                let mut everything = drained.to_delete;
                everything.extend(drained.deferred);
                let schedule_ref = format!(
                    "{}/{}",
                    schedule.metadata.namespace.as_deref().unwrap_or_default(),
                    schedule.metadata.name.as_deref().unwrap_or_default()
                );
                release_logged(aws, queue_url, &everything, &schedule_ref).await;
                return Err((drained.received, e));
            }
        };
        if batch.is_empty() {
            break;
        }
        for message in batch {
            drained.received += 1;
            let mut alert = decode_sqs_body(&message.body);
            if alert.time.is_none() {
                alert.time = message.sent_at;
            }
            let identity = alert
                .sns_message_id
                .clone()
                .unwrap_or_else(|| message.message_id.clone());
            if !seen.insert(identity.clone()) {
                drained.duplicates += 1;
                drained.to_delete.push(message.receipt_handle);
                continue;
            }
            if record.was_sent(&identity) {
                drained.already_sent.insert(fingerprint(&identity));
                drained.to_delete.push(message.receipt_handle);
                continue;
            }
            let enrichment = match enricher.enrich(&mut alert).await {
                Ok(enrichment) => enrichment,
                Err(e) => {
                    tracing::warn!(message_id = %message.message_id, error = %e, "enrichment failed; the alert waits for the next run");
                    drained.deferred.push(message.receipt_handle);
                    continue;
                }
            };
            if let Some(missing) = &enrichment.missing {
                tracing::warn!(message_id = %message.message_id, operation = %missing.operation, code = %missing.code, missing = missing.what, "AWS refused enrichment; the alert is summarised without these facts");
            }
            drained.to_delete.push(message.receipt_handle);
            if enrichment.accepts(&schedule.spec.match_, &alert) {
                drained.covered.insert(fingerprint(&identity));
                drained.alerts.push(alert);
            } else {
                drained.filtered += 1;
            }
        }
    }
    Ok(drained)
}

/// Makes messages visible again; a failure is only logged, because their visibility timeout
/// returns them to the queue long before the next scheduled run anyway.
async fn release_logged(aws: &AwsClients, queue_url: &str, handles: &[String], schedule: &str) {
    if handles.is_empty() {
        return;
    }
    match queue::release(aws, queue_url, handles).await {
        Ok(outcome) if outcome.failed.is_empty() => {}
        Ok(outcome) => tracing::warn!(
            schedule,
            failed = outcome.failed.len(),
            reasons = %outcome.failed.join("; "),
            "some messages could not be made visible again; they return when their visibility timeout ends"
        ),
        Err(e) => tracing::warn!(
            schedule,
            error = %e,
            "messages could not be made visible again; they return when their visibility timeout ends"
        ),
    }
}

/// Writes `status.lastRun` as the digest's own field (its own field manager): the controller's
/// status writes, even from a copy read before this run, neither revert nor erase it.
async fn record_run<C: ClusterApi>(
    cluster: &C,
    schedule: &DigestSchedule,
    schedule_ref: &str,
    run: &DigestRun,
) -> Result<(), DigestError> {
    let status_error = |source| DigestError::Status {
        schedule: schedule_ref.to_string(),
        source,
    };
    let run = serde_json::to_value(run)
        .map_err(|e| status_error(ClusterError::Serialization(e.to_string())))?;
    cluster
        .apply_status(
            schedule,
            StatusWriter::Digest,
            serde_json::json!({ "lastRun": run }),
        )
        .await
        .map_err(status_error)
}

async fn post_summary<C: ClusterApi>(
    cluster: &C,
    slack: &SlackClient,
    namespace: &str,
    destination: &SlackDestination,
    context: &DigestContext,
    summary: &DigestSummary,
    recipients: usize,
) -> SlackSummaryOutcome {
    let target = match resolve_target(cluster, namespace, destination).await {
        Ok(target) => target,
        Err(e) => return SlackSummaryOutcome::Failed(e.to_string()),
    };
    let message = render_slack_summary(context, summary, recipients);
    match slack.post(&target, &message).await {
        Ok(_) => SlackSummaryOutcome::Posted,
        Err(e) => SlackSummaryOutcome::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_may_have_expired_only_when_the_last_run_is_older_than_the_retention() {
        let at = |h: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::hours(h);
        let day = Some(24 * 3600);
        assert_eq!(expiry_gap(Some(at(0)), day, at(24)), None, "exactly kept");
        assert_eq!(expiry_gap(Some(at(0)), day, at(30)), Some((at(0), at(6))));
        assert_eq!(
            expiry_gap(None, day, at(30)),
            None,
            "a first run knows nothing"
        );
        assert_eq!(expiry_gap(Some(at(0)), None, at(30)), None);
    }
}
