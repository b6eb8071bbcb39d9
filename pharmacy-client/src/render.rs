//! How the client shows the contract's views at the counter and on the command line.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use prescrypt_barcode::NhsNumber;
use prescrypt_contract::quantity::{Decimal, QuantityText};
use prescrypt_contract::views::{ItemView, PrescriptionView};
use prescrypt_contract::{Coded, ItemStatus};

/// `Display (code)`, or the bare code when the centre sent no display text.
pub fn label(coded: &Coded) -> String {
    if coded.display.is_empty() {
        coded.code.clone()
    } else {
        format!("{} ({})", coded.display, coded.code)
    }
}

/// Line-item statuses after which nothing more is dispensed (fully dispensed, not dispensed,
/// cancelled, expired).
pub fn is_settled(item: &ItemView) -> bool {
    matches!(
        ItemStatus::parse(&item.status.code),
        Some(
            ItemStatus::FullyDispensed
                | ItemStatus::NotDispensed
                | ItemStatus::Cancelled
                | ItemStatus::Expired
        )
    )
}

/// A quantity as it is written on the wire (`32.0`, `2.5`): exact, since a quantity has at most
/// 10 significant digits.
pub fn number(value: Decimal) -> String {
    serde_json::to_value(QuantityText::from(value))
        .map_or_else(|_| value.to_string(), |v| v.to_string())
}

/// A quantity for a request body: a JSON number with exactly the decimal's digits (`14`, `2.5`).
pub fn quantity_json(value: Decimal) -> serde_json::Value {
    serde_json::from_str(&value.normalize().to_string()).unwrap_or(serde_json::Value::Null)
}

/// A time as it was written on the wire (RFC 3339, UTC, `Z`).
pub fn time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The NHS number grouped 3-3-4, or as sent if it does not check.
pub fn nhs_number(text: &str) -> String {
    NhsNumber::parse(text)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| text.to_owned())
}

/// Human-readable summary for the counter: patient, NHS number 3-3-4, items, prescriber, dates.
pub fn prescription(p: &PrescriptionView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Prescription {}  {}", p.id, label(&p.status));
    if p.pending_cancellation {
        let _ = writeln!(
            out,
            "  !! The prescriber has asked to cancel this prescription: do not dispense."
        );
    }
    let _ = write!(
        out,
        "Patient    {}  NHS {}",
        p.patient.name,
        nhs_number(&p.patient.nhs_number)
    );
    let _ = write!(out, "  born {}", p.patient.birth_date);
    out.push('\n');
    let _ = writeln!(
        out,
        "Prescriber {} ({})  {}, issue {} of {}",
        p.prescriber.id,
        p.prescriber.org,
        label(&p.treatment_type),
        p.issue_number,
        p.issue_count
    );
    if let Some(schedule) = p.controlled_drug_schedule {
        let _ = writeln!(out, "Controlled drug: schedule {schedule}");
    }
    let _ = writeln!(
        out,
        "Created    {}  Expires {}",
        time(&p.created_at),
        time(&p.expires_at)
    );
    if let Some(dispenser) = &p.dispenser {
        let _ = writeln!(out, "Dispenser  {dispenser}");
    }
    out.push_str("Items\n");
    for item in &p.items {
        let _ = writeln!(
            out,
            "  {}. {} — {} {} — {}  [{}{}]",
            item.line,
            item.display,
            number(item.quantity),
            item.unit,
            item.dosage,
            label(&item.status),
            if item.dispensed_quantity.is_zero() {
                String::new()
            } else {
                format!(", {} given", number(item.dispensed_quantity))
            }
        );
    }
    out
}
