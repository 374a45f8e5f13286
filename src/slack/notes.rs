//! Short thread notes about an alert's message: reminders while it keeps firing, and the
//! notes of a snooze. Pure text (mrkdwn); every piece that came from AWS or Slack is escaped.

use chrono::{DateTime, Duration, Utc};

use super::text::{MAX_FALLBACK_TEXT, escape, link, slack_date, truncate, user_mention};

/// A duration as people say it: `45 min`, `3 h 20 min`, `2 d 4 h` (two units at most; under a
/// minute is `less than a minute`).
pub fn human_duration(duration: Duration) -> String {
    let minutes = duration.num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, mins) {
        (0, 0, 0) => "less than a minute".to_string(),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// [`human_duration`] of a `std` duration (an outage, a tolerance).
pub fn human_std_duration(duration: std::time::Duration) -> String {
    human_duration(Duration::from_std(duration).unwrap_or(Duration::MAX))
}

/// The reminder of an alert still firing: how long it has been firing, its title, and a link
/// to its first post (when Slack gave one).
pub fn render_reminder(
    title: Option<&str>,
    firing_for: Duration,
    permalink: Option<&str>,
) -> String {
    let mut text = format!(
        ":repeat: *Still firing* after {}",
        human_duration(firing_for)
    );
    if let Some(title) = title.filter(|t| !t.trim().is_empty()) {
        text.push_str(": ");
        text.push_str(&escape(title));
    }
    if let Some(permalink) = permalink {
        text.push_str(" — ");
        text.push_str(&link(permalink, "first post"));
    }
    truncate(&text, MAX_FALLBACK_TEXT)
}

/// The thread note of a new snooze: who, for how long, until when.
pub fn render_snoozed(by: &str, choice: &str, until: DateTime<Utc>) -> String {
    let text = format!(
        ":zzz: Snoozed {} by {} (until {}). New alerts of this problem are counted, not posted; digests still list them.",
        snoozed_for(choice),
        user_mention(by),
        slack_date(until)
    );
    truncate(&text, MAX_FALLBACK_TEXT)
}

/// The thread note of a snooze's end: how many alerts it held back.
pub fn render_snooze_ended(by: &str, suppressed: usize) -> String {
    let held = match suppressed {
        0 => "no alert was suppressed".to_string(),
        1 => "1 alert was suppressed".to_string(),
        n => format!("{n} alerts were suppressed"),
    };
    format!(
        ":alarm_clock: The snooze by {} ended: {held}.",
        user_mention(by)
    )
}

/// "for 4 h" or "until tomorrow 09:00".
fn snoozed_for(choice: &str) -> String {
    let choice = escape(choice);
    if choice.starts_with("until") {
        choice
    } else {
        format!("for {choice}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        let cases = [
            (Duration::seconds(30), "less than a minute"),
            (Duration::minutes(45), "45 min"),
            (Duration::minutes(120), "2 h"),
            (Duration::minutes(200), "3 h 20 min"),
            (Duration::minutes(2 * 1440 + 4 * 60 + 7), "2 d 4 h"),
            (Duration::minutes(1440 + 5), "1 d"),
            (Duration::minutes(-5), "less than a minute"),
        ];
        for (duration, expected) in cases {
            assert_eq!(human_duration(duration), expected);
        }
    }

    #[test]
    fn a_reminder_says_how_long_escapes_the_title_and_links_the_first_post() {
        let text = render_reminder(
            Some("CPU <!channel> & high"),
            Duration::minutes(200),
            Some("https://team.slack.com/archives/C1/p1700000000000100"),
        );
        assert_eq!(
            text,
            ":repeat: *Still firing* after 3 h 20 min: CPU &lt;!channel&gt; &amp; high — \
             <https://team.slack.com/archives/C1/p1700000000000100|first post>"
        );
        assert_eq!(
            render_reminder(None, Duration::minutes(60), None),
            ":repeat: *Still firing* after 1 h"
        );
    }

    #[test]
    fn snooze_notes_name_who_how_long_and_how_many() {
        let until = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let text = render_snoozed("U0ALICE", "4 h", until);
        assert!(
            text.starts_with(":zzz: Snoozed for 4 h by <@U0ALICE> (until <!date^1700000000^"),
            "{text}"
        );
        assert!(
            render_snoozed("U1", "until tomorrow 09:00", until)
                .contains("Snoozed until tomorrow 09:00 by")
        );
        assert!(render_snoozed("<!channel>", "1 h", until).contains("by &lt;!channel&gt;"));
        assert_eq!(
            render_snooze_ended("U0ALICE", 3),
            ":alarm_clock: The snooze by <@U0ALICE> ended: 3 alerts were suppressed."
        );
        assert!(render_snooze_ended("U1", 0).ends_with("no alert was suppressed."));
    }
}
