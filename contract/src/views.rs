//! The JSON shapes of the API (requests and responses): the service's handlers, operations
//! (responses are stored for idempotent replay) and OpenAPI document use them, and so do clients.

use serde::{Deserialize, Serialize};

use crate::codes::Coded;
use crate::quantity::{Decimal, QuantityText, as_number};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    /// 10 digits, Modulus 11 (spaces allowed).
    pub nhs_number: String,
    /// Free text: no control, bidi, zero-width or line-separator characters; stored NFC.
    pub name: String,
    /// Strictly `YYYY-MM-DD`, from 1870-01-01 to today.
    pub birth_date: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub code: String,
    pub display: String,
    /// An exact decimal, 0.001 to 1000000, at most 3 decimal places (a number or a string).
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub quantity: QuantityText,
    pub unit: String,
    pub dosage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
    "items": [{"code": "39732311000001104", "display": "Amoxicillin 250mg capsules",
               "quantity": 21.0, "unit": "capsule", "dosage": "one three times a day"}]
})))]
pub struct NewPrescription {
    pub patient: NewPatient,
    pub items: Vec<NewItem>,
    #[serde(default)]
    pub nominated_pharmacy: Option<String>,
    /// `0001` acute (default), `0002` repeat prescribing, `0003` repeat dispensing (eRD).
    #[serde(default)]
    pub treatment_type: Option<String>,
    /// Repeat dispensing (`0003`): how many issues the one signature authorises (1–99).
    /// Repeat prescribing (`0002`): how many issues the authorisation allows.
    #[serde(default)]
    pub issue_count: Option<i32>,
    /// Repeat dispensing (`0003`): the dispensing interval, days between issues (EPS
    /// `daysSupply`, 1–366, default 28).
    #[serde(default)]
    pub days_supply: Option<i32>,
    /// `YYYY-MM-DD`: a future-dated prescription is not releasable before this day (status
    /// `9001` until then). At most a year ahead.
    #[serde(default)]
    pub start_date: Option<String>,
    /// Repeat prescribing (`0002`): the ID of the earlier issue that authorised the repeats; this
    /// prescription is the next issue of that authorisation.
    #[serde(default)]
    pub authorisation: Option<String>,
    /// 2 to 5; schedules 2–4 are valid for 28 days.
    #[serde(default)]
    pub controlled_drug_schedule: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The scanned token (`RX1…`) or, for a prescription nominated to the caller, its ID.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"reason": "0002"})))]
pub struct ReturnRequest {
    /// Return reason `0001`–`0008`.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"reason": "0001"})))]
pub struct CancelRequest {
    /// Cancellation reason `0001`–`0009` (default `0001`).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Complete,
    Partial,
    NotDispensed,
    /// Nothing supplied now; the pharmacy owes the item and supplies it later (EPS item status
    /// 0004 "not dispensed – owing").
    Owing,
}

/// The product handed over for a line, when it is not simply the prescribed one or when the
/// pack's batch and expiry are known (from a scanned GS1 DataMatrix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SuppliedProduct {
    /// dm+d code of the product supplied (default: the prescribed code). A code other than the
    /// prescribed one is recorded as a substitution.
    #[serde(default)]
    pub code: Option<String>,
    /// Its name (required with `code`).
    #[serde(default)]
    pub display: Option<String>,
    /// GS1 GTIN of the pack (AI 01, 14 digits with a valid check digit).
    #[serde(default)]
    pub gtin: Option<String>,
    /// Batch or lot (AI 10, 1–20 characters).
    #[serde(default)]
    pub batch: Option<String>,
    /// Expiry date of the pack (`YYYY-MM-DD`); an expired pack is refused.
    #[serde(default)]
    pub expiry: Option<chrono::NaiveDate>,
    /// The pack's serial number (AI 21, 1–20 characters), as the Falsified Medicines Directive
    /// prints it.
    #[serde(default)]
    pub serial: Option<String>,
}

/// One supply of an item: what was handed over, when, and how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Supply {
    pub at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "as_number")]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub quantity: Decimal,
    pub unit: String,
    /// dm+d code and name of the product handed over.
    pub code: String,
    pub display: String,
    /// The product is not the one prescribed.
    pub substitution: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<chrono::NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DispenseLine {
    pub line: i32,
    pub outcome: Outcome,
    /// For `partial`: the quantity supplied now.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub quantity: Option<QuantityText>,
    /// For `not_dispensed`: reason `0001`–`0011`.
    #[serde(default)]
    pub reason: Option<String>,
    /// For `complete` and `partial`: the product handed over (default: the prescribed one).
    #[serde(default)]
    pub supplied: Option<SuppliedProduct>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"items": [{"line": 1, "outcome": "complete"}]})))]
