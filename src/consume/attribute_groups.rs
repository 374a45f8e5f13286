//! Grouping by message attributes (a route's `grouping.byAttributes`): pure, no I/O.
//!
//! Without `byAttributes` every alert of a group wait that needs a new message goes into one
//! grouped message (chunked by `maxAlertsPerMessage`): the route is the only grouping key.
//! With it, the key is the route plus the values of the named attributes an alert carries:
//!
//! - alerts carrying the same values share messages, headed by those values;
//! - alerts carrying different values (or the same names with one missing) never share one;
//! - alerts carrying none of the names (or only blank values) share the route's plain group,
//!   exactly as without `byAttributes`.
//!
//! Groups keep the arrival order of their first alert, and alerts keep arrival order within a
//! group, so the posts follow the order problems arrived in. Only new posts are grouped: an
//! update or thread reply goes to the message that already shows its problem, whatever group
//! that message was, and a storm summary lists every problem of a backlog regardless of key
//! (after an outage one message beats one per correlation id).

use crate::alert::Alert;

/// The values an alert carries for the grouping attributes, as `(name, value)` in the route's
/// order; empty for alerts that carry none of them (the route's plain group).
pub type GroupKey = Vec<(String, String)>;

/// The grouping key of `alert` under the attribute names `by`.
pub fn group_key(alert: &Alert, by: &[String]) -> GroupKey {
    by.iter()
        .filter_map(|name| {
            let value = alert.attributes.get(name)?;
            (!value.trim().is_empty()).then(|| (name.clone(), value.clone()))
        })
        .collect()
}

/// Splits `items` into groups of equal key, in order of each group's first item, items in
/// arrival order within a group.
pub fn partition<T>(items: Vec<T>, key: impl Fn(&T) -> GroupKey) -> Vec<(GroupKey, Vec<T>)> {
    let mut groups: Vec<(GroupKey, Vec<T>)> = Vec::new();
    for item in items {
        let item_key = key(&item);
        match groups.iter_mut().find(|(k, _)| *k == item_key) {
            Some((_, members)) => members.push(item),
            None => groups.push((item_key, vec![item])),
        }
    }
    groups
}

/// The heading of a group's message: `correlation_id 9f2c · request_id r-1`, plain text (the
/// renderer escapes it for where it goes); `None` for the route's plain group.
pub fn heading(key: &GroupKey) -> Option<String> {
    (!key.is_empty()).then(|| {
        key.iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect::<Vec<_>>()
            .join(" · ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Fingerprint;
    use crate::resources::{AlertKind, AlertState};

    fn alert(fp: &str, attributes: &[(&str, &str)]) -> Alert {
        let mut a = Alert::new(
            AlertKind::Message,
            AlertState::Firing,
            Fingerprint::from_raw(fp),
            fp.to_string(),
        );
        for (name, value) in attributes {
            a.attributes.insert(name.to_string(), value.to_string());
        }
        a
    }

    fn by(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn titles(groups: &[(GroupKey, Vec<Alert>)]) -> Vec<Vec<&str>> {
        groups
            .iter()
            .map(|(_, alerts)| alerts.iter().map(|a| a.title.as_str()).collect())
            .collect()
    }

    #[test]
    fn same_values_share_a_group_and_different_values_do_not() {
        let names = by(&["correlation_id"]);
        let alerts = vec![
            alert("a1", &[("correlation_id", "A")]),
            alert("b1", &[("correlation_id", "B")]),
            alert("a2", &[("correlation_id", "A"), ("other", "x")]),
        ];
        let groups = partition(alerts, |a| group_key(a, &names));
        assert_eq!(titles(&groups), vec![vec!["a1", "a2"], vec!["b1"]]);
        assert_eq!(
            groups[0].0,
            vec![("correlation_id".to_string(), "A".to_string())]
        );
    }

    #[test]
    fn alerts_without_the_attributes_share_the_plain_group() {
        let names = by(&["correlation_id"]);
        let alerts = vec![
            alert("plain1", &[]),
            alert("a1", &[("correlation_id", "A")]),
            alert("blank", &[("correlation_id", "  ")]),
            alert("plain2", &[("request_id", "r")]),
        ];
        let groups = partition(alerts, |a| group_key(a, &names));
        assert_eq!(
            titles(&groups),
            vec![vec!["plain1", "blank", "plain2"], vec!["a1"]]
        );
        assert!(groups[0].0.is_empty());
        assert_eq!(heading(&groups[0].0), None);
    }

    #[test]
    fn a_missing_second_attribute_makes_a_different_group() {
        let names = by(&["correlation_id", "request_id"]);
        let both = alert("both", &[("correlation_id", "A"), ("request_id", "r1")]);
        let only = alert("only", &[("correlation_id", "A")]);
        assert_ne!(group_key(&both, &names), group_key(&only, &names));
        assert_eq!(
            heading(&group_key(&both, &names)).as_deref(),
            Some("correlation_id A · request_id r1"),
            "in the route's order"
        );
    }

    #[test]
    fn without_names_everything_is_one_group() {
        let alerts = vec![
            alert("a", &[("correlation_id", "A")]),
            alert("b", &[("correlation_id", "B")]),
        ];
        let groups = partition(alerts, |a| group_key(a, &[]));
        assert_eq!(titles(&groups), vec![vec!["a", "b"]]);
    }
}
