//! The digest email (HTML and plain text with the same content) and the short Slack summary.
//! Pure: everything comes from the [`DigestSummary`] and the [`DigestContext`].

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::consolidate::{AlertGroup, DigestSummary};
use crate::email::EmailMessage;
use crate::email::html::{self, Align, Html};
use crate::email::text::{capped_list, one_line, truncate};
use crate::slack::SlackMessage;

/// Reasons listed in the "Top reasons" table; the rest are counted in a `+N more` row.
pub const MAX_TOP_REASONS: usize = 5;
/// Teams given a section of their own; the rest are counted in a closing line.
pub const MAX_TEAMS: usize = 20;
/// Groups listed per team.
pub const MAX_GROUPS_PER_TEAM: usize = 15;
/// Clusters or alarms named per group.
pub const MAX_RESOURCES_PER_GROUP: usize = 5;
/// Features and teams named in one cell.
pub const MAX_NAMES_PER_CELL: usize = 5;
/// Characters of the top reason quoted in the subject.
const MAX_SUBJECT_REASON: usize = 80;
/// Characters of the whole subject.
const MAX_SUBJECT: usize = 200;

/// Shown for alerts whose resource has no `Team` tag.
pub const NO_TEAM: &str = "(no team)";
/// Shown for alerts whose resource has no `Feature` tag.
pub const NO_FEATURE: &str = "—";

