//! What to send for a batch of matching alerts: pure decisions, no I/O.
//!
//! - Alerts with the same fingerprint in one batch (an alarm that fired and resolved within the
//!   group wait, a redelivered message) collapse into the latest; all their SQS messages ride
//!   with it, so all are deleted once it is delivered.
//! - With a message index (bot token), an alert whose problem already has a Slack message
//!   changes that message: `chat.update` of a single-alert message, a thread reply under a
//!   grouped one. A problem that fires again after it was resolved gets a new message, so that
//!   people are notified (an update does not notify).
//! - A firing problem whose reason changed (two placement failures of one service, each with
//!   its own reason) is a new fact: it goes into the thread of the first message, saying what
//!   changed, instead of `chat.update` silently replacing the first reason.
//! - Everything else is posted, at most `max_per_message` alerts per message, in arrival order;
//!   with `grouping.byAttributes`, alerts of different attribute values never share a post (see
//!   [`super::attribute_groups`]).

use crate::alert::Alert;
use crate::resources::AlertState;

use chrono::{DateTime, Utc};

use super::attribute_groups::{GroupKey, group_key, partition};
use super::store::{MessageIndex, STORED_TITLE_CHARS, StoredMessage};
use crate::slack::PostedMessage;

/// One alert ready to deliver, with the handles of the SQS messages it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingAlert<M> {
    /// The decoded, enriched, matching alert.
    pub alert: Alert,
    /// The SQS messages that carried it (more than one when duplicates collapsed).
    pub messages: Vec<M>,
}

/// One Slack call to make.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery<M> {
    /// Post a new message listing these alerts (one alert: a single-alert message).
    Post {
        /// The alerts, at most the route's `maxAlertsPerMessage`.
        alerts: Vec<Alert>,
        /// Their SQS messages.
        messages: Vec<M>,
        /// The attribute values they share (`grouping.byAttributes`), heading the message;
        /// empty for the route's plain group.
        group: GroupKey,
    },
    /// Rewrite the single-alert message that shows this problem.
    Update {
        /// The message to rewrite.
        stored: StoredMessage,
        /// The alert's new state.
        alert: Alert,
        /// Its SQS messages.
        messages: Vec<M>,
    },
    /// Reply in the thread of the message that shows this problem: a grouped message, or one
    /// whose problem reports a new reason.
    ThreadReply {
        /// The message.
        stored: StoredMessage,
        /// The alert's new state.
        alert: Alert,
        /// Its SQS messages.
        messages: Vec<M>,
        /// What changed, when the reply is for a new reason (rendered before the alert).
        change: Option<String>,
    },
}

impl<M> Delivery<M> {
    /// The SQS messages this delivery carries.
    pub fn messages(&self) -> &[M] {
        match self {
            Delivery::Post { messages, .. }
            | Delivery::Update { messages, .. }
            | Delivery::ThreadReply { messages, .. } => messages,
        }
    }

    /// Number of alerts in it.
    pub fn alert_count(&self) -> usize {
        match self {
            Delivery::Post { alerts, .. } => alerts.len(),
            _ => 1,
        }
    }
}

/// Collapses alerts with one fingerprint into the latest (by the source's time when both have
/// one, else by arrival), keeping first-arrival order and every message handle.
pub fn collapse<M>(arrivals: Vec<PendingAlert<M>>) -> Vec<PendingAlert<M>> {
    let mut out: Vec<PendingAlert<M>> = Vec::with_capacity(arrivals.len());
    for arrival in arrivals {
        match out
            .iter_mut()
            .find(|p| p.alert.fingerprint == arrival.alert.fingerprint)
        {
            Some(existing) => {
                let newer = match (existing.alert.time, arrival.alert.time) {
                    (Some(old), Some(new)) => new >= old,
                    _ => true,
                };
                existing.messages.extend(arrival.messages);
                if newer {
                    existing.alert = arrival.alert;
                }
            }
            None => out.push(arrival),
        }
    }
    out
}

/// Whether `alert` needs a new message rather than a change of `stored`: nothing was posted for
/// it yet, or it fires again after its message stopped showing it firing.
pub fn needs_new_message(stored: Option<&StoredMessage>, alert: &Alert) -> bool {
    match stored {
        None => true,
        Some(stored) => alert.state == AlertState::Firing && stored.state != AlertState::Firing,
    }
}

/// A short, stable key of the alert's reason, stored with its message to tell a new reason
/// from a repeat.
pub fn reason_key(alert: &Alert) -> String {
    crate::names::short_hash(alert.summary.trim())
}

