//! THE clock of the service: every time the service records or decides by (creation, expiry,
//! audit entries, idempotency records, checkpoints) is read from one [`Clock`], held in the app
//! state and shared by every worker. In production it is the system clock; `serve --dev` lets an
//! administrator move it forward (`POST /api/v1/dev/clock`) so that tests and demonstrations can
//! watch prescriptions expire without waiting months.
//!
//! Not on this clock, on purpose: log timestamps, the bearer-token checks (`exp`, `nbf`, `iat`
//! are the identity provider's real time) and the guards' rate and time limits (monotonic
//! `Instant`s).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound, Utc};

/// The most one `advance` may move the clock: 10 years (of 366 days).
pub const MAX_ADVANCE_SECONDS: i64 = 10 * 366 * 24 * 60 * 60;

/// The most the clock may be ahead of the system clock in all: 100 years.
pub const MAX_OFFSET_SECONDS: i64 = 10 * MAX_ADVANCE_SECONDS;

/// The system clock plus an offset that only moves forward (always 0 without `--dev`). Clones
/// share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

/// Why the clock did not move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvanceError {
    #[error("advance_seconds must be 0 to {MAX_ADVANCE_SECONDS} (time only moves forward)")]
    OutOfRange,
    #[error("the clock would be more than {MAX_OFFSET_SECONDS} s ahead of the system clock")]
    TooFarAhead,
}

impl Clock {
    /// Now, truncated to microseconds so SQLite and PostgreSQL store the same value.
    pub fn now(&self) -> NaiveDateTime {
        self.now_utc().naive_utc()
    }

    /// [`Self::now`] as a UTC time.
    pub fn now_utc(&self) -> DateTime<Utc> {
        let offset = Duration::seconds(self.offset_seconds.load(Ordering::SeqCst));
        (Utc::now() + offset).trunc_subsecs(6)
    }

    /// Today's date on this clock.
    pub fn today(&self) -> chrono::NaiveDate {
        self.now().date()
    }

    /// Moves the clock `seconds` forward (0 to [`MAX_ADVANCE_SECONDS`]); the new now.
    pub fn advance(&self, seconds: i64) -> Result<DateTime<Utc>, AdvanceError> {
        if !(0..=MAX_ADVANCE_SECONDS).contains(&seconds) {
            return Err(AdvanceError::OutOfRange);
        }
        self.offset_seconds
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                offset
                    .checked_add(seconds)
                    .filter(|total| *total <= MAX_OFFSET_SECONDS)
            })
            .map_err(|_| AdvanceError::TooFarAhead)?;
        Ok(self.now_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone_forward() {
        let clock = Clock::default();
        let shared = clock.clone();
        let before = shared.now();
        let now = clock.advance(86_400).unwrap();
        assert!(shared.now() >= before + Duration::days(1));
        assert!(now.naive_utc() >= before + Duration::days(1));
    }

    #[test]
    fn time_never_moves_back_nor_too_far() {
        let clock = Clock::default();
        assert_eq!(clock.advance(-1), Err(AdvanceError::OutOfRange));
        assert_eq!(
            clock.advance(MAX_ADVANCE_SECONDS + 1),
            Err(AdvanceError::OutOfRange)
        );
        for _ in 0..10 {
            clock.advance(MAX_ADVANCE_SECONDS).unwrap();
        }
        assert_eq!(clock.advance(1), Err(AdvanceError::TooFarAhead));
        assert!(clock.advance(0).is_ok());
    }
}
