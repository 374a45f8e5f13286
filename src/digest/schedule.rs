//! Schedule maths of a DigestSchedule, free of I/O: parsing the cron expression the way a
//! Kubernetes CronJob reads it, the next run in its IANA zone, and the queue retention the
//! schedule needs.
//!
//! Retention covers **two runs**: an alert queued just after a run must still be queued when
//! the run after next drains, so that one missed or failed run (or leftovers beyond
//! `maxAlertsPerRun` or the drain deadline) loses nothing. That is the longest span from a run to
//! the run after next over the coming year, plus a margin (a tenth of the longest gap, at least an
//! hour) for a late start, capped at SQS's 14 days. A schedule whose span exceeds 14 days is
//! refused ([`ScheduleError::TooSparse`]). A weekly schedule in a zone without daylight saving
//! time spans exactly 14 days: accepted, with no margin left (see the README, "Digests and
//! retention"); in a zone with daylight saving the week of the autumn change is an hour longer,
//! so a weekly digest there is refused.

use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::aws::sqs::{MAX_RETENTION_SECONDS, MIN_RETENTION_SECONDS};

/// How far ahead the longest gap is looked for: a year (366 days covers leap years).
const HORIZON_DAYS: u64 = 366;
/// The smallest margin added to the longest gap.
const MIN_MARGIN_SECONDS: i64 = 3600;

/// Why a schedule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The time zone is not an IANA zone name.
    #[error("time zone {0:?} is not an IANA time zone (for example America/Los_Angeles)")]
    UnknownTimeZone(String),
    /// The expression is not a five-field cron expression Kubernetes accepts.
    #[error("schedule {schedule:?} is not a valid cron expression: {reason}")]
    InvalidCron {
        /// The expression.
        schedule: String,
        /// What is wrong.
        reason: String,
    },
    /// The schedule never runs (for example the 31st of February).
    #[error("schedule {0:?} never runs")]
    NeverRuns(String),
    /// A run and the run after next lie further apart than an SQS queue can keep messages, so
    /// one failed run would let alerts expire.
    #[error(
        "schedule {schedule:?} in {zone} leaves up to {} from a run to the run after next; the \
         queue must keep alerts that long so that one failed run loses none, but SQS keeps \
         messages at most 14 days. Run the digest at least weekly (a weekly schedule fits only in \
         a zone without daylight saving time, such as UTC) or twice a week",
        human(*span_seconds)
    )]
    TooSparse {
        /// The expression.
        schedule: String,
        /// Its time zone.
        zone: String,
        /// The longest span from a run to the run after next, in seconds (a lower bound when a
        /// run lies beyond a year).
        span_seconds: i64,
    },
}

