//! The EPS rules, in one place: code tables, the status machine and validity.
//! The prescription ID, NHS number and token codecs are `prescrypt_barcode`'s.

pub mod codes;
pub mod machine;
pub mod validity;

pub use codes::{
    CancelReason, CancelResponse, Coded, ItemStatus, NotDispensedReason, ReturnReason, Status,
    TreatmentType,
};
pub use machine::{CancelDecision, DispenseOutcome, Event, IllegalTransition};
