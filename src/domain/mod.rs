//! The EPS rules, in one place: the status machine, when repeat and future-dated issues
//! become releasable ([`repeat`]) and validity over the contract's code tables,
//! and what a prescription's patient and free text may be ([`birth_date`], [`text`]).
//! The prescription ID, NHS number and token codecs are `prescrypt_barcode`'s.

pub mod birth_date;
pub mod machine;
pub mod repeat;
pub mod text;
pub mod validity;

// The code tables are part of the wire contract; the rules over them live here.
pub use machine::{CancelDecision, DispenseOutcome, Event, IllegalTransition};
pub use prescrypt_contract::codes::{
    CancelReason, CancelResponse, Coded, ItemStatus, NotDispensedReason, ReturnReason, Status,
    TreatmentType,
};