/// A parsed schedule in its zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    /// Parses a five-field expression (or `@daily`-style alias) and an IANA zone. Croner's
    /// extensions that Kubernetes does not know (`L`, `W`, `#`, `+`, seconds, years) are refused,
    /// so that what is computed here is what the CronJob does.
    pub fn parse(expression: &str, zone: &str) -> Result<Schedule, ScheduleError> {
        let zone_parsed =
            Tz::from_str(zone).map_err(|_| ScheduleError::UnknownTimeZone(zone.to_string()))?;
        let expression = expression.trim();
        let invalid = |reason: String| ScheduleError::InvalidCron {
            schedule: expression.to_string(),
            reason,
        };
        check_kubernetes_syntax(expression).map_err(invalid)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Schedule {
            expression: expression.to_string(),
            cron,
            zone: zone_parsed,
        })
    }

    /// The first run strictly after `after`.
    pub fn next_run(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.zone), false)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ScheduleError::NeverRuns(self.expression.clone()))
    }

    /// The longest time between two consecutive runs from `from` over the next year, in seconds.
    /// A schedule with fewer than two runs in that year reports the whole year (a lower bound).
    ///
    /// In a five-field cron expression, whether a day runs does not depend on the time of day,
    /// and the times of day are the same on every day that runs. So the gaps are: the gaps within
    /// one ordinary day, those within days whose UTC offset changes (daylight saving), and the
    /// gaps from the last run of a day to the first run of the next day that runs; a walk over
    /// the days of the year finds them with a few cron look-ups per day.
    pub fn longest_gap_seconds(&self, from: DateTime<Utc>) -> Result<i64, ScheduleError> {
        let start = from.with_timezone(&self.zone).date_naive();
        let mut longest = 0i64;
        let mut previous_last: Option<DateTime<Tz>> = None;
        let mut runs_seen = 0usize;
        let mut ordinary_day_measured = false;
        for offset in 0..=HORIZON_DAYS {
            let Some(day) = start.checked_add_days(Days::new(offset)) else {
                break;
            };
            let (Some(begin), Some(end)) =
                (self.day_start(Some(day)), self.day_start(day.succ_opt()))
            else {
                continue;
            };
            let first = self.occurrence_at_or_after(&begin)?;
            let Some(first) = first.filter(|f| *f < end) else {
                continue;
            };
            let last = self
                .cron
                .find_previous_occurrence(&end, false)
                .map_err(|_| ScheduleError::NeverRuns(self.expression.clone()))?;
            if let Some(previous) = previous_last {
                longest = longest.max((first - previous).num_seconds());
            }
            let offset_changes = (end - begin) != TimeDelta::days(1);
            if offset_changes || !ordinary_day_measured {
                longest = longest.max(self.longest_within(first, last));
                ordinary_day_measured |= !offset_changes;
            }
            runs_seen += 1;
            previous_last = Some(last);
        }
        if runs_seen == 0 {
            return Err(ScheduleError::NeverRuns(self.expression.clone()));
        }
        if runs_seen == 1 {
            // One day with runs in a year: at least a year lies between two such days.
            longest = longest.max(TimeDelta::days(HORIZON_DAYS as i64).num_seconds());
        }
        Ok(longest)
    }

    /// The retention the queue needs, in seconds, so that an alert outlives one failed run: the
    /// longest span from a run to the run after next plus a margin of a tenth of the longest gap
    /// (at least an hour), capped at 14 days; [`ScheduleError::TooSparse`] when the span alone
    /// exceeds 14 days.
    pub fn retention_seconds(&self, from: DateTime<Utc>) -> Result<i32, ScheduleError> {
        let gap = self.longest_gap_seconds(from)?;
        let margin = retention_margin(gap);
        let max = i64::from(MAX_RETENTION_SECONDS);
        // Two gaps bound the span; walking the runs is needed only when that bound does not fit.
        let bound = gap.saturating_mul(2).saturating_add(margin);
        let needed = if bound <= max {
            bound
        } else {
            let span = self.longest_two_run_span_seconds(from)?;
            if span > max {
                return Err(ScheduleError::TooSparse {
                    schedule: self.expression.clone(),
                    zone: self.zone.name().to_string(),
                    span_seconds: span,
                });
            }
            span.saturating_add(margin).min(max)
        };
        Ok(i32::try_from(needed)
            .unwrap_or(MAX_RETENTION_SECONDS)
            .max(MIN_RETENTION_SECONDS))
    }

    /// The longest time from a run to the run after next, from `from` over the next year, in
    /// seconds (the whole year when fewer than three runs fall in it: a lower bound). Walks the
    /// runs one by one, so it is meant for sparse schedules (gaps of days), where it is cheap.
    pub fn longest_two_run_span_seconds(&self, from: DateTime<Utc>) -> Result<i64, ScheduleError> {
        let start = self
            .occurrence_at_or_after(&from.with_timezone(&self.zone))?
            .ok_or_else(|| ScheduleError::NeverRuns(self.expression.clone()))?;
        let horizon = start + TimeDelta::days(HORIZON_DAYS as i64);
        let year = TimeDelta::days(HORIZON_DAYS as i64).num_seconds();
        let mut runs = std::iter::once(start).chain(self.cron.iter_after(start));
        let (Some(mut before), Some(mut previous)) = (runs.next(), runs.next()) else {
            return Ok(year);
        };
        let mut longest = None;
        for run in runs {
            longest = longest.max(Some((run - before).num_seconds()));
            if run > horizon {
                break;
            }
            (before, previous) = (previous, run);
        }
        Ok(longest.unwrap_or(year))
    }

    /// The zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Local midnight of `day`, or the first instant of the day where midnight does not exist.
    fn day_start(&self, day: Option<NaiveDate>) -> Option<DateTime<Tz>> {
        let midnight = day?.and_hms_opt(0, 0, 0)?;
        // A zone may skip midnight (DST at 00:00); the day then starts an hour later.
        (0..=2).find_map(|hour| {
            self.zone
                .from_local_datetime(&(midnight + TimeDelta::hours(hour)))
                .earliest()
        })
    }

    fn occurrence_at_or_after(
        &self,
        at: &DateTime<Tz>,
    ) -> Result<Option<DateTime<Tz>>, ScheduleError> {
        match self.cron.find_next_occurrence(at, true) {
            Ok(t) => Ok(Some(t)),
            // Croner gives up after a bounded search: no run in the years ahead.
            Err(croner::errors::CronError::TimeSearchLimitExceeded) => Ok(None),
            Err(_) => Err(ScheduleError::NeverRuns(self.expression.clone())),
        }
    }

    /// The longest gap between consecutive runs from `first` to `last` (one day's runs).
    fn longest_within(&self, first: DateTime<Tz>, last: DateTime<Tz>) -> i64 {
        let mut longest = 0;
        let mut previous = first;
        for run in self.cron.iter_after(first) {
            if run > last {
                break;
            }
            longest = longest.max((run - previous).num_seconds());
            previous = run;
        }
        longest
    }
}

