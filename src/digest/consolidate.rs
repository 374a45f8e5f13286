//! Consolidation: many alerts become a few groups by team, feature and failure reason, with
//! counts, first and last seen, and the clusters or alarms involved. Pure.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::alert::Alert;
use crate::email::text::one_line;
use crate::resources::AlertKind;

/// Tag naming the team that owns a resource.
pub const TEAM_TAG: &str = "Team";
/// Tag naming the feature a resource serves.
pub const FEATURE_TAG: &str = "Feature";

/// Longest reason kept, in characters; longer ones are cut (a stack trace is not a reason).
const MAX_REASON_CHARS: usize = 300;

/// The alerts of one run, consolidated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DigestSummary {
    /// Alerts summarised.
    pub total: usize,
    /// Earliest alert time.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest alert time.
    pub last_seen: Option<DateTime<Utc>>,
    /// Teams, most alerts first (ties by name, alerts without a team last).
    pub teams: Vec<TeamSummary>,
    /// Reasons across teams, most alerts first.
    pub reasons: Vec<ReasonTotal>,
    /// Of `total`: alerts a Slack snooze covered (still listed, marked).
    pub snoozed: usize,
}

/// The alerts of one team (`Team` tag; `None` when untagged).
#[derive(Clone, Debug, PartialEq)]
pub struct TeamSummary {
    /// The team, or `None` for alerts whose resource has no `Team` tag.
    pub team: Option<String>,
    /// Alerts of this team.
    pub count: usize,
    /// Alerts per feature (`Feature` tag, `None` when untagged), most first.
    pub features: Vec<(Option<String>, usize)>,
    /// Groups by feature and reason, most alerts first (ties: latest first, then by reason).
    pub groups: Vec<AlertGroup>,
}

/// Alerts of one team and feature that failed for one reason.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertGroup {
    /// `Feature` tag of the resources, `None` when untagged.
    pub feature: Option<String>,
    /// What the alerts were decoded from (of the first alert; a reason rarely spans kinds).
    pub kind: AlertKind,
    /// The failure reason, one line (see [`failure_reason`]).
    pub reason: String,
    /// The latest detailed text when it says more than the reason (an alarm's state reason).
    pub latest_detail: Option<String>,
    /// Alerts in the group.
    pub count: usize,
    /// Earliest alert time.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest alert time.
    pub last_seen: Option<DateTime<Utc>>,
    /// The clusters, alarms, services or tasks involved, distinct, in order of first appearance.
    pub resources: Vec<String>,
    /// Of `count`: alerts a Slack snooze covered.
    pub snoozed: usize,
    /// The schedule's correlation attributes the alerts carried, as `name value` (untrusted
    /// text, escaped by the renderers), distinct, in order of first appearance.
    pub attributes: Vec<String>,
}

/// One reason across every team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonTotal {
    /// The reason.
    pub reason: String,
    /// Alerts with that reason.
    pub count: usize,
    /// Teams affected, by name (alerts without a team are not named).
    pub teams: Vec<String>,
}

/// One team's groups keyed by feature and reason.
type GroupsByKey = BTreeMap<(Option<String>, String), AlertGroup>;

/// Groups `alerts` by team, feature and failure reason.
pub fn consolidate(alerts: &[Alert]) -> DigestSummary {
    consolidate_marking(alerts, &[], |_| false)
}

