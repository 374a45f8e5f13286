//! Reminders while an alert stays firing (Alertmanager's `repeat_interval`, the route's
//! `grouping.repeatIntervalMinutes`).
//!
//! - "Still firing" is the state recorded by the last event of the alert: CloudWatch sends one
//!   notification per transition, so no news after ALARM means ALARM until an OK event arrives
//!   (as in Alertmanager, where an alert is firing until resolved). The record is the route's
//!   message index ([`super::store`]), which the delivery path updates with every state change.
//! - A reminder is due when the record shows the alert firing and people were last notified of
//!   it (post, thread reply, earlier reminder) at least one interval ago.
//! - Once per interval across restarts and replicas: a replica claims the due reminders by
//!   writing their new `notifiedAt` into the index on the condition that the index has not
//!   changed since it read it (the map's resourceVersion as the patch's precondition); the
//!   replica whose write lands posts them, the other re-reads and finds nothing due.
//!   Claim-then-post: a crash or a Slack failure between the two skips that reminder (the next
//!   one comes an interval later); it never doubles one.

use chrono::{DateTime, Duration, Utc};

use super::store::{self, MessageIndex, StoreError, StoredMessage};
use crate::alert::Fingerprint;
use crate::k8s::ClusterApi;
use crate::resources::AlertState;

/// Reminders claimed at most per pass: a channel takes about one post per second, and the rest
/// are claimed on the next pass.
pub const MAX_REMINDERS_PER_PASS: usize = 20;

/// Attempts to claim when other writers keep changing the index; the next pass tries again.
const CLAIM_ATTEMPTS: usize = 3;

/// A reminder to post: the alert's record as it was before the claim.
#[derive(Clone, Debug, PartialEq)]
pub struct Reminder {
    /// The alert.
    pub fingerprint: Fingerprint,
    /// Its message and what is known of it.
    pub message: StoredMessage,
    /// How long it has been firing at the time of the claim.
    pub firing_for: Duration,
}

/// When people were last notified of the alert a record shows.
pub fn last_notified(message: &StoredMessage) -> DateTime<Utc> {
    message.notified_at.unwrap_or(message.at)
}

/// Whether the record's alert is due a reminder at `now`.
pub fn is_due(message: &StoredMessage, now: DateTime<Utc>, interval: Duration) -> bool {
    message.state == AlertState::Firing && now - last_notified(message) >= interval
}

/// The due reminders of `index` at `now`, the longest-waiting first, at most `max`; alerts in
/// `snoozed` get none.
pub fn due(
    index: &MessageIndex,
    now: DateTime<Utc>,
    interval: Duration,
    max: usize,
    snoozed: &[Fingerprint],
) -> Vec<Reminder> {
    let mut due: Vec<Reminder> = index
        .iter()
        .filter(|(fingerprint, message)| {
            is_due(message, now, interval) && !snoozed.contains(fingerprint)
        })
        .map(|(fingerprint, message)| Reminder {
            fingerprint: fingerprint.clone(),
            message: message.clone(),
            firing_for: now - message.firing_since.unwrap_or(message.at),
        })
        .collect();
    due.sort_by_key(|r| last_notified(&r.message));
    due.truncate(max);
    due
}

