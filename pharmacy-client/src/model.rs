//! The service's resources as the client reads them (lenient: unknown fields are kept, not rejected).

use std::fmt::Write as _;

use prescrypt_barcode::NhsNumber;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A coded value the service sends with its display text, e.g. `{"code":"0002","display":"With Dispenser"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coded {
    pub code: String,
    #[serde(default)]
    pub display: String,
}

impl Coded {
    pub fn label(&self) -> String {
        if self.display.is_empty() {
            self.code.clone()
        } else {
            format!("{} ({})", self.display, self.code)
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    #[serde(default)]
    pub nhs_number: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub birth_date: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prescriber {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub org: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub line: u32,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub display: String,
    #[serde(default)]
    pub quantity: Value,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub dosage: String,
    #[serde(default)]
    pub status: Coded,
    #[serde(default)]
    pub dispensed_quantity: Value,
}

impl Item {
    /// Line-item statuses after which nothing more is dispensed (fully dispensed, not dispensed,
    /// cancelled, expired).
    pub fn is_settled(&self) -> bool {
        matches!(self.status.code.as_str(), "0001" | "0002" | "0005" | "0006")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prescription {
    pub id: String,
    #[serde(default)]
    pub status: Coded,
    #[serde(default)]
    pub pending_cancellation: bool,
    #[serde(default)]
    pub treatment_type: Coded,
    #[serde(default)]
    pub issue_number: Option<u32>,
    #[serde(default)]
    pub issue_count: Option<u32>,
    #[serde(default)]
    pub prescriber: Prescriber,
    #[serde(default)]
    pub patient: Patient,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default)]
    pub nominated_pharmacy: Option<String>,
    #[serde(default)]
    pub controlled_drug_schedule: Option<u8>,
    #[serde(default)]
    pub dispenser: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub jws: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

impl Prescription {
    /// Human-readable summary for the counter: patient, NHS number 3-3-4, items, prescriber, dates.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Prescription {}  {}", self.id, self.status.label());
        if self.pending_cancellation {
            let _ = writeln!(
                out,
                "  !! The prescriber has asked to cancel this prescription: do not dispense."
            );
        }
        let nhs = NhsNumber::parse(&self.patient.nhs_number)
            .map(|n| n.to_string())
            .unwrap_or_else(|_| self.patient.nhs_number.clone());
        let _ = write!(out, "Patient    {}  NHS {nhs}", self.patient.name);
        if let Some(born) = &self.patient.birth_date {
            let _ = write!(out, "  born {born}");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "Prescriber {} ({})  {}{}",
            self.prescriber.id,
            self.prescriber.org,
            self.treatment_type.label(),
            match (self.issue_number, self.issue_count) {
                (Some(n), Some(of)) => format!(", issue {n} of {of}"),
                _ => String::new(),
            }
        );
        if let Some(schedule) = self.controlled_drug_schedule {
            let _ = writeln!(out, "Controlled drug: schedule {schedule}");
        }
        let _ = writeln!(
            out,
            "Created    {}  Expires {}",
            self.created_at.as_deref().unwrap_or("?"),
            self.expires_at.as_deref().unwrap_or("?")
        );
        if let Some(dispenser) = &self.dispenser {
            let _ = writeln!(out, "Dispenser  {dispenser}");
        }
        out.push_str("Items\n");
        for item in &self.items {
            let _ = writeln!(
                out,
                "  {}. {} — {} {} — {}  [{}{}]",
                item.line,
                item.display,
                number(&item.quantity),
                item.unit,
                item.dosage,
                item.status.label(),
                match number(&item.dispensed_quantity).as_str() {
                    "" | "0" => String::new(),
                    given => format!(", {given} given"),
                }
            );
        }
        out
    }
}

/// A JSON number as a person writes it.
pub fn number(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NominatedBatch {
    #[serde(default)]
    pub prescriptions: Vec<Prescription>,
    #[serde(default)]
    pub more: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub at: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub detail: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Events {
    #[serde(default)]
    pub events: Vec<Event>,
}