/// Whether a firing alert reports a different reason than the firing message that shows it.
/// Messages recorded before reasons were kept (no key) never count as changed.
pub fn reason_changed(stored: &StoredMessage, alert: &Alert) -> bool {
    alert.state == AlertState::Firing
        && stored.state == AlertState::Firing
        && stored
            .reason
            .as_deref()
            .is_some_and(|key| key != reason_key(alert))
}

/// The record of `alert` after `delivery` made `posted` show it, at `now`:
/// - it fires since the source's state-change time (else now) when it fires in a new message,
///   and keeps its earlier start while it stays firing;
/// - people were notified now by a post or a thread reply (an update does not notify, unless
///   it fell back to a new post), else when they were last notified.
pub fn record_of<M>(
    delivery: &Delivery<M>,
    alert: &Alert,
    posted: &PostedMessage,
    grouped: bool,
    now: DateTime<Utc>,
) -> StoredMessage {
    record_after(
        earlier_record(delivery),
        notifies(delivery, posted),
        alert,
        posted,
        grouped,
        now,
    )
}

/// The record an update or a thread reply builds on (a post starts afresh).
fn earlier_record<M>(delivery: &Delivery<M>) -> Option<&StoredMessage> {
    match delivery {
        Delivery::Update { stored, .. } | Delivery::ThreadReply { stored, .. } => Some(stored),
        Delivery::Post { .. } => None,
    }
}

/// Whether `delivery`, having produced `posted`, notified people: a post or a thread reply
/// does; an update does not, unless it fell back to a new post.
fn notifies<M>(delivery: &Delivery<M>, posted: &PostedMessage) -> bool {
    match delivery {
        Delivery::Update { stored, .. } => stored.ts != posted.ts,
        Delivery::Post { .. } | Delivery::ThreadReply { .. } => true,
    }
}

/// The record of `alert` now shown by `posted`, given its `earlier` record and whether people
/// were `notified` by it (see [`record_of`]; a storm summary notifies, with no delivery).
pub fn record_after(
    earlier: Option<&StoredMessage>,
    notified: bool,
    alert: &Alert,
    posted: &PostedMessage,
    grouped: bool,
    now: DateTime<Utc>,
) -> StoredMessage {
    let firing_since = (alert.state == AlertState::Firing).then(|| {
        earlier
            .filter(|stored| stored.state == AlertState::Firing)
            .and_then(|stored| stored.firing_since)
            .or(alert.time)
            .unwrap_or(now)
    });
    let notified_at = if notified {
        Some(now)
    } else {
        earlier.map(|stored| stored.notified_at.unwrap_or(stored.at))
    };
    StoredMessage {
        channel: posted.channel.clone(),
        ts: posted.ts.clone(),
        at: now,
        state: alert.state,
        grouped,
        reason: Some(reason_key(alert)),
        firing_since,
        notified_at,
        title: Some(crate::slack::text::truncate(
            &alert.title,
            STORED_TITLE_CHARS,
        )),
    }
}

/// The Slack calls for `pending` (already collapsed). `index` is `None` for webhooks, which
/// cannot update messages; `by_attributes` is the route's `grouping.byAttributes`.
pub fn plan<M>(
    pending: Vec<PendingAlert<M>>,
    index: Option<&MessageIndex>,
    max_per_message: usize,
    by_attributes: &[String],
) -> Vec<Delivery<M>> {
    let max_per_message = max_per_message.max(1);
    let mut deliveries = Vec::new();
    let mut to_post: Vec<PendingAlert<M>> = Vec::new();
    for item in pending {
        let stored = index.and_then(|i| i.get(&item.alert.fingerprint));
        match stored {
            Some(stored) if !needs_new_message(Some(stored), &item.alert) => {
                let stored = stored.clone();
                let change =
                    reason_changed(&stored, &item.alert).then(|| "The reason changed".to_string());
                deliveries.push(if stored.grouped || change.is_some() {
                    Delivery::ThreadReply {
                        stored,
                        alert: item.alert,
                        messages: item.messages,
                        change,
                    }
                } else {
                    Delivery::Update {
                        stored,
                        alert: item.alert,
                        messages: item.messages,
                    }
                });
            }
            _ => to_post.push(item),
        }
    }
    for (group, members) in partition(to_post, |item| group_key(&item.alert, by_attributes)) {
        deliveries.extend(posts(group, members, max_per_message));
    }
    deliveries
}

