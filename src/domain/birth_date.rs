//! A patient's birth date: strictly `YYYY-MM-DD`, from 1870 (older than anyone alive) to today.

use chrono::NaiveDate;

/// The earliest birth date accepted.
pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1870, 1, 1) {
    Some(date) => date,
    None => panic!("1870-01-01 is a date"),
};

/// Why a birth date is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BirthDateError {
    #[error("a date as YYYY-MM-DD (four-digit year, two-digit month and day)")]
    Format,
    #[error("the birth date is before 1870-01-01")]
    TooEarly,
    #[error("the birth date is in the future")]
    Future,
}

/// Parses `YYYY-MM-DD` exactly (no sign, no single-digit month or day, no spaces) and checks the
/// date lies between [`EARLIEST`] and `today`.
pub fn parse(text: &str, today: NaiveDate) -> Result<NaiveDate, BirthDateError> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(BirthDateError::Format);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| BirthDateError::Format)?;
    if date < EARLIEST {
        Err(BirthDateError::TooEarly)
    } else if date > today {
        Err(BirthDateError::Future)
    } else {
        Ok(date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn strict_shape() {
        for bad in [
            "+1970-01-31",
            "1970-1-31",
            "1970-01-1",
            " 1970-01-31",
            "1970-01-31 ",
            "19700131",
            "31/01/1970",
            "1970-02-30",
            "1970-13-01",
            "1970-01-3a",
            "",
        ] {
            assert_eq!(parse(bad, today()), Err(BirthDateError::Format), "{bad:?}");
        }
        assert_eq!(
            parse("1970-01-31", today()),
            Ok(NaiveDate::from_ymd_opt(1970, 1, 31).unwrap())
        );
        assert!(parse("2000-02-29", today()).is_ok());
    }

    #[test]
    fn plausible_range() {
        assert_eq!(parse("0001-01-01", today()), Err(BirthDateError::TooEarly));
        assert_eq!(parse("1869-12-31", today()), Err(BirthDateError::TooEarly));
        assert!(parse("1870-01-01", today()).is_ok());
        assert!(parse("2026-11-25", today()).is_ok());
        assert_eq!(parse("2026-11-26", today()), Err(BirthDateError::Future));
    }
}