/// What the rendering needs besides the summary.
#[derive(Clone, Debug)]
pub struct DigestContext {
    /// `namespace/name` of the DigestSchedule.
    pub schedule: String,
    /// Prefix of the subject (`email.subjectPrefix`), for example `[prod]`.
    pub subject_prefix: Option<String>,
    /// Start of the window covered: the previous run, or the earliest alert if older.
    pub window_start: Option<DateTime<Utc>>,
    /// End of the window covered: this run.
    pub window_end: DateTime<Utc>,
    /// Time zone the times are shown in (the schedule's).
    pub time_zone: Tz,
    /// Alerts queued in this span may have expired unreported: the last successful run lies
    /// further back than the queue keeps messages (runs failed or were missed in between).
    pub possibly_expired: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl DigestContext {
    fn time(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.time_zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    fn short_time(&self, at: Option<DateTime<Utc>>) -> String {
        at.map(|at| {
            at.with_timezone(&self.time_zone)
                .format("%b %d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "—".to_string())
    }

    /// The window covered, e.g. `2024-05-01 08:00 – 20:00 PDT`.
    pub fn window(&self) -> String {
        let end = self.window_end.with_timezone(&self.time_zone);
        match self.window_start {
            None => format!("until {}", self.time(self.window_end)),
            Some(start) => {
                let start = start.with_timezone(&self.time_zone);
                if start.date_naive() == end.date_naive() {
                    format!(
                        "{} – {}",
                        start.format("%Y-%m-%d %H:%M"),
                        end.format("%H:%M %Z")
                    )
                } else {
                    format!(
                        "{} – {}",
                        start.format("%Y-%m-%d %H:%M %Z"),
                        end.format("%Y-%m-%d %H:%M %Z")
                    )
                }
            }
        }
    }

    fn schedule_name(&self) -> &str {
        self.schedule
            .rsplit_once('/')
            .map_or(self.schedule.as_str(), |(_, name)| name)
    }
}

fn team_name(team: &Option<String>) -> &str {
    team.as_deref().unwrap_or(NO_TEAM)
}

fn feature_name(feature: &Option<String>) -> &str {
    feature.as_deref().unwrap_or(NO_FEATURE)
}

/// The mark of alerts a Slack snooze held back: the digest lists them all the same.
fn snoozed_note(count: usize) -> String {
    format!("snoozed in Slack: {}", alerts(count))
}

fn alerts(count: usize) -> String {
    if count == 1 {
        "1 alert".to_string()
    } else {
        format!("{count} alerts")
    }
}

/// The subject: the schedule's name, the total, the window and the top reason.
pub fn subject(context: &DigestContext, summary: &DigestSummary) -> String {
    let mut subject = String::new();
    if let Some(prefix) = context.subject_prefix.as_deref().map(one_line)
        && !prefix.is_empty()
    {
        subject.push_str(&prefix);
        subject.push(' ');
    }
    subject.push_str(&format!(
        "Alert digest {}: {}, {}",
        one_line(context.schedule_name()),
        if summary.total == 0 {
            "no alerts".to_string()
        } else {
            alerts(summary.total)
        },
        context.window()
    ));
    if let Some(top) = summary.reasons.first() {
        subject.push_str(&format!(
            " — top: {} ({})",
            truncate(&top.reason, MAX_SUBJECT_REASON),
            top.count
        ));
    }
    truncate(&subject, MAX_SUBJECT)
}

/// The digest email.
pub fn render_email(context: &DigestContext, summary: &DigestSummary) -> EmailMessage {
    EmailMessage {
        subject: subject(context, summary),
        html: render_html(context, summary),
        text: render_text(context, summary),
    }
}

fn intro(context: &DigestContext, summary: &DigestSummary) -> String {
    let mut intro = intro_counts(context, summary);
    if let Some((from, until)) = context.possibly_expired {
        intro.push_str(&format!(
            " Warning: the last successful digest ran at {}, longer ago than the queue keeps \
             alerts; alerts queued from then until {} may have expired without being reported.",
            context.time(from),
            context.time(until)
        ));
    }
    intro
}

fn intro_counts(context: &DigestContext, summary: &DigestSummary) -> String {
    if summary.total == 0 {
        return format!("No alerts, {}.", context.window());
    }
    let reasons = summary.reasons.len();
    format!(
        "{} across {} with {reasons} distinct {}, {}.",
        alerts(summary.total),
        plural_teams(summary),
        if reasons == 1 { "reason" } else { "reasons" },
        context.window()
    )
}

fn plural_teams(summary: &DigestSummary) -> String {
    match summary.teams.len() {
        1 => "1 team".to_string(),
        n => format!("{n} teams"),
    }
}

fn feature_counts(features: &[(Option<String>, usize)]) -> String {
    let named: Vec<String> = features
        .iter()
        .map(|(feature, count)| format!("{} {count}", feature_name(feature)))
        .collect();
    capped_list(&named, MAX_NAMES_PER_CELL)
}

fn render_html(context: &DigestContext, summary: &DigestSummary) -> String {
    let mut body = html::heading(1, &format!("Alert digest {}", context.schedule));
    body.push(html::paragraph(Html::text(&intro(context, summary))));

    if !summary.reasons.is_empty() {
        body.push(html::heading(2, "Top reasons"));
        let mut rows: Vec<Vec<Html>> = summary
            .reasons
            .iter()
            .take(MAX_TOP_REASONS)
            .map(|r| {
                vec![
                    Html::text(&r.reason),
                    Html::text(&r.count.to_string()),
                    Html::text(&capped_list(&r.teams, MAX_NAMES_PER_CELL)),
                ]
            })
            .collect();
        if let Some(more) = more_row(
            summary
                .reasons
                .iter()
                .skip(MAX_TOP_REASONS)
                .map(|r| r.count),
            "reasons",
        ) {
            rows.push(vec![html::muted(Html::text(&more))]);
        }
        body.push(html::table(
            &[
                ("Reason", Align::Left),
                ("Alerts", Align::Right),
                ("Teams", Align::Left),
            ],
            &rows,
        ));

        body.push(html::heading(2, "By team"));
        let mut rows: Vec<Vec<Html>> = summary
            .teams
            .iter()
            .map(|t| {
                vec![
                    Html::text(team_name(&t.team)),
                    Html::text(&t.count.to_string()),
                    Html::text(&feature_counts(&t.features)),
                ]
            })
            .collect();
        rows.truncate(MAX_TEAMS);
        if let Some(more) = more_row(
            summary.teams.iter().skip(MAX_TEAMS).map(|t| t.count),
            "teams",
        ) {
            rows.push(vec![html::muted(Html::text(&more))]);
        }
        body.push(html::table(
            &[
                ("Team", Align::Left),
                ("Alerts", Align::Right),
                ("Features", Align::Left),
            ],
            &rows,
        ));
    }

    for team in summary.teams.iter().take(MAX_TEAMS) {
        body.push(html::heading(
            2,
            &format!("Team {}: {}", team_name(&team.team), alerts(team.count)),
        ));
        let mut rows: Vec<Vec<Html>> = team
            .groups
            .iter()
            .take(MAX_GROUPS_PER_TEAM)
            .map(|g| group_row(context, g))
            .collect();
        if let Some(more) = more_row(
            team.groups
                .iter()
                .skip(MAX_GROUPS_PER_TEAM)
                .map(|g| g.count),
            "groups",
        ) {
            rows.push(vec![html::muted(Html::text(&more))]);
        }
        body.push(html::table(
            &[
                ("Feature", Align::Left),
                ("Reason", Align::Left),
                ("Alerts", Align::Right),
                ("First seen", Align::Left),
                ("Last seen", Align::Left),
                ("Clusters / alarms", Align::Left),
            ],
            &rows,
        ));
    }
    if let Some(more) = more_row(
        summary.teams.iter().skip(MAX_TEAMS).map(|t| t.count),
        "teams",
    ) {
        body.push(html::paragraph(html::muted(Html::text(&more))));
    }
    body.push(html::paragraph(html::muted(Html::text(&footer(context)))));
    html::document(&subject(context, summary), body)
}

fn group_row(context: &DigestContext, group: &AlertGroup) -> Vec<Html> {
    let mut reason = Html::text(&group.reason);
    if group.snoozed > 0 {
        reason.push(html::line_break());
        reason.push(html::muted(Html::text(&snoozed_note(group.snoozed))));
    }
    if let Some(detail) = &group.latest_detail {
        reason.push(html::line_break());
        reason.push(html::muted(Html::text(&format!("Latest: {detail}"))));
    }
    if let Some(line) = attributes_line(group) {
        reason.push(html::line_break());
        reason.push(html::muted(Html::text(&line)));
    }
    vec![
        Html::text(feature_name(&group.feature)),
        reason,
        Html::text(&group.count.to_string()),
        Html::text(&context.short_time(group.first_seen)),
        Html::text(&context.short_time(group.last_seen)),
        Html::text(&capped_list(&group.resources, MAX_RESOURCES_PER_GROUP)),
    ]
}

/// `Correlation: correlation_id 9f2c, ...`: the schedule's correlation attributes the group's
/// alerts carried (plain text; each renderer escapes it), or `None` when they carried none.
fn attributes_line(group: &AlertGroup) -> Option<String> {
    (!group.attributes.is_empty()).then(|| {
        format!(
            "Correlation: {}",
            capped_list(&group.attributes, MAX_RESOURCES_PER_GROUP)
        )
    })
}

/// `+N more <what> (M alerts)` for the items left out, or `None` when nothing was.
fn more_row(left_out: impl Iterator<Item = usize>, what: &str) -> Option<String> {
    let (items, count) = left_out.fold((0, 0), |(n, c), count| (n + 1, c + count));
    (items > 0).then(|| format!("+{items} more {what} ({})", alerts(count)))
}

fn footer(context: &DigestContext) -> String {
    format!(
        "Sent by alertops for DigestSchedule {}. Times are in {}.",
        context.schedule,
        context.time_zone.name()
    )
}

fn render_text(context: &DigestContext, summary: &DigestSummary) -> String {
    let mut out = format!(
        "Alert digest {}\n\n{}\n",
        context.schedule,
        intro(context, summary)
    );
    if !summary.reasons.is_empty() {
        out.push_str("\nTop reasons\n");
        for r in summary.reasons.iter().take(MAX_TOP_REASONS) {
            out.push_str(&format!("  {:>5}  {}", r.count, r.reason));
            if !r.teams.is_empty() {
                out.push_str(&format!(
                    " (teams: {})",
                    capped_list(&r.teams, MAX_NAMES_PER_CELL)
                ));
            }
            out.push('\n');
        }
        if let Some(more) = more_row(
            summary
                .reasons
                .iter()
                .skip(MAX_TOP_REASONS)
                .map(|r| r.count),
            "reasons",
        ) {
            out.push_str(&format!("  {more}\n"));
        }
        out.push_str("\nBy team\n");
        for t in summary.teams.iter().take(MAX_TEAMS) {
            out.push_str(&format!(
                "  {:>5}  {} (features: {})\n",
                t.count,
                team_name(&t.team),
                feature_counts(&t.features)
            ));
        }
        if let Some(more) = more_row(
            summary.teams.iter().skip(MAX_TEAMS).map(|t| t.count),
            "teams",
        ) {
            out.push_str(&format!("  {more}\n"));
        }
    }
    for team in summary.teams.iter().take(MAX_TEAMS) {
        out.push_str(&format!(
            "\nTeam {}: {}\n",
            team_name(&team.team),
            alerts(team.count)
        ));
        for g in team.groups.iter().take(MAX_GROUPS_PER_TEAM) {
            out.push_str(&format!(
                "  - {} x {} [feature {}]\n      first {}, last {}\n",
                g.count,
                g.reason,
                feature_name(&g.feature),
                context.short_time(g.first_seen),
                context.short_time(g.last_seen)
            ));
            if g.snoozed > 0 {
                out.push_str(&format!("      {}\n", snoozed_note(g.snoozed)));
            }
            if let Some(detail) = &g.latest_detail {
                out.push_str(&format!("      latest: {detail}\n"));
            }
            if !g.resources.is_empty() {
                out.push_str(&format!(
                    "      involved: {}\n",
                    capped_list(&g.resources, MAX_RESOURCES_PER_GROUP)
                ));
            }
            if let Some(line) = attributes_line(g) {
                out.push_str(&format!("      {line}\n"));
            }
        }
        if let Some(more) = more_row(
            team.groups
                .iter()
                .skip(MAX_GROUPS_PER_TEAM)
                .map(|g| g.count),
            "groups",
        ) {
            out.push_str(&format!("  {more}\n"));
        }
    }
    out.push_str(&format!("\n-- \n{}\n", footer(context)));
    out
}

/// The short Slack summary posted after the email was accepted: totals, the top reasons and the
/// busiest teams.
pub fn render_slack_summary(
    context: &DigestContext,
    summary: &DigestSummary,
    recipients: usize,
) -> SlackMessage {
    use crate::slack::text::escape;
    let headline = format!(
        "Alert digest {}: {}, {}",
        context.schedule,
        if summary.total == 0 {
            "no alerts".to_string()
        } else {
            alerts(summary.total)
        },
        context.window()
    );
    let mut lines = vec![format!("*{}*", escape(&headline))];
    for r in summary.reasons.iter().take(3) {
        lines.push(format!(
            "• {} × {}",
            r.count,
            escape(&truncate(&r.reason, 200))
        ));
    }
    if summary.reasons.len() > 3 {
        lines.push(format!("• +{} more reasons", summary.reasons.len() - 3));
    }
    let teams: Vec<String> = summary
        .teams
        .iter()
        .map(|t| format!("{} {}", team_name(&t.team), t.count))
        .collect();
    if !teams.is_empty() {
        lines.push(format!(
            "Teams: {}",
            escape(&capped_list(&teams, MAX_NAMES_PER_CELL))
        ));
    }
    lines.push(format!(
        "_Full digest emailed to {recipients} {}._",
        if recipients == 1 {
            "recipient"
        } else {
            "recipients"
        }
    ));
    let text = truncate(&lines.join("\n"), crate::slack::text::MAX_SECTION_TEXT);
    SlackMessage {
        // Slack parses the fallback as mrkdwn too.
        text: truncate(&escape(&headline), crate::slack::text::MAX_FALLBACK_TEXT),
        blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})],
    }
}

#[cfg(test)]
mod tests;
