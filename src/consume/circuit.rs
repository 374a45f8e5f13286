//! The consumer's circuit breaker in front of Slack: pure state, the clock passed in.
//!
//! Why: every SQS receive counts towards `maxReceiveCount`, so a consumer that keeps receiving
//! while Slack is down walks every alert of the outage into the dead-letter queue within
//! minutes. Instead, the first delivery that fails transiently (5xx, timeouts, connection errors,
//! 429s outlasting the client's retries; never a refusal such as `invalid_payload`) opens the
//! circuit. While it is open the consumer receives nothing new: it holds the batch it has (its
//! visibility extended), and probes by retrying the failed delivery at a growing interval. The
//! first probe Slack accepts closes the circuit; the length of the outage is handed back, so the
//! backlog can go out as one storm summary.
//!
//! Rules:
//! - Probe delays start at `probe_initial` and double up to `probe_max`; the last one ends when
//!   the tolerance does, so the give-up comes on time.
//! - Once the circuit has been open for `tolerance`, failures are no longer held: the consumer
//!   hands messages back with their backoff as before (and `maxReceiveCount` receives later they
//!   reach the dead-letter queue, which the route reports). The circuit stays open until Slack
//!   accepts something.

use std::time::Duration;

use tokio::time::Instant;

/// What to do after a delivery failed transiently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Hold the messages and probe again after this delay.
    Hold {
        /// Wait before the next probe.
        probe_in: Duration,
        /// Whether this failure opened the circuit (log it once).
        opened: bool,
    },
    /// The outage outlasted the tolerance: release the messages with their usual backoff.
    GiveUp {
        /// How long the circuit has been open.
        open_for: Duration,
    },
}

/// The circuit's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Longest outage during which messages are held rather than handed back.
    pub tolerance: Duration,
    /// First wait before a probe.
    pub probe_initial: Duration,
    /// Longest wait between probes.
    pub probe_max: Duration,
}

/// The state of the circuit.
#[derive(Clone, Debug)]
pub struct SlackCircuit {
    settings: CircuitSettings,
    /// When the circuit opened, and how many probes failed since.
    open: Option<(Instant, u32)>,
}

impl SlackCircuit {
    /// A closed circuit.
    pub fn new(settings: CircuitSettings) -> Self {
        SlackCircuit {
            settings,
            open: None,
        }
    }

    /// Whether Slack is considered down.
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// A delivery failed transiently at `now`.
    pub fn failed(&mut self, now: Instant) -> OnFailure {
        let (since, probes) = match self.open {
            None => {
                self.open = Some((now, 0));
                (now, 0)
            }
            Some((since, probes)) => {
                let probes = probes.saturating_add(1);
                self.open = Some((since, probes));
                (since, probes)
            }
        };
        let open_for = now.saturating_duration_since(since);
        if open_for >= self.settings.tolerance {
            return OnFailure::GiveUp { open_for };
        }
        let growing = self
            .settings
            .probe_initial
            .saturating_mul(1u32 << probes.min(20))
            .min(self.settings.probe_max);
        OnFailure::Hold {
            probe_in: growing.min(self.settings.tolerance - open_for),
            opened: probes == 0,
        }
    }

    /// A delivery succeeded at `now`: closes the circuit, returning how long it was open.
    pub fn succeeded(&mut self, now: Instant) -> Option<Duration> {
        self.open
            .take()
            .map(|(since, _)| now.saturating_duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit() -> SlackCircuit {
        SlackCircuit::new(CircuitSettings {
            tolerance: Duration::from_secs(7200),
            probe_initial: Duration::from_secs(10),
            probe_max: Duration::from_secs(300),
        })
    }

    fn hold(probe_in: u64, opened: bool) -> OnFailure {
        OnFailure::Hold {
            probe_in: Duration::from_secs(probe_in),
            opened,
        }
    }

    #[test]
    fn the_first_failure_opens_and_probes_back_off_to_the_cap() {
        let mut c = circuit();
        let t0 = Instant::now();
        assert!(!c.is_open());
        assert_eq!(c.failed(t0), hold(10, true));
        assert!(c.is_open());
        let s = Duration::from_secs;
        assert_eq!(c.failed(t0 + s(10)), hold(20, false));
        assert_eq!(c.failed(t0 + s(30)), hold(40, false));
        assert_eq!(c.failed(t0 + s(70)), hold(80, false));
        assert_eq!(c.failed(t0 + s(150)), hold(160, false));
        assert_eq!(c.failed(t0 + s(310)), hold(300, false), "capped");
    }

    #[test]
    fn the_last_probe_comes_when_the_tolerance_ends_and_then_it_gives_up() {
        let mut c = circuit();
        let t0 = Instant::now();
        c.failed(t0);
        let s = Duration::from_secs;
        assert_eq!(
            c.failed(t0 + s(7190)),
            hold(10, false),
            "clipped to the tolerance"
        );
        assert_eq!(
            c.failed(t0 + s(7200)),
            OnFailure::GiveUp { open_for: s(7200) }
        );
        assert!(c.is_open(), "still open until Slack accepts something");
        assert_eq!(
            c.failed(t0 + s(7300)),
            OnFailure::GiveUp { open_for: s(7300) }
        );
    }

    #[test]
    fn success_closes_and_reports_the_outage() {
        let mut c = circuit();
        let t0 = Instant::now();
        assert_eq!(c.succeeded(t0), None, "nothing to report when closed");
        c.failed(t0);
        c.failed(t0 + Duration::from_secs(10));
        assert_eq!(
            c.succeeded(t0 + Duration::from_secs(25)),
            Some(Duration::from_secs(25))
        );
        assert!(!c.is_open());
        assert_eq!(
            c.failed(t0 + Duration::from_secs(30)),
            hold(10, true),
            "a new outage starts from the first probe delay"
        );
    }
}
