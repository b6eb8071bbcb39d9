//! Medicine packs at the counter: the GS1 DataMatrix (or GS1-128) the Falsified Medicines
//! Directive puts on every pack, read by the barcode crate's one GS1 parser, becomes the
//! `supplied` record of a dispense line (GTIN, batch, expiry, serial). An expired pack is
//! refused here, before anything is queued, as the centre would refuse it.

use chrono::{Datelike, NaiveDate};
use prescrypt_barcode::gs1::ElementString;
use serde_json::{Value, json};

/// What a pack's code says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackScan {
    pub gtin: String,
    pub batch: Option<String>,
    pub expiry: Option<NaiveDate>,
    pub serial: Option<String>,
}

impl PackScan {
    /// Parses a pack code as a scanner sends it (`]d2` or `]C1` AIM prefix, FNC1 as GS) or in
    /// its human-readable form `(01)…(17)…(10)…`; `today` decides the century of the expiry.
    pub fn parse(text: &str, today: NaiveDate) -> Result<Self, String> {
        let text = text.trim_end_matches(['\r', '\n']);
        let parsed = if text.starts_with('(') {
            ElementString::parse_bracketed(text)
        } else {
            ElementString::parse(text)
        }
        .map_err(|e| format!("not a medicine pack code: {e}"))?;
        let pack = parsed
            .pack()
            .ok_or("a GS1 code without a GTIN (AI 01) is not a medicine pack")?;
        let current_year = u16::try_from(today.year()).unwrap_or(u16::MAX);
        let expiry = pack
            .expiry
            .map(|date| {
                let (year, month, day) = date.resolve(current_year);
                NaiveDate::from_ymd_opt(year.into(), month.into(), day.into())
                    .ok_or_else(|| format!("expiry {year}-{month:02}-{day:02} is not a date"))
            })
            .transpose()?;
        Ok(Self {
            gtin: pack.gtin.to_owned(),
            batch: pack.batch.map(str::to_owned),
            expiry,
            serial: pack.serial.map(str::to_owned),
        })
    }

    /// Whether the pack is past its expiry date on `today`.
    pub fn expired(&self, today: NaiveDate) -> bool {
        self.expiry.is_some_and(|expiry| expiry < today)
    }

    /// The dispense line's `supplied` object.
    pub fn supplied(&self) -> Value {
        let mut supplied = json!({"gtin": self.gtin});
        if let Some(batch) = &self.batch {
            supplied["batch"] = json!(batch);
        }
        if let Some(expiry) = self.expiry {
            supplied["expiry"] = json!(expiry.to_string());
        }
        if let Some(serial) = &self.serial {
            supplied["serial"] = json!(serial);
        }
        supplied
    }

    /// One line for the counter: `GTIN …, batch …, expires …, serial …`.
    pub fn describe(&self) -> String {
        let mut text = format!("GTIN {}", self.gtin);
        if let Some(batch) = &self.batch {
            text.push_str(&format!(", batch {}", crate::terminal::safe(batch)));
        }
        if let Some(expiry) = self.expiry {
            text.push_str(&format!(", expires {expiry}"));
        }
        if let Some(serial) = &self.serial {
            text.push_str(&format!(", serial {}", crate::terminal::safe(serial)));
        }
        text
    }
}

/// Checks a scanned pack for a dispense: refuses an expired one with a warning the pharmacist
/// can act on.
pub fn usable(text: &str, today: NaiveDate) -> Result<PackScan, String> {
    let pack = PackScan::parse(text, today)?;
    match pack.expiry {
        Some(expiry) if pack.expired(today) => Err(format!(
            "EXPIRED PACK: {} expired on {expiry}; do not hand it over",
            pack.describe()
        )),
        _ => Ok(pack),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    #[test]
    fn a_scanned_pack_becomes_the_supplied_record() {
        let pack =
            PackScan::parse("]d201095011015300031727010010AB-12\u{1d}21SN1", today()).unwrap();
        assert_eq!(
            pack.supplied(),
            json!({"gtin": "09501101530003", "batch": "AB-12", "expiry": "2027-01-31",
                   "serial": "SN1"})
        );
        let bracketed = PackScan::parse("(01)09501101530003(17)261231(10)B7", today()).unwrap();
        assert_eq!(bracketed.expiry, NaiveDate::from_ymd_opt(2026, 12, 31));
    }

    #[test]
    fn bad_and_expired_packs_are_refused_with_a_reason() {
        let wrong_check = PackScan::parse("]d20109501101530004", today()).unwrap_err();
        assert!(wrong_check.contains("check digit"), "{wrong_check}");
        let no_gtin = PackScan::parse("]d210AB12", today()).unwrap_err();
        assert!(no_gtin.contains("GTIN"), "{no_gtin}");
        let expired = usable("]d201095011015300031710010010OLD", today()).unwrap_err();
        assert!(expired.contains("EXPIRED PACK"), "{expired}");
        assert!(usable("]d2010950110153000317301231", today()).is_ok());
    }
}