/// The posts of one group: at most `max_per_message` alerts each, in arrival order.
fn posts<M>(
    group: GroupKey,
    members: Vec<PendingAlert<M>>,
    max_per_message: usize,
) -> Vec<Delivery<M>> {
    let mut out = Vec::new();
    let mut rest = members.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<PendingAlert<M>> = rest.by_ref().take(max_per_message).collect();
        let mut alerts = Vec::with_capacity(chunk.len());
        let mut messages = Vec::new();
        for item in chunk {
            alerts.push(item.alert);
            messages.extend(item.messages);
        }
        out.push(Delivery::Post {
            alerts,
            messages,
            group: group.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Fingerprint;
    use crate::resources::AlertKind;
    use chrono::{TimeZone, Utc};

    fn alert(fp: &str, state: AlertState, secs: Option<i64>) -> Alert {
        let mut a = Alert::new(
            AlertKind::CloudWatchAlarm,
            state,
            Fingerprint::from_raw(fp),
            format!("alarm {fp}"),
        );
        a.time = secs.map(|s| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap());
        a
    }

    fn pending(fp: &str, state: AlertState, secs: Option<i64>, m: u32) -> PendingAlert<u32> {
        PendingAlert {
            alert: alert(fp, state, secs),
            messages: vec![m],
        }
    }

    fn stored(state: AlertState, grouped: bool) -> StoredMessage {
        StoredMessage {
            channel: "C1".into(),
            ts: "1.1".into(),
            at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            state,
            grouped,
            reason: None,
            firing_since: None,
            notified_at: None,
            title: None,
        }
    }

    #[test]
    fn a_changed_reason_is_a_thread_reply_saying_so_not_an_update() {
        let mut first = alert("svc", AlertState::Firing, None);
        first.summary = "unable to place a task: no container instance met all requirements".into();
        let mut message = stored(AlertState::Firing, false);
        message.reason = Some(reason_key(&first));
        let mut index = MessageIndex::new();
        index.insert(Fingerprint::from_raw("svc"), message);

        let mut second = first.clone();
        second.summary = "unable to place a task: insufficient memory".into();
        let deliveries = plan(
            vec![PendingAlert {
                alert: second,
                messages: vec![1],
            }],
            Some(&index),
            20,
            &[],
        );
        assert!(
            matches!(&deliveries[0], Delivery::ThreadReply { change: Some(c), .. } if c.contains("reason changed")),
            "{deliveries:?}"
        );

        // The same reason again (a repeat or redelivery) still rewrites the message.
        let deliveries = plan(
            vec![PendingAlert {
                alert: first,
                messages: vec![2],
            }],
            Some(&index),
            20,
            &[],
        );
        assert!(
            matches!(&deliveries[0], Delivery::Update { .. }),
            "{deliveries:?}"
        );
    }

    #[test]
    fn duplicates_collapse_into_the_latest_with_every_message() {
        let out = collapse(vec![
            pending("a", AlertState::Resolved, Some(20), 1),
            pending("b", AlertState::Firing, None, 2),
            pending("a", AlertState::Firing, Some(10), 3),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].alert.state,
            AlertState::Resolved,
            "time decides, not arrival"
        );
        assert_eq!(out[0].messages, vec![1, 3]);
        assert_eq!(out[1].alert.fingerprint.as_str(), "b");
    }

    #[test]
    fn without_times_the_later_arrival_wins() {
        let out = collapse(vec![
            pending("a", AlertState::Firing, None, 1),
            pending("a", AlertState::Resolved, None, 2),
        ]);
        assert_eq!(out[0].alert.state, AlertState::Resolved);
    }

    #[test]
    fn posts_are_chunked_by_the_route_limit() {
        let items = (0..45)
            .map(|i| pending(&format!("f{i}"), AlertState::Firing, None, i))
            .collect();
        let deliveries = plan(items, None, 20, &[]);
        let sizes: Vec<usize> = deliveries.iter().map(Delivery::alert_count).collect();
        assert_eq!(sizes, vec![20, 20, 5]);
        assert_eq!(deliveries[2].messages(), &[40, 41, 42, 43, 44]);
    }

    #[test]
    fn a_known_problem_updates_its_message() {
        let mut index = MessageIndex::new();
        index.insert(
            Fingerprint::from_raw("a"),
            stored(AlertState::Firing, false),
        );
        index.insert(Fingerprint::from_raw("g"), stored(AlertState::Firing, true));
        let deliveries = plan(
            vec![
                pending("a", AlertState::Resolved, None, 1),
                pending("g", AlertState::Resolved, None, 2),
                pending("n", AlertState::Firing, None, 3),
            ],
            Some(&index),
            20,
            &[],
        );
        assert!(matches!(&deliveries[0], Delivery::Update { stored, .. } if stored.ts == "1.1"));
        assert!(matches!(&deliveries[1], Delivery::ThreadReply { .. }));
        assert!(matches!(&deliveries[2], Delivery::Post { alerts, .. } if alerts.len() == 1));
    }

    #[test]
    fn posts_split_by_attribute_values_and_each_group_is_chunked() {
        let with = |fp: &str, id: Option<&str>, m: u32| {
            let mut item = pending(fp, AlertState::Firing, None, m);
            if let Some(id) = id {
                item.alert
                    .attributes
                    .insert("correlation_id".into(), id.into());
            }
            item
        };
        let mut index = MessageIndex::new();
        index.insert(
            Fingerprint::from_raw("known"),
            stored(AlertState::Firing, true),
        );
        let items = vec![
            with("a1", Some("A"), 1),
            with("plain", None, 2),
            with("b1", Some("B"), 3),
            with("a2", Some("A"), 4),
            with("a3", Some("A"), 5),
            with("known", Some("B"), 6),
        ];
        let by = vec!["correlation_id".to_string()];
        let deliveries = plan(items, Some(&index), 2, &by);
        let shape: Vec<(Vec<u32>, GroupKey)> = deliveries
            .iter()
            .map(|d| match d {
                Delivery::Post {
                    messages, group, ..
                } => (messages.clone(), group.clone()),
                other => (
                    other.messages().to_vec(),
                    vec![("reply".into(), String::new())],
                ),
            })
            .collect();
        let key = |v: &str| vec![("correlation_id".to_string(), v.to_string())];
        assert_eq!(
            shape,
            vec![
                // A known problem still replies in its message's thread, whatever its key.
                (vec![6], vec![("reply".to_string(), String::new())]),
                (vec![1, 4], key("A")),
                (vec![5], key("A")),
                (vec![2], Vec::new()),
                (vec![3], key("B")),
            ]
        );
    }

    #[test]
    fn webhooks_always_post() {
        let deliveries = plan(
            vec![pending("a", AlertState::Resolved, None, 1)],
            None,
            20,
            &[],
        );
        assert!(matches!(&deliveries[0], Delivery::Post { .. }));
    }

    #[test]
    fn firing_again_after_resolution_posts_anew() {
        let resolved = stored(AlertState::Resolved, false);
        let firing = stored(AlertState::Firing, false);
        let again = alert("a", AlertState::Firing, None);
        assert!(needs_new_message(Some(&resolved), &again));
        assert!(
            !needs_new_message(Some(&firing), &again),
            "a repeat (or redelivery) of a firing alert rewrites its message"
        );
        assert!(!needs_new_message(
            Some(&firing),
            &alert("a", AlertState::Resolved, None)
        ));
        assert!(needs_new_message(None, &again));
    }

    #[test]
    fn records_keep_the_firing_start_and_count_only_notifying_calls() {
        let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
        let posted = PostedMessage {
            channel: "C1".into(),
            ts: "1.1".into(),
        };
        let firing = alert("a", AlertState::Firing, Some(-60));
        let post = Delivery::Post {
            alerts: vec![firing.clone()],
            messages: vec![1],
            group: Vec::new(),
        };
        let first = record_of(&post, &firing, &posted, false, t(0));
        assert_eq!(
            first.firing_since,
            Some(t(-60)),
            "the source's state-change time"
        );
        assert_eq!(first.notified_at, Some(t(0)));

        // A repeat of the firing alert rewrites the message: no notification, same start.
        let repeat = alert("a", AlertState::Firing, Some(500));
        let update = Delivery::Update {
            stored: first.clone(),
            alert: repeat.clone(),
            messages: vec![2],
        };
        let second = record_of(&update, &repeat, &posted, false, t(600));
        assert_eq!(second.firing_since, Some(t(-60)));
        assert_eq!(second.notified_at, Some(t(0)));
        assert_eq!(second.at, t(600));

        // A rejected update that fell back to a new post did notify.
        let elsewhere = PostedMessage {
            channel: "C1".into(),
            ts: "2.2".into(),
        };
        assert_eq!(
            record_of(&update, &repeat, &elsewhere, false, t(600)).notified_at,
            Some(t(600))
        );

        // Resolved: no longer firing.
        let ok = alert("a", AlertState::Resolved, Some(700));
        let resolve = Delivery::Update {
            stored: second,
            alert: ok.clone(),
            messages: vec![3],
        };
        let third = record_of(&resolve, &ok, &posted, false, t(700));
        assert_eq!(third.firing_since, None);
        assert_eq!(third.title.as_deref(), Some("alarm a"));
    }
}