/// The margin added to the longest gap: a tenth of it, at least an hour.
pub fn retention_margin(gap_seconds: i64) -> i64 {
    (gap_seconds / 10).max(MIN_MARGIN_SECONDS)
}

/// Refuses what croner accepts but a Kubernetes CronJob (robfig/cron) does not: a field count
/// other than five, `TZ=` prefixes (the zone goes in `timeZone`), and `L`, `W`, `#`, `+`.
fn check_kubernetes_syntax(expression: &str) -> Result<(), String> {
    if expression.is_empty() {
        return Err("it is empty".into());
    }
    if expression.starts_with("TZ=") || expression.starts_with("CRON_TZ=") {
        return Err("set the zone in timeZone, not in the schedule".into());
    }
    if let Some(alias) = expression.strip_prefix('@') {
        return match alias.to_ascii_lowercase().as_str() {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => Err(format!("unknown alias @{alias}")),
        };
    }
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "it has {} fields; Kubernetes takes five: minute hour day-of-month month day-of-week",
            fields.len()
        ));
    }
    for field in fields {
        for atom in field.split([',', '-', '/']) {
            let ok = atom == "*"
                || atom == "?"
                || (!atom.is_empty() && atom.chars().all(|c| c.is_ascii_digit()))
                || (atom.len() == 3 && atom.chars().all(|c| c.is_ascii_alphabetic()));
            if !ok {
                return Err(format!(
                    "{field:?} uses syntax Kubernetes does not accept (only numbers, ranges, \
                     steps, lists, * and three-letter names)"
                ));
            }
        }
    }
    Ok(())
}

