//! When the issues of a repeat-dispensing (eRD, treatment type 0003) prescription become
//! releasable, and when a future-dated prescription does: the Spine's rules (eps-spine-shared
//! `RepeatDispenseRecord`, `PrescriptionRecord.release_next_instance` and
//! `_calculate_nominated_download_date`; see docs/service.md "Lifecycle").

use chrono::{Months, NaiveDate, NaiveDateTime};

use super::Status;

/// The dispensing interval when the prescriber gives none (EPS `DEFAULT_DAYSSUPPLY`).
pub const DEFAULT_DAYS_SUPPLY: i32 = 28;

/// Days before its due date that an issue is offered for nominated download
/// (EPS `NOMINATED_DOWNLOAD_LEAD_DAYS`).
pub const NOMINATED_DOWNLOAD_LEAD_DAYS: i64 = 7;

/// Most issues of one repeat authorisation.
pub const MAX_ISSUES: i32 = 99;

/// Most days between two issues.
pub const MAX_DAYS_SUPPLY: i32 = 366;

/// The nominated download date of issue `issue` (from 1) of a prescription prescribed on
/// `prescribed`: `prescribed + days_supply × (issue − 1) − 7 days`. It follows the prescribing
/// date, not the previous dispense, so a late dispense does not push every later issue back.
pub fn nominated_download_date(prescribed: NaiveDate, days_supply: i32, issue: i32) -> NaiveDate {
    let days = i64::from(days_supply) * i64::from(issue.max(1) - 1) - NOMINATED_DOWNLOAD_LEAD_DAYS;
    prescribed
        .checked_add_signed(chrono::Duration::days(days))
        .unwrap_or(NaiveDate::MAX)
}

/// What the completion (dispensed or not dispensed) of issue `issue_number` on `today` does to
/// the next issue: `None` after the last; else whether it is due at once (To Be Dispensed) and
/// the start of its nominated download date. EPS: Awaiting Release Ready while the nominated
/// download date is today or later, To Be Dispensed when it has passed.
pub fn next_issue(
    prescribed: NaiveDate,
    days_supply: i32,
    issue_number: i32,
    issue_count: i32,
    today: NaiveDate,
) -> Option<NextIssue> {
    (issue_number < issue_count).then(|| {
        let download = nominated_download_date(prescribed, days_supply, issue_number + 1);
        NextIssue {
            due: download < today,
            ready_at: download.and_time(chrono::NaiveTime::MIN),
        }
    })
}

/// See [`next_issue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextIssue {
    pub due: bool,
    pub ready_at: NaiveDateTime,
}

/// The status a new prescription starts in: future-dated (9001) while its start date is ahead,
/// else To Be Dispensed; later issues of a repeat-dispensing prescription are future instances
/// (9000).
pub fn initial_status(
    issue_number: i32,
    start_date: Option<NaiveDate>,
    today: NaiveDate,
) -> Status {
    if issue_number > 1 {
        Status::RepeatDispenseFutureInstance
    } else if start_date.is_some_and(|start| start > today) {
        Status::FutureDated
    } else {
        Status::ToBeDispensed
    }
}

/// A repeat-dispensing batch is valid for 12 months from the prescribing date (EPS
/// `repeatDispenseExpiryPeriod`, which EPS applies to the issues after the first; here one
/// signature carries one expiry for every issue, see docs/service.md).
pub fn later_issue_expiry(prescribed: NaiveDateTime) -> NaiveDateTime {
    prescribed
        .checked_add_months(Months::new(12))
        .unwrap_or(NaiveDateTime::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_nominated_download_date_follows_the_prescribing_date() {
        let prescribed = day(2027, 1, 1);
        assert_eq!(nominated_download_date(prescribed, 28, 2), day(2027, 1, 22));
        assert_eq!(nominated_download_date(prescribed, 28, 3), day(2027, 2, 19));
        assert_eq!(nominated_download_date(prescribed, 56, 2), day(2027, 2, 19));
    }

    #[test]
    fn the_next_issue_waits_for_its_date_or_is_due_at_once() {
        let prescribed = day(2027, 1, 1);
        let early = next_issue(prescribed, 28, 1, 6, day(2027, 1, 5)).unwrap();
        assert!(!early.due);
        assert_eq!(
            early.ready_at,
            day(2027, 1, 22).and_hms_opt(0, 0, 0).unwrap()
        );
        // On the nominated download date itself the issue still waits (EPS: date >= today).
        assert!(
            !next_issue(prescribed, 28, 1, 6, day(2027, 1, 22))
                .unwrap()
                .due
        );
        assert!(
            next_issue(prescribed, 28, 1, 6, day(2027, 1, 23))
                .unwrap()
                .due
        );
        assert_eq!(next_issue(prescribed, 28, 6, 6, day(2027, 6, 1)), None);
    }

    #[test]
    fn only_the_first_issue_starts_releasable_and_only_from_its_start_date() {
        let today = day(2027, 1, 1);
        assert_eq!(initial_status(1, None, today), Status::ToBeDispensed);
        assert_eq!(initial_status(1, Some(today), today), Status::ToBeDispensed);
        assert_eq!(
            initial_status(1, Some(day(2027, 1, 2)), today),
            Status::FutureDated
        );
        assert_eq!(
            initial_status(2, None, today),
            Status::RepeatDispenseFutureInstance
        );
    }

    #[test]
    fn later_issues_are_valid_for_a_year() {
        let prescribed = day(2027, 1, 31).and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(
            later_issue_expiry(prescribed),
            day(2028, 1, 31).and_hms_opt(9, 0, 0).unwrap()
        );
    }
}
