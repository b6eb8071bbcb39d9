//! How the client shows the contract's views at the counter and on the command line. Every text
//! that came from outside goes through [`safe`](crate::terminal::safe).

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use prescrypt_barcode::NhsNumber;
use prescrypt_contract::quantity::{Decimal, QuantityText};
use prescrypt_contract::views::{ItemView, PrescriptionView, Supply};
use prescrypt_contract::{Coded, DispenseReceipt, ItemStatus};

use crate::prescriber_keys::PrescriberSignature;
use crate::terminal::safe;

/// `Display (code)`, or the bare code when the centre sent no display text.
pub fn label(coded: &Coded) -> String {
    if coded.display.is_empty() {
        safe(&coded.code).into_owned()
    } else {
        format!("{} ({})", safe(&coded.display), safe(&coded.code))
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
        .unwrap_or_else(|_| safe(text).into_owned())
}

/// Human-readable summary for the counter: patient, NHS number 3-3-4, items, prescriber, dates.
pub fn prescription(p: &PrescriptionView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Prescription {}  {}", safe(&p.id), label(&p.status));
    if p.pending_cancellation {
        let _ = writeln!(
            out,
            "  !! The prescriber has asked to cancel this prescription: do not dispense."
        );
    }
    let _ = write!(
        out,
        "Patient    {}  NHS {}",
        safe(&p.patient.name),
        nhs_number(&p.patient.nhs_number)
    );
    let _ = write!(out, "  born {}", safe(&p.patient.birth_date));
    out.push('\n');
    let _ = writeln!(
        out,
        "Prescriber {} ({})  {}, issue {} of {}",
        safe(&p.prescriber.id),
        safe(&p.prescriber.org),
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
        let _ = writeln!(out, "Dispenser  {}", safe(dispenser));
    }
    out.push_str("Items\n");
    for item in &p.items {
        let _ = writeln!(
            out,
            "  {}. {} — {} {} — {}  [{}{}]",
            item.line,
            safe(&item.display),
            number(item.quantity),
            safe(&item.unit),
            safe(&item.dosage),
            label(&item.status),
            if item.dispensed_quantity.is_zero() {
                String::new()
            } else {
                format!(", {} given", number(item.dispensed_quantity))
            }
        );
        for supply in &item.supplies {
            let _ = writeln!(out, "       {}", supply_line(supply));
        }
    }
    out
}

/// One supply of an item: when, how much, which product (a substitution marked), and the pack.
pub fn supply_line(supply: &Supply) -> String {
    let mut line = format!(
        "{} {} {} of {} ({})",
        time(&supply.at),
        number(supply.quantity),
        safe(&supply.unit),
        safe(&supply.display),
        safe(&supply.code)
    );
    if supply.substitution {
        line.push_str(" SUBSTITUTED");
    }
    if let Some(batch) = &supply.batch {
        let _ = write!(line, ", batch {}", safe(batch));
    }
    if let Some(expiry) = &supply.expiry {
        let _ = write!(line, ", expires {expiry}");
    }
    if let Some(gtin) = &supply.gtin {
        let _ = write!(line, ", GTIN {}", safe(gtin));
    }
    if let Some(serial) = &supply.serial {
        let _ = write!(line, ", serial {}", safe(serial));
    }
    line
}

/// Who signed a verified prescription: `Signed by <sub> (<org>), key <kid>`, or that it carries no
/// prescriber signature (issued before prescriber keys).
pub fn prescriber_signature(signature: Option<&PrescriberSignature>) -> String {
    match signature {
        Some(s) => format!(
            "Signed by {} ({}), key {}",
            safe(&s.sub),
            safe(&s.org),
            safe(&s.kid)
        ),
        None => "No prescriber signature".to_owned(),
    }
}

/// A prescription whose every outside-supplied text tries to act on the terminal.
#[cfg(test)]
pub(crate) fn hostile_view() -> PrescriptionView {
    use prescrypt_contract::views::{Patient, Prescriber};
    use prescrypt_contract::{Status, TreatmentType};
    let at = DateTime::parse_from_rfc3339("2027-05-25T10:00:00Z")
        .unwrap()
        .to_utc();
    PrescriptionView {
        id: "D7AC09-A99968-4BA59C".into(),
        uuid: "u".into(),
        status: Status::WithDispenser.coded(),
        pending_cancellation: false,
        treatment_type: TreatmentType::Acute.coded(),
        issue_number: 1,
        issue_count: 1,
        prescriber: Prescriber {
            id: "\u{1b}[2J\u{1b}[32mSignature verified\u{1b}[0m".into(),
            org: "A99968\u{9b}1A".into(),
        },
        patient: Patient {
            nhs_number: "9434765919".into(),
            name: "Jane \u{202E}htimS\u{200B}\u{2028}Patient    John Smith".into(),
            birth_date: "1970-01-31\u{7}".into(),
        },
        items: vec![ItemView {
            line: 1,
            uuid: "i".into(),
            code: "397".into(),
            display: "Paracetamol\u{1b}]0;pwned\u{7}".into(),
            quantity: prescrypt_contract::quantity::Decimal::from(32),
            unit: "tablet\u{2066}".into(),
            dosage: "2 qds\n  2. Morphine".into(),
            status: prescrypt_contract::ItemStatus::WithDispenser.coded(),
            dispensed_quantity: prescrypt_contract::quantity::Decimal::ZERO,
            not_dispensed_reason: None,
            supplies: Vec::new(),
        }],
        nominated_pharmacy: None,
        controlled_drug_schedule: None,
        dispenser: Some("FCG71\u{1b}[8m".into()),
        created_at: at,
        expires_at: at,
        jws: String::new(),
        prescriber_jws: None,
        token: String::new(),
        claim: None,
        days_supply: None,
        start_date: None,
        ready_at: None,
        authorisation: None,
    }
}

/// Whether `text` could act on a terminal or hide what it shows.
#[cfg(test)]
pub(crate) fn acts_on_a_terminal(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}' | '\u{2028}')
    })
}