/// [`consolidate`], counting the alerts `snoozed` says a Slack snooze covered (a snooze holds
/// alerts back from Slack, never from the digest, which lists them marked), and collecting the
/// values of the message attributes named in `attributes` per group.
pub fn consolidate_marking(
    alerts: &[Alert],
    attributes: &[String],
    snoozed: impl Fn(&Alert) -> bool,
) -> DigestSummary {
    // team -> (feature, reason) -> group; BTreeMaps keep the tie order stable.
    let mut teams: BTreeMap<Option<String>, GroupsByKey> = BTreeMap::new();
    let mut reasons: HashMap<String, (usize, Vec<String>)> = HashMap::new();
    let mut summary = DigestSummary {
        total: alerts.len(),
        ..Default::default()
    };
    for alert in alerts {
        let team = tag(alert, TEAM_TAG);
        let feature = tag(alert, FEATURE_TAG);
        let reason = failure_reason(alert);
        let group = teams
            .entry(team.clone())
            .or_default()
            .entry((feature.clone(), reason.text.clone()))
            .or_insert_with(|| AlertGroup {
                feature,
                kind: alert.kind,
                reason: reason.text.clone(),
                latest_detail: None,
                count: 0,
                first_seen: None,
                last_seen: None,
                resources: Vec::new(),
                snoozed: 0,
                attributes: Vec::new(),
            });
        group.count += 1;
        if snoozed(alert) {
            group.snoozed += 1;
            summary.snoozed += 1;
        }
        group.first_seen = earliest(group.first_seen, alert.time);
        if alert.time.is_some() && alert.time >= group.last_seen {
            group.last_seen = alert.time;
            if reason.detail.is_some() {
                group.latest_detail = reason.detail;
            }
        } else if group.latest_detail.is_none() {
            group.latest_detail = reason.detail;
        }
        if let Some(resource) = resource_label(alert)
            && !group.resources.contains(&resource)
        {
            group.resources.push(resource);
        }
        for value in attribute_values(alert, attributes) {
            if !group.attributes.contains(&value) {
                group.attributes.push(value);
            }
        }
        let total = reasons.entry(reason.text).or_default();
        total.0 += 1;
        if let Some(team) = team
            && !total.1.contains(&team)
        {
            total.1.push(team);
        }
        summary.first_seen = earliest(summary.first_seen, alert.time);
        summary.last_seen = summary.last_seen.max(alert.time);
    }

    summary.teams = teams
        .into_iter()
        .map(|(team, groups)| {
            let mut groups: Vec<AlertGroup> = groups.into_values().collect();
            groups.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(b.last_seen.cmp(&a.last_seen))
                    .then_with(|| a.reason.cmp(&b.reason))
                    .then_with(|| a.feature.cmp(&b.feature))
            });
            let mut features: BTreeMap<Option<String>, usize> = BTreeMap::new();
            for group in &groups {
                *features.entry(group.feature.clone()).or_default() += group.count;
            }
            let mut features: Vec<(Option<String>, usize)> = features.into_iter().collect();
            features.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| none_last(&a.0, &b.0)));
            TeamSummary {
                team,
                count: groups.iter().map(|g| g.count).sum(),
                features,
                groups,
            }
        })
        .collect();
    summary.teams.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| none_last(&a.team, &b.team))
    });

    summary.reasons = reasons
        .into_iter()
        .map(|(reason, (count, mut teams))| {
            teams.sort();
            ReasonTotal {
                reason,
                count,
                teams,
            }
        })
        .collect();
    summary
        .reasons
        .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    summary
}

/// Orders names alphabetically with `None` after every name.
fn none_last(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The named message attributes `alert` carries, as `name value`, one line each.
fn attribute_values(alert: &Alert, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter_map(|name| {
            let value = one_line(alert.attributes.get(name)?);
            (!value.is_empty()).then(|| format!("{name} {value}"))
        })
        .collect()
}

fn tag(alert: &Alert, key: &str) -> Option<String> {
    alert
        .tags
        .get(key)
        .map(|v| one_line(v))
        .filter(|v| !v.is_empty())
}

/// Why an alert fired, as the digest groups it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureReason {
    /// The grouping key and the text shown: one line, resource ids masked.
    pub text: String,
    /// More detail from the latest alert, when it says more than `text`.
    pub detail: Option<String>,
}

