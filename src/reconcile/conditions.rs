//! Building the standard `conditions` list: `observedGeneration` on every condition, and
//! `lastTransitionTime` kept when the status did not change, so that a resync writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition to set: type, status, reason, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// Condition type, e.g. `Ready`.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// What a person should know or do.
    pub message: String,
}

impl ConditionUpdate {
    /// A condition that holds.
    pub fn truthy(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConditionUpdate {
            type_,
            status: true,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn falsy(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConditionUpdate {
            type_,
            status: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Merges `updates` into `previous`: conditions of other types are kept, the transition time of a
/// condition changes only when its status changes.
pub fn merge(
    previous: &[Condition],
    updates: &[ConditionUpdate],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = previous
        .iter()
        .filter(|c| !updates.iter().any(|u| u.type_ == c.type_))
        .cloned()
        .collect();
    for update in updates {
        let status = if update.status { "True" } else { "False" };
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == update.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        // Kubernetes limits messages to 32768 characters.
        let mut message = update.message.clone();
        if message.len() > 32_000 {
            let mut cut = 32_000;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        out.push(Condition {
            type_: update.type_.to_string(),
            status: status.to_string(),
            reason: update.reason.clone(),
            message,
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

#[cfg(test)]
/// The condition of the given type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_is_kept_while_status_holds() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let first = merge(
            &[],
            &[ConditionUpdate::truthy("Ready", "Reconciled", "ok")],
            Some(1),
            t0,
        );
        let again = merge(
            &first,
            &[ConditionUpdate::truthy("Ready", "Reconciled", "still ok")],
            Some(2),
            t1,
        );
        assert_eq!(again[0].last_transition_time, Time(t0));
        assert_eq!(again[0].observed_generation, Some(2));
        let flipped = merge(
            &again,
            &[ConditionUpdate::falsy("Ready", "AwsError", "boom")],
            Some(2),
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, Time(t1));
        assert_eq!(flipped[0].status, "False");
    }

    #[test]
    fn other_condition_types_are_kept() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let both = merge(
            &[],
            &[
                ConditionUpdate::truthy("Ready", "R", "m"),
                ConditionUpdate::falsy("Lint", "Errors", "x"),
            ],
            Some(1),
            t0,
        );
        let only_ready = merge(
            &both,
            &[ConditionUpdate::falsy("Ready", "R2", "m")],
            Some(1),
            t0,
        );
        assert_eq!(only_ready.len(), 2);
        assert_eq!(find(&only_ready, "Lint").unwrap().reason, "Errors");
    }
}