/// Claims the route's due reminders (see the module doc), except those of `snoozed` alerts,
/// and returns them; empty when none is due or other writers kept the index busy through
/// every attempt.
pub async fn claim<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    route: &str,
    now: DateTime<Utc>,
    interval: Duration,
    snoozed: &[Fingerprint],
) -> Result<Vec<Reminder>, StoreError> {
    for _ in 0..CLAIM_ATTEMPTS {
        let (index, version) = store::load_versioned(cluster, namespace, route).await?;
        let Some(version) = version else {
            return Ok(Vec::new());
        };
        let reminders = due(&index, now, interval, MAX_REMINDERS_PER_PASS, snoozed);
        if reminders.is_empty() {
            return Ok(reminders);
        }
        let mut claimed = MessageIndex::new();
        for reminder in &reminders {
            let mut message = reminder.message.clone();
            message.notified_at = Some(now);
            claimed.insert(reminder.fingerprint.clone(), message);
        }
        if store::write_if_unchanged(cluster, namespace, route, &version, &claimed).await? {
            return Ok(reminders);
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::MemoryCluster;
    use crate::resources::AlertRoute;
    use chrono::TimeZone;

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn record(state: AlertState, posted: i64, notified: Option<i64>) -> StoredMessage {
        StoredMessage {
            channel: "C1".into(),
            ts: format!("{posted}.1"),
            at: at(posted),
            state,
            grouped: false,
            reason: None,
            firing_since: Some(at(posted - 5)),
            notified_at: notified.map(at),
            title: Some("CPU high".into()),
        }
    }

    fn route() -> AlertRoute {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "data-eng", "namespace": "team", "uid": "u-1"},
            "spec": {"sources": [{"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}]},
        }))
        .unwrap()
    }

    #[test]
    fn due_after_an_interval_since_the_last_notification_and_only_while_firing() {
        let hour = Duration::minutes(60);
        let firing = record(AlertState::Firing, 0, Some(0));
        assert!(!is_due(&firing, at(59), hour));
        assert!(is_due(&firing, at(60), hour));
        let reminded = record(AlertState::Firing, 0, Some(60));
        assert!(
            !is_due(&reminded, at(100), hour),
            "a reminder restarts the interval"
        );
        assert!(is_due(&reminded, at(120), hour));
        let resolved = record(AlertState::Resolved, 0, Some(0));
        assert!(!is_due(&resolved, at(600), hour), "resolution stops them");
        let older = record(AlertState::Firing, 0, None);
        assert!(
            is_due(&older, at(60), hour),
            "records without notifiedAt count from `at`"
        );
    }

    #[test]
    fn due_lists_the_longest_waiting_first_up_to_the_bound_with_the_firing_time() {
        let mut index = MessageIndex::new();
        index.insert(
            Fingerprint::from_raw("late"),
            record(AlertState::Firing, 30, Some(30)),
        );
        index.insert(
            Fingerprint::from_raw("early"),
            record(AlertState::Firing, 0, Some(0)),
        );
        index.insert(
            Fingerprint::from_raw("ok"),
            record(AlertState::Resolved, 0, Some(0)),
        );
        let reminders = due(&index, at(100), Duration::minutes(60), 10, &[]);
        let order: Vec<&str> = reminders.iter().map(|r| r.fingerprint.as_str()).collect();
        assert_eq!(order, ["early", "late"]);
        assert_eq!(reminders[0].firing_for, Duration::minutes(105));
        assert_eq!(due(&index, at(100), Duration::minutes(60), 1, &[]).len(), 1);
        let snoozed = [Fingerprint::from_raw("early")];
        let left = due(&index, at(100), Duration::minutes(60), 10, &snoozed);
        assert_eq!(left.len(), 1, "a snoozed alert gets no reminder");
        assert_eq!(left[0].fingerprint.as_str(), "late");
    }

    /// Two replicas claim at the same moment: exactly one gets the reminder, and neither gets
    /// it again within the interval.
    #[tokio::test]
    async fn two_replicas_claim_a_reminder_once() {
        let cluster = MemoryCluster::interleaving();
        let mut index = MessageIndex::new();
        index.insert(
            Fingerprint::from_raw("a"),
            record(AlertState::Firing, 0, Some(0)),
        );
        store::save(&cluster, &route(), &index).await.unwrap();
        let hour = Duration::minutes(60);
        let replica = |cluster: MemoryCluster| async move {
            claim(&cluster, "team", "data-eng", at(61), hour, &[])
                .await
                .unwrap()
                .len()
        };
        let (a, b) = tokio::join!(
            tokio::spawn(replica(cluster.clone())),
            tokio::spawn(replica(cluster.clone()))
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1, "one reminder between them");
        assert!(
            claim(&cluster, "team", "data-eng", at(90), hour, &[])
                .await
                .unwrap()
                .is_empty()
        );
        let next = claim(&cluster, "team", "data-eng", at(121), hour, &[])
            .await
            .unwrap();
        assert_eq!(next.len(), 1, "due again an interval after the claim");
    }

    #[tokio::test]
    async fn nothing_to_claim_without_an_index() {
        let cluster = MemoryCluster::new();
        let claimed = claim(
            &cluster,
            "team",
            "data-eng",
            at(0),
            Duration::minutes(60),
            &[],
        )
        .await
        .unwrap();
        assert!(claimed.is_empty());
    }
}
