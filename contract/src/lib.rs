//! The contract between the Prescrypt service and its clients: what goes over the wire.
//!
//! - [`codes`]: the EPS code tables (statuses, reasons, responses) and [`Coded`], their wire form.
//! - [`views`]: the JSON request and response bodies of the API, prescriber keys included.
//! - [`problem`]: [`Problem`], the `application/problem+json` body of every failure.
//! - [`signed`]: [`SignedPrescription`], the clinical content the service signs into each
//!   prescription's JWS, the prescriber's signature over it and the service's
//!   [`Countersignature`].
//! - [`quantity`]: THE quantity rule (exact decimals) and its wire forms.
//! - [`routes`]: the paths of the API, as route templates and as functions that fill them in.
//! - [`limits`]: the numbers both sides must agree on (batch sizes, item counts, header lengths).
//! - [`text`]: the characters that hide or break what a person reads (refused by the service in
//!   free text, escaped by the client when printing).
//!
//! The service serialises these types and the pharmacy client deserialises them, so a change to
//! the wire format is a change here that both must compile against. The `openapi` feature adds
//! the utoipa schemas the service documents its API with.

pub mod codes;
pub mod limits;
pub mod problem;
pub mod quantity;
pub mod routes;
pub mod signed;
pub mod text;
pub mod views;

pub use codes::{
    CancelReason, CancelResponse, ChargeExemption, Coded, DispenserEndorsement, ItemStatus,
    NotDispensedReason, ReturnReason, Status, TreatmentType,
};
pub use problem::Problem;
pub use signed::{Countersignature, DispenseReceipt, ReceiptItem, SignedItem, SignedPrescription};
