//! What to send for the backlog a Slack outage left: pure decisions, no I/O.
//!
//! After the circuit closes (see [`super::circuit`]), the consumer drains the queue and plans
//! the backlog here instead of with [`super::plan::plan`] alone:
//!
//! - A backlog that fits in one grouped message (at most `max_per_message` problems) is planned
//!   as always: a short blip changes nothing.
//! - Otherwise one storm summary lists every problem with its count (see
//!   [`crate::slack::render_storm_summary`]) and carries the SQS messages of every problem that
//!   does not need a message of its own.
//! - A problem needs its own message when people must act on it or an old message would lie:
//!   it still fires with severity High or Critical (mentions, Acknowledge and Retry buttons, a
//!   message its resolution can update later), or its problem already has a Slack message that
//!   this state changes (an update or thread reply, which does not notify). These go out as
//!   [`super::plan::plan`] decides, after the summary, grouped and paced as always.
//! - Everything else (resolved meanwhile, Warning and Info, repeats) is only in the summary.
//!   With a bot token the summary is then remembered as their message (a grouped one), so that
//!   a later change of such a problem is a reply in the summary's thread, not a new post.

use std::time::Duration;

use crate::alert::Alert;
use crate::resources::{AlertState, Severity};
use crate::slack::{StormLine, StormSummary};

use super::plan::{Delivery, PendingAlert, needs_new_message, plan};
use super::store::MessageIndex;

/// The storm summary post.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryPost<M> {
    /// What it says.
    pub summary: StormSummary,
    /// The alerts only it delivers (to remember it as their message).
    pub alerts: Vec<Alert>,
    /// Their SQS messages.
    pub messages: Vec<M>,
}

/// The Slack calls for a backlog.
#[derive(Clone, Debug, PartialEq)]
pub struct StormPlan<M> {
    /// The summary; `None` for a small backlog.
    pub summary: Option<SummaryPost<M>>,
    /// The calls after it (all of them for a small backlog).
    pub deliveries: Vec<Delivery<M>>,
}

/// Whether `item` needs a message of its own even in a storm.
fn needs_own_message<M>(item: &PendingAlert<M>, index: Option<&MessageIndex>) -> bool {
    if let Some(stored) = index.and_then(|i| i.get(&item.alert.fingerprint))
        && !needs_new_message(Some(stored), &item.alert)
    {
        return true;
    }
    item.alert.state == AlertState::Firing && item.alert.effective_severity() >= Severity::High
}

/// Firing before anything else, then severity, then the noisiest, then by title.
fn importance(
    line: &StormLine,
) -> (
    bool,
    std::cmp::Reverse<Severity>,
    std::cmp::Reverse<usize>,
    String,
) {
    (
        line.state != AlertState::Firing,
        std::cmp::Reverse(line.severity),
        std::cmp::Reverse(line.notifications),
        line.title.clone(),
    )
}

