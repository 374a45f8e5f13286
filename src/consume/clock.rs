//! The consumer's clock: the system's in production; tests set their own so that reminders and
//! snoozes become due without waiting.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where the consumer reads the time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}
