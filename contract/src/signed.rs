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
    /// Repeat dispensing: days between issues. Absent otherwise (older payloads never have it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_supply: Option<i32>,
    /// `YYYY-MM-DD`: not to be dispensed before this day. Absent when not future-dated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Repeat prescribing: the ID (hyphenated) of the prescription that authorised the repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation: Option<String>,
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

/// The UUID of issue `issue_number` of a repeat-dispensing prescription, of one of its line
/// items, derived from the signed UUID: the prescriber signs the batch once (issue 1, whose
/// UUIDs are the signed ones), and every later issue's UUIDs follow from it, so a pharmacy can
/// check a later issue against the one signature. A version 8 UUID: the first 16 bytes of
/// SHA-256 of `"{signed_uuid}/issue/{issue_number}"`.
pub fn issue_uuid(signed_uuid: &str, issue_number: i32) -> String {
    use sha2::Digest;
    if issue_number <= 1 {
        return signed_uuid.to_owned();
    }
    let digest = sha2::Sha256::digest(format!("{signed_uuid}/issue/{issue_number}").as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
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

#[cfg(test)]
mod issue_tests {
    use super::issue_uuid;

    #[test]
    fn later_issues_have_their_own_stable_uuids() {
        let signed = "8f0e7a52-4a4e-4a5e-9d4f-3c0b1f2e9a10";
        assert_eq!(issue_uuid(signed, 1), signed);
        let second = issue_uuid(signed, 2);
        assert_eq!(second, issue_uuid(signed, 2));
        assert_ne!(second, issue_uuid(signed, 3));
        assert_ne!(second, signed);
        assert_eq!(second.len(), 36);
        assert_eq!(&second[14..15], "8", "version 8: {second}");
    }
}