/// The failure reason of an alert:
/// - EMR: the state-change reason (`CODE: message`) from the event, else the failure reason
///   enrichment read from the cluster, else the state;
/// - CloudWatch alarm: the alarm name and the state it entered (state reasons embed datapoints
///   and would never group), with the latest state reason as detail;
/// - ECS: the stop reason or service event, else the state;
/// - anything else: the title, with the summary as detail.
///
/// Ids of individual resources (`j-…`, `i-…`, IP addresses) are masked so that the same failure
/// on different clusters groups together.
pub fn failure_reason(alert: &Alert) -> FailureReason {
    let state = alert.source_state.as_deref().unwrap_or("");
    let (text, detail) = match alert.kind {
        AlertKind::EmrClusterStateChange => {
            // The decoder puts the reason's message in the summary and adds a `Message` detail
            // only when the event also had a reason; otherwise the summary is the generic message.
            let event_reason = (alert.detail("Message").is_some() && !alert.summary.is_empty())
                .then(|| alert.summary.clone());
            let message = event_reason
                .or_else(|| alert.detail("Failure reason").map(str::to_string))
                .filter(|m| !m.trim().is_empty());
            let code = alert.detail("Reason code");
            let text = match (code, message) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (None, Some(message)) => message,
                (Some(code), None) => code.to_string(),
                (None, None) if !state.is_empty() => format!("Cluster {state}"),
                (None, None) => alert.title.clone(),
            };
            (text, None)
        }
        AlertKind::CloudWatchAlarm => {
            let name = alert.resource.as_deref().unwrap_or(&alert.title);
            let text = if state.is_empty() {
                format!("Alarm {name}")
            } else {
                format!("Alarm {name} in {state}")
            };
            (text, Some(alert.summary.clone()))
        }
        AlertKind::EcsTaskStateChange | AlertKind::EcsServiceAction => {
            let text = if !alert.summary.trim().is_empty() {
                alert.summary.clone()
            } else if !state.is_empty() {
                state.to_string()
            } else {
                alert.title.clone()
            };
            (text, None)
        }
        AlertKind::EventBridgeEvent | AlertKind::Message => {
            (alert.title.clone(), Some(alert.summary.clone()))
        }
    };
    let text = crate::email::text::truncate(&mask_ids(&one_line(&text)), MAX_REASON_CHARS);
    let detail = detail
        .map(|d| crate::email::text::truncate(&one_line(&d), MAX_REASON_CHARS))
        .filter(|d| !d.is_empty() && *d != text);
    FailureReason { text, detail }
}

/// Replaces the ids of individual resources in a reason with `…`: `j-1ABC2DEF3GH4` becomes
/// `j-…`, `i-0123456789abcdef0` becomes `i-…`, `10.0.12.7` becomes `…`. Words such as `us-east-1`
/// or `m5.xlarge` are left alone.
pub fn mask_ids(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
            let start = word.find(core).unwrap_or(0);
            let (before, after) = (&word[..start], &word[start + core.len()..]);
            if let Some(prefix) = resource_id_prefix(core) {
                format!("{before}{prefix}-…{after}")
            } else if is_ipv4(word.trim_matches(|c: char| !c.is_ascii_digit())) {
                let ip = word.trim_matches(|c: char| !c.is_ascii_digit());
                word.replacen(ip, "…", 1)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Some(prefix)` when `word` looks like an AWS resource id: a short lower-case prefix, a hyphen,
/// and at least 8 letters and digits with a digit among them, all lower-case hex or all upper case.
fn resource_id_prefix(word: &str) -> Option<&str> {
    let (prefix, id) = word.split_once('-')?;
    let prefix_ok =
        (1..=8).contains(&prefix.len()) && prefix.chars().all(|c| c.is_ascii_lowercase());
    let id_ok = id.len() >= 8
        && id.chars().all(|c| c.is_ascii_alphanumeric())
        && id.chars().any(|c| c.is_ascii_digit())
        && (id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            || id
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    (prefix_ok && id_ok).then_some(prefix)
}

fn is_ipv4(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
}

/// How the alert's resource is shown: the EMR cluster's name and id, the alarm name, or the
/// last part of an ARN.
pub fn resource_label(alert: &Alert) -> Option<String> {
    let label = match alert.kind {
        AlertKind::EmrClusterStateChange => alert
            .detail("Cluster")
            .map(str::to_string)
            .or_else(|| alert.resource.clone()),
        _ => alert.resource.as_deref().map(short_arn),
    }?;
    let label = one_line(&label);
    (!label.is_empty()).then_some(label)
}

/// `arn:aws:ecs:us-east-1:123456789012:service/prod/web` becomes `service/prod/web`; other text
/// is returned as it is.
fn short_arn(text: &str) -> String {
    if text.starts_with("arn:") {
        text.splitn(6, ':').nth(5).unwrap_or(text).to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests;