/// A duration for people: `13h`, `30d 1h`, `45m`.
fn human(seconds: i64) -> String {
    let days = seconds / 86_400;
    let hours = seconds % 86_400 / 3600;
    let minutes = seconds % 3600 / 60;
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if minutes > 0 || parts.is_empty() {
        parts.push(format!("{minutes}m"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn twice_daily_pacific() -> Schedule {
        Schedule::parse("0 8,20 * * *", "America/Los_Angeles").unwrap()
    }

    #[test]
    fn next_run_across_spring_forward() {
        // 2026-03-08 02:00 PST becomes 03:00 PDT (UTC-8 → UTC-7).
        let s = twice_daily_pacific();
        // Saturday 7 March, 19:59 PST.
        let first = s.next_run(utc("2026-03-08T03:59:00Z")).unwrap();
        assert_eq!(first, utc("2026-03-08T04:00:00Z"), "20:00 PST");
        let second = s.next_run(first).unwrap();
        assert_eq!(second, utc("2026-03-08T15:00:00Z"), "08:00 PDT");
        let third = s.next_run(second).unwrap();
        assert_eq!(third, utc("2026-03-09T03:00:00Z"), "20:00 PDT");
    }

    #[test]
    fn next_run_across_fall_back() {
        // 2026-11-01 02:00 PDT becomes 01:00 PST (UTC-7 → UTC-8).
        let s = twice_daily_pacific();
        let first = s.next_run(utc("2026-10-31T15:30:00Z")).unwrap();
        assert_eq!(first, utc("2026-11-01T03:00:00Z"), "20:00 PDT");
        let second = s.next_run(first).unwrap();
        assert_eq!(second, utc("2026-11-01T16:00:00Z"), "08:00 PST");
        let third = s.next_run(second).unwrap();
        assert_eq!(third, utc("2026-11-02T04:00:00Z"), "20:00 PST");
    }

    #[test]
    fn longest_gap_of_twice_daily_is_the_fall_back_night() {
        // Over a year in Los Angeles the 20:00 → 08:00 gap is 12 h, 11 h on the spring-forward
        // night and 13 h on the fall-back night.
        let s = twice_daily_pacific();
        let gap = s.longest_gap_seconds(utc("2026-01-15T00:00:00Z")).unwrap();
        assert_eq!(gap, 13 * 3600);
        let retention = s.retention_seconds(utc("2026-01-15T00:00:00Z")).unwrap();
        assert_eq!(
            retention,
            2 * 13 * 3600 + 13 * 360,
            "two runs (bounded by twice the longest gap) plus a tenth of the gap"
        );
        // In UTC there is no such night.
        let utc_schedule = Schedule::parse("0 8,20 * * *", "UTC").unwrap();
        assert_eq!(
            utc_schedule
                .longest_gap_seconds(utc("2026-01-15T00:00:00Z"))
                .unwrap(),
            12 * 3600
        );
    }

    #[test]
    fn within_day_and_weekly_gaps() {
        let from = utc("2026-01-15T00:00:00Z");
        let every_ten = Schedule::parse("*/10 * * * *", "Europe/Berlin").unwrap();
        // On the spring-forward day 01:50 → 03:00 is 10 minutes of real time; on the fall-back
        // day the repeated hour makes no longer gap either.
        assert_eq!(every_ten.longest_gap_seconds(from).unwrap(), 600);
        assert_eq!(
            every_ten.retention_seconds(from).unwrap(),
            2 * 600 + 3600,
            "two runs and at least an hour of margin"
        );
        let weekdays = Schedule::parse("0 9 * * MON-FRI", "UTC").unwrap();
        assert_eq!(
            weekdays.longest_gap_seconds(from).unwrap(),
            3 * 86_400,
            "Friday 09:00 → Monday 09:00"
        );
        let weekly = Schedule::parse("0 8 * * 1", "America/Los_Angeles").unwrap();
        assert_eq!(
            weekly.longest_gap_seconds(from).unwrap(),
            7 * 86_400 + 3600,
            "the week that contains the fall-back night"
        );
        assert!(
            matches!(
                weekly.retention_seconds(from),
                Err(ScheduleError::TooSparse {
                    span_seconds: 1_213_200,
                    ..
                })
            ),
            "two runs span 14 d 1 h across the fall-back week: more than SQS keeps"
        );
        let weekly_utc = Schedule::parse("0 8 * * 1", "UTC").unwrap();
        assert_eq!(
            weekly_utc.retention_seconds(from).unwrap(),
            MAX_RETENTION_SECONDS,
            "exactly two weeks: accepted, with no margin left"
        );
    }

    /// The case on a simulated clock: twice daily in Los Angeles, an alert queued 11 h
    /// before a run that fails must still be queued when the next run drains. Checked for every
    /// run of a year (daylight saving nights included) and the worst arrival: right after the
    /// run before the failed one.
    #[test]
    fn an_alert_queued_before_a_failed_run_is_kept_for_the_next_run() {
        let s = twice_daily_pacific();
        let from = utc("2026-01-15T00:00:00Z");
        let retention = TimeDelta::seconds(i64::from(s.retention_seconds(from).unwrap()));
        let mut previous = s.next_run(from).unwrap();
        let mut failed = s.next_run(previous).unwrap();
        let mut checked = 0;
        while failed < from + TimeDelta::days(366) {
            let next = s.next_run(failed).unwrap();
            for queued in [
                failed - TimeDelta::hours(11),
                previous + TimeDelta::seconds(1),
            ] {
                let age_at_next_run = next - queued;
                assert!(
                    age_at_next_run < retention,
                    "an alert queued at {queued} would expire ({age_at_next_run} old) before the \
                     run at {next} that follows the failed run at {failed}"
                );
            }
            checked += 1;
            (previous, failed) = (failed, next);
        }
        assert!(checked > 700, "{checked} runs");
    }

    #[test]
    fn an_every_minute_schedule_is_measured_without_walking_every_run() {
        let s = Schedule::parse("* * * * *", "America/Los_Angeles").unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            s.longest_gap_seconds(utc("2026-01-15T00:00:00Z")).unwrap(),
            60
        );
        // A year of minutes is 525,600 runs; the day walk needs a few thousand look-ups.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_monthly_schedule_is_too_sparse() {
        let s = Schedule::parse("0 8 1 * *", "America/Los_Angeles").unwrap();
        let err = s
            .retention_seconds(utc("2026-01-15T00:00:00Z"))
            .unwrap_err();
        match &err {
            ScheduleError::TooSparse { span_seconds, .. } => {
                assert!(*span_seconds >= 59 * 86_400, "{span_seconds}");
                assert!(*span_seconds <= 62 * 86_400 + 3600, "{span_seconds}");
            }
            other => panic!("expected TooSparse, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains("62d"), "{message}");
        assert!(message.contains("14 days"), "{message}");
    }

    #[test]
    fn a_yearly_schedule_is_too_sparse_too() {
        let s = Schedule::parse("@yearly", "UTC").unwrap();
        assert!(matches!(
            s.retention_seconds(utc("2026-01-15T00:00:00Z")),
            Err(ScheduleError::TooSparse { .. })
        ));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            Schedule::parse("0 8 * * *", "Mars/Olympus_Mons"),
            Err(ScheduleError::UnknownTimeZone(_))
        ));
        for bad in [
            "",
            "0 8 * *",
            "0 0 8 * * *",
            "0 8 L * *",
            "0 8 * * 5#2",
            "0 8 15W * *",
            "61 8 * * *",
            "TZ=UTC 0 8 * * *",
            "@every 5m",
        ] {
            assert!(
                matches!(
                    Schedule::parse(bad, "UTC"),
                    Err(ScheduleError::InvalidCron { .. })
                ),
                "{bad:?} accepted"
            );
        }
        assert!(Schedule::parse("0 8 * JAN-DEC MON,WED", "UTC").is_ok());
        assert!(Schedule::parse("@daily", "UTC").is_ok());
        assert!(matches!(
            Schedule::parse("0 8 31 2 *", "UTC")
                .unwrap()
                .next_run(utc("2026-01-01T00:00:00Z")),
            Err(ScheduleError::NeverRuns(_))
        ));
    }
}
