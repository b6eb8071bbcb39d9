//! The clinical content the service signs into a prescription's JWS (the `jws` of a
//! [`PrescriptionView`](crate::views::PrescriptionView)): the payload is this struct as canonical
//! JSON (RFC 8785), so a pharmacy that verifies the signature can read it back typed.

use serde::{Deserialize, Serialize};

use crate::codes::Coded;
use crate::quantity::{Decimal, as_number};
use crate::views::Prescriber;
use crate::views::{ClaimView, Patient, Supply};

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

/// The JOSE `typ` of a prescriber's JWS over a [`SignedPrescription`].
pub const PRESCRIBER_JWS_TYP: &str = "prescrypt-prescription+jws";
/// The JOSE `typ` of the service's [`Countersignature`].
pub const COUNTERSIGNATURE_TYP: &str = "prescrypt-countersignature+jws";

/// What the service signs into the `jws` of a prescription its prescriber signed: that it
/// accepted exactly this prescriber JWS, for this prescription, at this time.
///
/// Prescriptions issued without a prescriber signature (before prescriber keys, or by a service
/// running `--dev`) carry instead a service JWS over the [`SignedPrescription`] itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Countersignature {
    /// Short form, hyphenated.
    pub id: String,
    pub uuid: String,
    /// The prescriber key that signed.
    pub prescriber_kid: String,
    /// [`jws_digest`] of the whole compact prescriber JWS.
    pub prescriber_jws_sha256: String,
    /// When the service accepted the signature: RFC 3339 in UTC with microseconds. A key revoked
    /// at or before this instant makes the signature invalid.
    pub accepted_at: String,
}

/// BASE64URL (no padding) of the SHA-256 of a compact JWS's ASCII text.
pub fn jws_digest(jws: &str) -> String {
    use sha2::Digest;
    data_encoding::BASE64URL_NOPAD.encode(&sha2::Sha256::digest(jws.as_bytes()))
}

/// Whether a key revoked at `revoked_at` (if ever) was good for a signature accepted at
/// `signed_at`: signatures made before the revocation stay valid, none is after.
pub fn key_valid_at(
    revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    signed_at: chrono::DateTime<chrono::Utc>,
) -> bool {
    revoked_at.is_none_or(|revoked| signed_at < revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_base64url_sha256() {
        // SHA-256("abc"), RFC 6234 test vector.
        assert_eq!(
            jws_digest("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn revocation_is_valid_strictly_before() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .to_utc();
        let second = chrono::Duration::seconds(1);
        assert!(key_valid_at(None, at));
        assert!(key_valid_at(Some(at + second), at));
        assert!(!key_valid_at(Some(at), at));
        assert!(!key_valid_at(Some(at - second), at));
    }
}

/// The JOSE `typ` of the service's [`DispenseReceipt`].
pub const RECEIPT_JWS_TYP: &str = "prescrypt-receipt+jws";

/// What the service signs for the patient and the pharmacy: what was handed over for a
/// prescription, and what was claimed, as the central store recorded it at `issued_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispenseReceipt {
    /// Short form, hyphenated.
    pub id: String,
    pub uuid: String,
    pub patient: Patient,
    pub prescriber: Prescriber,
    /// The dispensing organisation (ODS code).
    pub dispenser: String,
    pub status: Coded,
    pub items: Vec<ReceiptItem>,
    pub claim: Option<ClaimView>,
    /// RFC 3339 in UTC with microseconds.
    pub issued_at: String,
}

/// One prescribed item and what was supplied for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptItem {
    pub line: i32,
    pub code: String,
    pub display: String,
    #[serde(with = "as_number")]
    pub quantity: Decimal,
    pub unit: String,
    pub dosage: String,
    pub status: Coded,
    pub supplies: Vec<Supply>,
}