/// Plans the backlog `pending` (already collapsed: one item per problem, with every SQS message
/// that carried it). `outage` is how long Slack was unreachable. The summary lists problems of
/// every `by_attributes` key together (one message beats one per correlation id after an
/// outage); what needs its own message is grouped by them as always.
pub fn plan_storm<M>(
    pending: Vec<PendingAlert<M>>,
    index: Option<&MessageIndex>,
    max_per_message: usize,
    by_attributes: &[String],
    outage: Option<Duration>,
) -> StormPlan<M> {
    if pending.len() <= max_per_message.max(1) {
        return StormPlan {
            summary: None,
            deliveries: plan(pending, index, max_per_message, by_attributes),
        };
    }
    let mut lines = Vec::with_capacity(pending.len());
    let mut own = Vec::new();
    let mut messages = Vec::new();
    let mut alerts = Vec::new();
    for item in pending {
        let individually = needs_own_message(&item, index);
        lines.push(StormLine {
            title: item.alert.title.clone(),
            kind: item.alert.kind,
            severity: item.alert.effective_severity(),
            state: item.alert.state,
            notifications: item.messages.len(),
            posted_individually: individually,
        });
        if individually {
            own.push(item);
        } else {
            messages.extend(item.messages);
            alerts.push(item.alert);
        }
    }
    lines.sort_by_key(importance);
    StormPlan {
        summary: Some(SummaryPost {
            summary: StormSummary { outage, lines },
            alerts,
            messages,
        }),
        deliveries: plan(own, index, max_per_message, by_attributes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, Fingerprint};
    use crate::resources::AlertKind;
    use chrono::{TimeZone, Utc};

    use super::super::store::StoredMessage;

    fn pending(
        fp: &str,
        state: AlertState,
        severity: Severity,
        messages: Vec<u32>,
    ) -> PendingAlert<u32> {
        let mut alert = Alert::new(
            AlertKind::CloudWatchAlarm,
            state,
            Fingerprint::from_raw(fp),
            format!("alarm {fp}"),
        );
        alert.severity = Some(severity);
        PendingAlert { alert, messages }
    }

    fn warnings(n: u32) -> Vec<PendingAlert<u32>> {
        (0..n)
            .map(|i| {
                pending(
                    &format!("w{i}"),
                    AlertState::Firing,
                    Severity::Warning,
                    vec![i],
                )
            })
            .collect()
    }

    #[test]
    fn a_backlog_that_fits_one_message_is_planned_as_always() {
        let out = plan_storm(warnings(20), None, 20, &[], Some(Duration::from_secs(60)));
        assert!(out.summary.is_none());
        assert_eq!(out.deliveries.len(), 1);
        assert_eq!(out.deliveries[0].alert_count(), 20);
    }

    #[test]
    fn a_large_backlog_is_one_summary_plus_what_needs_its_own_message() {
        let mut items = warnings(40);
        items.push(pending(
            "db-down",
            AlertState::Firing,
            Severity::Critical,
            vec![100, 101, 102],
        ));
        items.push(pending(
            "flap",
            AlertState::Resolved,
            Severity::Critical,
            vec![200],
        ));
        let out = plan_storm(items, None, 20, &[], Some(Duration::from_secs(7200)));
        let SummaryPost {
            summary,
            alerts,
            messages: carried,
        } = out.summary.expect("a summary");
        assert_eq!(
            alerts.len(),
            41,
            "the alerts it delivers, to remember it as theirs"
        );
        assert_eq!(summary.lines.len(), 42, "every problem is in the summary");
        assert_eq!(summary.notifications(), 44);
        assert_eq!(
            summary.lines[0].title, "alarm db-down",
            "firing Critical first"
        );
        assert!(summary.lines[0].posted_individually);
        assert_eq!(
            summary.lines.last().unwrap().title,
            "alarm flap",
            "resolved meanwhile comes last"
        );
        assert_eq!(
            carried.len(),
            41,
            "the summary carries all but the critical"
        );
        assert!(carried.contains(&200) && !carried.contains(&100));
        assert_eq!(
            out.deliveries.len(),
            1,
            "only the firing critical on its own"
        );
        assert_eq!(out.deliveries[0].messages(), &[100, 101, 102]);
    }

    #[test]
    fn the_summary_spans_attribute_groups_and_own_messages_keep_them() {
        let mut items = warnings(30);
        for (i, id) in [(31, "A"), (32, "B"), (33, "A")] {
            let mut item = pending(
                &format!("crit{i}"),
                AlertState::Firing,
                Severity::Critical,
                vec![i],
            );
            item.alert
                .attributes
                .insert("correlation_id".into(), id.into());
            items.push(item);
        }
        let by = vec!["correlation_id".to_string()];
        let out = plan_storm(items, None, 20, &by, None);
        assert_eq!(out.summary.expect("a summary").summary.lines.len(), 33);
        let posts: Vec<&[u32]> = out.deliveries.iter().map(Delivery::messages).collect();
        assert_eq!(posts, vec![&[31, 33][..], &[32][..]], "one post per id");
    }

    #[test]
    fn a_problem_with_a_message_gets_that_message_updated() {
        let mut index = MessageIndex::new();
        index.insert(
            Fingerprint::from_raw("w3"),
            StoredMessage {
                channel: "C1".into(),
                ts: "1.1".into(),
                at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
                state: AlertState::Firing,
                grouped: false,
                reason: None,
                firing_since: None,
                notified_at: None,
                title: None,
            },
        );
        let mut items = warnings(30);
        items[3].alert.state = AlertState::Resolved;
        let out = plan_storm(items, Some(&index), 20, &[], None);
        assert!(out.summary.is_some());
        assert!(
            matches!(&out.deliveries[..], [Delivery::Update { messages, .. }] if messages == &[3]),
            "{:?}",
            out.deliveries
        );
    }
}
