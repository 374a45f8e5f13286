//! Route and digest selection: does an [`AlertMatch`] block accept an alert?

use super::model::Alert;
use crate::resources::{AlertMatch, TagOperator, TagRequirement, Tags};

/// Whether `m` accepts `alert`: every non-empty list must match, and every tag requirement hold.
/// An alert without a severity counts as Warning for `minSeverity`.
pub fn matches(m: &AlertMatch, alert: &Alert) -> bool {
    (m.kinds.is_empty() || m.kinds.contains(&alert.kind))
        && (m.states.is_empty() || m.states.contains(&alert.state))
        && m.min_severity
            .is_none_or(|min| alert.effective_severity() >= min)
        && tags_match(&m.tags, &alert.tags)
}

/// Whether `tags` satisfy every requirement (the tag part of [`matches`]), e.g. a cluster's live
/// tags against the route that offers to retry it.
pub fn tags_match(requirements: &[TagRequirement], tags: &Tags) -> bool {
    requirements
        .iter()
        .all(|req| tag_requirement_holds(req, tags))
}

fn tag_requirement_holds(requirement: &TagRequirement, tags: &Tags) -> bool {
    let value = tags.get(&requirement.key);
    match requirement.operator {
        TagOperator::In => value.is_some_and(|v| requirement.values.contains(v)),
        TagOperator::NotIn => value.is_none_or(|v| !requirement.values.contains(v)),
        TagOperator::Exists => value.is_some(),
        TagOperator::DoesNotExist => value.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::model::Fingerprint;
    use crate::resources::{AlertKind, AlertState, Severity};

    fn alert(kind: AlertKind, state: AlertState, severity: Option<Severity>) -> Alert {
        let mut alert = Alert::new(kind, state, Fingerprint::of(kind, &["x"]), "t".into());
        alert.severity = severity;
        alert
            .tags
            .extend([("Team".to_string(), "data".to_string())]);
        alert
    }

    fn req(key: &str, operator: TagOperator, values: &[&str]) -> TagRequirement {
        TagRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn empty_match_takes_everything() {
        let m = AlertMatch::default();
        assert!(matches(
            &m,
            &alert(AlertKind::Message, AlertState::Info, None)
        ));
    }

    #[test]
    fn kinds_and_states_are_lists_of_accepted_values() {
        let m = AlertMatch {
            kinds: vec![AlertKind::EmrClusterStateChange],
            states: vec![AlertState::Firing],
            ..Default::default()
        };
        let emr = alert(AlertKind::EmrClusterStateChange, AlertState::Firing, None);
        assert!(matches(&m, &emr));
        let info = alert(AlertKind::EmrClusterStateChange, AlertState::Info, None);
        assert!(!matches(&m, &info));
        let alarm = alert(AlertKind::CloudWatchAlarm, AlertState::Firing, None);
        assert!(!matches(&m, &alarm));
    }

    #[test]
    fn min_severity_counts_missing_severity_as_warning() {
        let warning = AlertMatch {
            min_severity: Some(Severity::Warning),
            ..Default::default()
        };
        let high = AlertMatch {
            min_severity: Some(Severity::High),
            ..Default::default()
        };
        let none = alert(AlertKind::CloudWatchAlarm, AlertState::Firing, None);
        assert!(matches(&warning, &none));
        assert!(!matches(&high, &none));
        let info = alert(
            AlertKind::CloudWatchAlarm,
            AlertState::Firing,
            Some(Severity::Info),
        );
        assert!(!matches(&warning, &info));
        let critical = alert(
            AlertKind::CloudWatchAlarm,
            AlertState::Firing,
            Some(Severity::Critical),
        );
        assert!(matches(&high, &critical));
    }

    #[test]
    fn tag_operators() {
        let a = alert(AlertKind::EmrClusterStateChange, AlertState::Firing, None);
        let with = |r: TagRequirement| AlertMatch {
            tags: vec![r],
            ..Default::default()
        };
        assert!(matches(
            &with(req("Team", TagOperator::In, &["data", "web"])),
            &a
        ));
        assert!(!matches(&with(req("Team", TagOperator::In, &["web"])), &a));
        assert!(!matches(&with(req("Feature", TagOperator::In, &["x"])), &a));
        assert!(matches(
            &with(req("Team", TagOperator::NotIn, &["web"])),
            &a
        ));
        assert!(!matches(
            &with(req("Team", TagOperator::NotIn, &["data"])),
            &a
        ));
        assert!(
            matches(&with(req("Feature", TagOperator::NotIn, &["x"])), &a),
            "NotIn accepts an absent tag"
        );
        assert!(matches(&with(req("Team", TagOperator::Exists, &[])), &a));
        assert!(!matches(
            &with(req("Feature", TagOperator::Exists, &[])),
            &a
        ));
        assert!(matches(
            &with(req("Feature", TagOperator::DoesNotExist, &[])),
            &a
        ));
        assert!(!matches(
            &with(req("Team", TagOperator::DoesNotExist, &[])),
            &a
        ));
    }

    #[test]
    fn all_requirements_must_hold() {
        let a = alert(AlertKind::EmrClusterStateChange, AlertState::Firing, None);
        let m = AlertMatch {
            tags: vec![
                req("Team", TagOperator::In, &["data"]),
                req("Feature", TagOperator::Exists, &[]),
            ],
            ..Default::default()
        };
        assert!(!matches(&m, &a));
    }
}