pub struct DispenseRequest {
    pub items: Vec<DispenseLine>,
}

/// `POST /prescriptions/{id}/claim`: what the pharmacy is paid for. Sent again within the claim
/// window, it amends the claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"exemption": "0004", "evidence_seen": true,
    "items": [{"line": 1, "endorsements": [{"code": "NDEC"}]},
              {"line": 2, "endorsements": [{"code": "BB", "text": "Broken bulk: 21 of 28"}]}]})))]
pub struct ClaimRequest {
    /// The patient's prescription-charge exemption, `0001`–`0015` (`0001`: the patient paid).
    pub exemption: String,
    /// Whether the pharmacy saw evidence of the exemption.
    pub evidence_seen: bool,
    /// With exemption `0001` only: how many prescription charges the patient paid (1 to the
    /// number of items supplied).
    #[serde(default)]
    pub charges_paid: Option<u32>,
    /// Every item supplied (wholly or in part), each with its endorsements; nothing else.
    pub items: Vec<ClaimLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimLine {
    pub line: i32,
    /// One to five dispenser endorsements (EPS codes, `NDEC` alone when there is none).
    pub endorsements: Vec<Endorsement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Endorsement {
    /// `BB`, `ED`, `IP`, `MF`, `NCSO`, `NDEC`, `XP`, `PC`, `PNC`, `RC`, `SSP`, `SP` or `ZD`.
    pub code: String,
    /// Supporting information (e.g. the invoice price, the pack size broken), up to 200
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The claim as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimView {
    pub claimed_at: chrono::DateTime<chrono::Utc>,
    /// When it was last amended, if ever.
    #[serde(default)]
    pub amended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub exemption: Coded,
    pub evidence_seen: bool,
    #[serde(default)]
    pub charges_paid: Option<u32>,
    pub items: Vec<ClaimLineView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimLineView {
    pub line: i32,
    pub endorsements: Vec<EndorsementView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndorsementView {
    pub code: Coded,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prescriber {
    pub id: String,
    pub org: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Patient {
    pub nhs_number: String,
    pub name: String,
    pub birth_date: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemView {
    pub line: i32,
    pub uuid: String,
    pub code: String,
    pub display: String,
    #[serde(with = "as_number")]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub quantity: Decimal,
    pub unit: String,
    pub dosage: String,
    pub status: Coded,
    #[serde(with = "as_number")]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub dispensed_quantity: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_dispensed_reason: Option<Coded>,
    /// Every supply of this item, oldest first (a complete supply, or each part and the owed
    /// remainder's later supply).
    #[serde(default)]
    pub supplies: Vec<Supply>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrescriptionView {
    /// Short form, hyphenated.
    pub id: String,
    pub uuid: String,
    pub status: Coded,
    pub pending_cancellation: bool,
    pub treatment_type: Coded,
    pub issue_number: i32,
    pub issue_count: i32,
    pub prescriber: Prescriber,
    pub patient: Patient,
    pub items: Vec<ItemView>,
    pub nominated_pharmacy: Option<String>,
    pub controlled_drug_schedule: Option<i32>,
    pub dispenser: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The service's JWS: a [`Countersignature`](crate::Countersignature) when the prescriber
    /// signed, else (issued without a prescriber signature) the
    /// [`SignedPrescription`](crate::SignedPrescription) itself.
    pub jws: String,
    /// The prescriber's compact JWS over the [`SignedPrescription`](crate::SignedPrescription)
    /// (`typ` [`PRESCRIBER_JWS_TYP`](crate::signed::PRESCRIBER_JWS_TYP)); `null` when the
    /// prescription carries no prescriber signature.
    #[serde(default)]
    pub prescriber_jws: Option<String>,
    pub token: String,
    /// The pharmacy's claim once it has claimed (status 0008), else `null`.
    #[serde(default)]
    pub claim: Option<ClaimView>,
    /// Repeat dispensing: days between issues.
    #[serde(default)]
    pub days_supply: Option<i32>,
    /// `YYYY-MM-DD`: not releasable before this day.
    #[serde(default)]
    pub start_date: Option<String>,
    /// A waiting issue (`0000`, `9001`) becomes To Be Dispensed at this time (the nominated
    /// download date of a repeat-dispensing issue, the start date of a future-dated one).
    #[serde(default)]
    pub ready_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Repeat prescribing: the ID of the prescription that authorised this issue (issue 1 names
    /// itself).
    #[serde(default)]
    pub authorisation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CancelResult {
    /// `null` when cancelled outright; otherwise the EPS R-code.
    pub response: Option<Coded>,
    pub prescription: PrescriptionView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NominatedRelease {
    pub prescriptions: Vec<PrescriptionView>,
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEvent {
    /// Which issue of the prescription the event happened to (every issue's events are listed).
    #[serde(default = "first_issue")]
    pub issue_number: i32,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub org: String,
    pub role: String,
    pub action: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
}

fn first_issue() -> i32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    pub events: Vec<HistoryEvent>,
}

/// An Ed25519 public key as a JWK (RFC 8037), as WebCrypto and JOSE libraries export it.
/// Other members (`ext`, `key_ops`, `use`, …) are accepted and ignored; a private part (`d`) is
/// refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicJwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The 32-byte public key, BASE64URL without padding.
    pub x: String,
    /// Present only to be refused: private keys never reach the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub d: Option<serde_json::Value>,
}

impl PublicJwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(public_key: &[u8; 32]) -> Self {
        Self {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: data_encoding::BASE64URL_NOPAD.encode(public_key),
            d: None,
        }
    }

    /// The 32 bytes of the public key, or what is wrong with the JWK (naming its member).
    pub fn ed25519_bytes(&self) -> Result<[u8; 32], String> {
        if self.d.is_some() {
            return Err("d: a private key; enrol the public key only".to_owned());
        }
        if self.kty != "OKP" {
            return Err("kty: must be OKP".to_owned());
        }
        if self.crv != "Ed25519" {
            return Err("crv: must be Ed25519".to_owned());
        }
        data_encoding::BASE64URL_NOPAD
            .decode(self.x.as_bytes())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| "x: 32 bytes in BASE64URL without padding".to_owned())
    }

    /// The RFC 7638 thumbprint: BASE64URL of the SHA-256 of `{"crv","kty","x"}` in that order,
    /// with no whitespace. It is the key's `kid`.
    pub fn thumbprint(&self) -> String {
        use sha2::Digest;
        let members = serde_json::json!({"crv": self.crv, "kty": self.kty, "x": self.x});
        // serde_json's map is ordered by key, which is the order RFC 7638 requires.
        let text = members.to_string();
        data_encoding::BASE64URL_NOPAD.encode(&sha2::Sha256::digest(text.as_bytes()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrolKey {
    pub jwk: PublicJwk,
}

/// A prescriber's enrolled key: whose it is and when it was good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrescriberKey {
    /// The RFC 7638 thumbprint (SHA-256, BASE64URL) of the public key.
    pub kid: String,
    pub sub: String,
    pub org: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One key of [`PrescriberKeySet`]: the public JWK with its owner and lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrescriberJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(flatten)]
    pub key: PrescriberKey,
}

/// `GET /api/v1/prescriber-keys.json`: every prescriber key ever enrolled, revoked ones
/// included (signatures made before a revocation stay valid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrescriberKeySet {
    pub keys: Vec<PrescriberJwk>,
}

/// `POST /api/v1/prescriptions/prepare`: a create body plus the `kid` that will sign.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrepareRequest {
    pub kid: String,
    #[serde(flatten)]
    pub prescription: NewPrescription,
}

impl<'de> Deserialize<'de> for PrepareRequest {
    /// Strict like [`NewPrescription`]: an unknown field is refused, not ignored (serde's
    /// `flatten` would ignore it).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut body = RawObject::deserialize(deserializer)?;
        let kid = body
            .remove("kid")
            .ok_or_else(|| D::Error::missing_field("kid"))?;
        let kid = serde_json::from_str(kid.get()).map_err(|_| D::Error::custom("kid: a string"))?;
        Ok(Self {
            kid,
            prescription: reparse(&body)?,
        })
    }
}

/// A JSON object whose members are kept as they were written, so that numbers no `f64` holds
/// still reach [`QuantityText`] as text.
type RawObject = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;

fn reparse<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    object: &RawObject,
) -> Result<T, E> {
    let text = serde_json::to_string(object).map_err(E::custom)?;
    serde_json::from_str(&text).map_err(|e| {
        // serde_json adds the position in the re-assembled text, which the sender never saw.
        let message = e.to_string();
        E::custom(message.split(" at line ").next().unwrap_or(&message))
    })
}

/// The answer to a prepare: what the prescriber's system must sign, and by when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prepared {
    pub prepared_id: String,
    /// `BASE64URL(header) "." BASE64URL(payload)`: sign its ASCII bytes with Ed25519.
    pub signing_input: String,
    /// The payload: the prescription as it will be, ID and UUIDs assigned.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub prescription: crate::SignedPrescription,
    /// After this the prepared ID is refused; prepare again.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Step two of a prescriber-signed issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedCreate {
    pub prepared_id: String,
    /// The 64-byte Ed25519 signature of `signing_input`, BASE64URL without padding.
    pub signature: String,
}

/// `POST /api/v1/prescriptions`: a prepared and signed prescription, or (only on a service
/// running `--dev`) a one-step create without a prescriber signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CreateRequest {
    Signed(SignedCreate),
    Unsigned(NewPrescription),
}

impl<'de> Deserialize<'de> for CreateRequest {
    /// A body with `prepared_id` is a [`SignedCreate`]; any other a [`NewPrescription`], so an
    /// error names the field at fault rather than "no variant matched".
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let body = RawObject::deserialize(deserializer)?;
        if body.contains_key("prepared_id") {
            reparse(&body).map(Self::Signed)
        } else {
            reparse(&body).map(Self::Unsigned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_8037_appendix_a3() {
        let jwk = PublicJwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".to_owned(),
            d: None,
        };
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(jwk.ed25519_bytes().unwrap()[0], 0xd7);
        assert_eq!(PublicJwk::ed25519(&jwk.ed25519_bytes().unwrap()), jwk);
    }

    #[test]
    fn a_private_key_or_another_curve_is_refused_by_member() {
        let mut jwk = PublicJwk::ed25519(&[7; 32]);
        jwk.d = Some(serde_json::json!("secret"));
        assert!(jwk.ed25519_bytes().unwrap_err().starts_with("d:"));
        jwk.d = None;
        jwk.crv = "X25519".to_owned();
        assert!(jwk.ed25519_bytes().unwrap_err().starts_with("crv:"));
        jwk.crv = "Ed25519".to_owned();
        jwk.x = "AAAA".to_owned();
        assert!(jwk.ed25519_bytes().unwrap_err().starts_with("x:"));
    }

    #[test]
    fn prepare_body_is_strict_and_create_body_chooses_by_prepared_id() {
        let new = serde_json::json!({
            "patient": {"nhs_number": "9434765919", "name": "A", "birth_date": "1970-01-31"},
            "items": []
        });
        let mut prepare = new.clone();
        prepare["kid"] = "k1".into();
        let parsed: PrepareRequest = serde_json::from_value(prepare.clone()).unwrap();
        assert_eq!(parsed.kid, "k1");
        prepare["surprise"] = true.into();
        assert!(serde_json::from_value::<PrepareRequest>(prepare).is_err());
        assert!(serde_json::from_value::<PrepareRequest>(new.clone()).is_err());

        assert!(matches!(
            serde_json::from_value(new).unwrap(),
            CreateRequest::Unsigned(_)
        ));
        let signed = serde_json::json!({"prepared_id": "p", "signature": "s"});
        assert!(matches!(
            serde_json::from_value(signed).unwrap(),
            CreateRequest::Signed(_)
        ));
        let wrong = serde_json::json!({"prepared_id": "p"});
        let error = serde_json::from_value::<CreateRequest>(wrong).unwrap_err();
        assert!(error.to_string().contains("signature"), "{error}");

        let huge = r#"{"kid":"k","patient":{"nhs_number":"9434765919","name":"A","birth_date":"1970-01-31"},
            "items":[{"code":"c","display":"d","quantity":1e400,"unit":"u","dosage":"x"}]}"#;
        let parsed: PrepareRequest = serde_json::from_str(huge).unwrap();
        assert_eq!(parsed.prescription.items[0].quantity.as_str(), "1e400");
        let without_kid = huge.replace(r#""kid":"k","#, "");
        let CreateRequest::Unsigned(new) = serde_json::from_str(&without_kid).unwrap() else {
            panic!("a create body")
        };
        assert_eq!(new.items[0].quantity.as_str(), "1e400");
    }
}

/// One page of a tracker search (`GET /api/v1/prescriptions`), newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchPage {
    /// The matching prescriptions the caller may see, newest (`created_at`) first.
    pub prescriptions: Vec<PrescriptionView>,
    /// Pass as `cursor` (with the same filters) for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/dev/clock` (`serve --dev` only): how far to move the service's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Seconds forward, 0 to ten years; time never moves back.
    pub advance_seconds: i64,
}

/// The service's time after moving its clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockView {
    pub now: chrono::DateTime<chrono::Utc>,
}

/// `GET /prescriptions/{id}/receipt`: the service's signed [`DispenseReceipt`](crate::DispenseReceipt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptView {
    /// Compact JWS (EdDSA, `typ` `prescrypt-receipt+jws`, `kid` in `/.well-known/jwks.json`)
    /// whose payload is the canonical JSON of the receipt.
    pub jws: String,
}
