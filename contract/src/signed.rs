//! The clinical content the service signs into a prescription's JWS (the `jws` of a
//! [`PrescriptionView`](crate::views::PrescriptionView)): the payload is this struct as canonical
//! JSON (RFC 8785), so a pharmacy that verifies the signature can read it back typed.

use serde::{Deserialize, Serialize};

use crate::quantity::{Decimal, as_number};
use crate::views::{Patient, Prescriber};

/// What the prescriber signed. Times are RFC 3339 in UTC with microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedPrescription {
    /// Short form, hyphenated.
    pub id: String,
    pub uuid: String,
    pub prescriber: Prescriber,
    pub patient: Patient,
    pub items: Vec<SignedItem>,
    /// A [`TreatmentType`](crate::TreatmentType) code.
    pub treatment_type: String,
    pub issue_number: i32,
    pub issue_count: i32,
    pub nominated_pharmacy: Option<String>,
    pub controlled_drug_schedule: Option<i32>,
    pub created_at: String,
    pub expires_at: String,
}

/// One signed line item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedItem {
    pub line: i32,
    pub uuid: String,
    pub code: String,
    pub display: String,
    #[serde(with = "as_number")]
    pub quantity: Decimal,
    pub unit: String,
    pub dosage: String,
}