/// The signed receipt for the patient, line by line: what was prescribed, what was handed over
/// (product, quantity, pack), and the claim.
pub fn receipt_lines(receipt: &DispenseReceipt) -> Vec<String> {
    let mut lines = vec![
        format!("Dispense receipt {}", safe(&receipt.id)),
        format!(
            "Patient {}  NHS {}  born {}",
            safe(&receipt.patient.name),
            nhs_number(&receipt.patient.nhs_number),
            safe(&receipt.patient.birth_date)
        ),
        format!(
            "Prescriber {} ({})  Dispenser {}",
            safe(&receipt.prescriber.id),
            safe(&receipt.prescriber.org),
            safe(&receipt.dispenser)
        ),
        format!(
            "Status {}  Issued {}",
            label(&receipt.status),
            safe(&receipt.issued_at)
        ),
        String::new(),
    ];
    for item in &receipt.items {
        lines.push(format!(
            "{}. {} — {} {} — {}  [{}]",
            item.line,
            safe(&item.display),
            number(item.quantity),
            safe(&item.unit),
            safe(&item.dosage),
            label(&item.status)
        ));
        for supply in &item.supplies {
            lines.push(format!("   {}", supply_line(supply)));
        }
    }
    if let Some(claim) = &receipt.claim {
        lines.push(String::new());
        lines.push(format!(
            "Claimed {}: {}{}{}",
            time(&claim.claimed_at),
            label(&claim.exemption),
            claim
                .charges_paid
                .map(|paid| format!(", {paid} charge(s) paid"))
                .unwrap_or_default(),
            if claim.evidence_seen {
                ", evidence seen"
            } else {
                ""
            }
        ));
        for line in &claim.items {
            let endorsements: Vec<String> = line
                .endorsements
                .iter()
                .map(|e| match &e.text {
                    Some(text) => format!("{} ({})", label(&e.code), safe(text)),
                    None => label(&e.code),
                })
                .collect();
            lines.push(format!(
                "   line {}: {}",
                line.line,
                endorsements.join("; ")
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_in_a_prescription_is_printed_inert() {
        let printed = prescription(&hostile_view());
        assert!(!acts_on_a_terminal(&printed), "{printed:?}");
        assert!(printed.contains("Jane \\u{202e}htimS"), "{printed}");
        // A line break in the dosage cannot fake a second item line.
        assert!(!printed.contains("\n  2. Morphine"), "{printed}");
    }
}
