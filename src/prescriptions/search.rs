//! `GET /api/v1/prescriptions`: the tracker search. Filters by patient, status and creation
//! date, paged newest first by an opaque keyset cursor over `(created_at, uuid)`.
//!
//! Who sees what: an administrator every prescription; anyone else what their organisation
//! issued (`prescriber_org`) or holds or ever held (every release records its organisation in
//! `prescription_holders`, so a pharmacy still finds what it returned or dispensed and claimed).
//! Each search is audited with its query, and each prescription shown as a read of it.
//! Statuses are as stored: the expiry sweep brings prescriptions whose time is up to Expired.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use prescrypt_barcode::NhsNumber;
use prescrypt_contract::limits::{SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX};
use prescrypt_contract::views::SearchPage;
use serde::{Deserialize, Serialize};

use super::{record_read, with_items};
use crate::audit;
use crate::auth::{Principal, Role};
use crate::domain::Status;
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::prescriptions::{self as rows, Search, SearchScope};

/// The search as asked (every parameter optional); [`validate`] checks it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The patient's NHS number (10 digits, Modulus 11; spaces allowed).
    pub nhs_number: Option<String>,
    /// A prescription status code, e.g. `0001`.
    pub status: Option<String>,
    /// Created on or after this date (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// Created on or before this date (`YYYY-MM-DD`, UTC).
    pub to: Option<String>,
    /// `next_cursor` of the previous page (same filters).
    pub cursor: Option<String>,
    /// Prescriptions per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// A search checked and ready to run, with what the audit entry records of it.
#[derive(Debug, Clone)]
pub struct ValidSearch {
    search: Search,
    query: SearchQuery,
}

fn date_field(text: &str, field: &str) -> Result<NaiveDate, AppError> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or_else(|| AppError::field(field, format!("{field}: a date YYYY-MM-DD")))
}

const CURSOR_VERSION: &str = "c1";

/// The cursor after `row`: opaque to clients (base64url of the version, `created_at` in
/// microseconds and the uuid).
fn cursor_after(created_at: NaiveDateTime, uuid: &str) -> String {
    let micros = created_at.and_utc().timestamp_micros();
    data_encoding::BASE64URL_NOPAD.encode(format!("{CURSOR_VERSION}:{micros}:{uuid}").as_bytes())
}

fn parse_cursor(text: &str) -> Result<(NaiveDateTime, String), AppError> {
    let bad = || AppError::field("cursor", "cursor: not a cursor this service gave out");
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(text.trim().as_bytes())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ':');
    let (Some(CURSOR_VERSION), Some(micros), Some(uuid)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?
        .naive_utc();
    let uuid = uuid::Uuid::parse_str(uuid).map_err(|_| bad())?;
    Ok((created_at, uuid.to_string()))
}

/// Checks every filter (400 naming the parameter at fault) and decides the caller's scope.
pub fn validate(who: &Principal, query: SearchQuery) -> Result<ValidSearch, AppError> {
    let nhs_number = query
        .nhs_number
        .as_deref()
        .map(|text| {
            NhsNumber::parse(text.trim())
                .map(|n| n.digits().to_owned())
                .map_err(|e| AppError::invalid("invalid-nhs-number", "nhs_number", e.to_string()))
        })
        .transpose()?;
    let status = query
        .status
        .as_deref()
        .map(|code| {
            Status::parse(code.trim())
                .ok_or_else(|| AppError::field("status", "status: a prescription status code"))
        })
        .transpose()?;
    let from = query
        .from
        .as_deref()
        .map(|text| date_field(text, "from"))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|text| date_field(text, "to"))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(AppError::field("to", "to: on or after from"));
    }
    let limit = match query.limit.as_deref() {
        None => SEARCH_PAGE_DEFAULT,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=SEARCH_PAGE_MAX).contains(n))
            .ok_or_else(|| AppError::field("limit", format!("limit: 1 to {SEARCH_PAGE_MAX}")))?,
    };
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let scope = if who.role == Role::Admin {
        SearchScope::All
    } else {
        SearchScope::Org(who.org.clone())
    };
    let search = Search {
        scope,
        nhs_number,
        status,
        from: from.map(NaiveDate::and_time_midnight),
        before: to
            .and_then(|to| to.succ_opt())
            .map(NaiveDate::and_time_midnight),
        after,
        // One more than a page tells whether there is a next page.
        limit: i64::try_from(limit + 1).unwrap_or(i64::MAX),
    };
    Ok(ValidSearch { search, query })
}

trait Midnight {
    fn and_time_midnight(self) -> NaiveDateTime;
}

impl Midnight for NaiveDate {
    fn and_time_midnight(self) -> NaiveDateTime {
        self.and_time(chrono::NaiveTime::MIN)
    }
}

/// Runs a checked search and audits it with its query (the audit log is internal).
pub fn search(
    conn: &mut DbConnection,
    who: &Principal,
    valid: &ValidSearch,
    at: NaiveDateTime,
) -> Result<SearchPage, AppError> {
    let mut found = rows::search(conn, &valid.search)?;
    let page = usize::try_from(valid.search.limit - 1).unwrap_or(usize::MAX);
    let more = found.len() > page;
    found.truncate(page);
    let next_cursor = found
        .last()
        .filter(|_| more)
        .map(|row| cursor_after(row.created_at, &row.uuid));
    // The search with its query, and each prescription shown as a read of it (in its history's
    // audit, not listed, like every read). A transaction appending to several chains does so in
    // chain order (`audit::append`'s rule).
    let query = serde_json::json!({"query": valid.query, "found": found.len()});
    let mut entries: Vec<(i32, Option<&str>)> = found
        .iter()
        .map(|row| {
            (
                audit::chain_of(Some(&row.uuid), ""),
                Some(row.uuid.as_str()),
            )
        })
        .collect();
    entries.push((audit::chain_of(None, &who.org), None));
    entries.sort_by_key(|(chain, _)| *chain);
    for (_, shown) in entries {
        match shown {
            Some(uuid) => record_read(conn, who, uuid, "search-viewed", at)?,
            None => audit::append(conn, who, "searched", None, &query, at)?,
        }
    }
    let prescriptions = found
        .into_iter()
        .map(|row| with_items(conn, row).map(|loaded| loaded.view()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SearchPage {
        prescriptions,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_was_made_of() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456)
            .unwrap()
            .naive_utc();
        let uuid = uuid::Uuid::new_v4().to_string();
        assert_eq!(parse_cursor(&cursor_after(at, &uuid)).unwrap(), (at, uuid));
        for bad in ["", "abc", "YzE6eDp5", &cursor_after(at, "not-a-uuid")] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
