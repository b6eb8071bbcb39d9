//! How long a prescription may be dispensed: 6 months, 28 days for Schedule 2–4 controlled drugs.

use chrono::{Duration, Months, NaiveDateTime};

/// Schedules 2, 3 and 4 have the short validity.
pub fn is_short_validity(controlled_drug_schedule: Option<u8>) -> bool {
    matches!(controlled_drug_schedule, Some(2..=4))
}

/// When a prescription made at `prescribed_at` stops being dispensable.
pub fn expires_at(
    prescribed_at: NaiveDateTime,
    controlled_drug_schedule: Option<u8>,
) -> NaiveDateTime {
    if is_short_validity(controlled_drug_schedule) {
        prescribed_at + Duration::days(28)
    } else {
        prescribed_at
            .checked_add_months(Months::new(6))
            .unwrap_or(NaiveDateTime::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .unwrap()
    }

    #[test]
    fn six_months_by_default_and_for_schedule_5() {
        assert_eq!(expires_at(at(2026, 11, 21), None), at(2027, 5, 21));
        assert_eq!(expires_at(at(2026, 8, 31), Some(5)), at(2027, 2, 28));
    }

    #[test]
    fn twenty_eight_days_for_schedules_2_to_4() {
        for schedule in 2..=4 {
            assert_eq!(
                expires_at(at(2026, 11, 21), Some(schedule)),
                at(2026, 12, 19)
            );
        }
    }
}
