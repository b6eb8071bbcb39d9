//! Prescrypt's printed identifiers and the barcodes that carry them.
//!
//! The core (always built, `#![no_std]`, no allocation) holds the rules every part of Prescrypt shares:
//! the EPS short-form [`PrescriptionId`] with its MOD 37-2 check character, the [`NhsNumber`]
//! Modulus 11 check, the signed dispensing [`Token`] carried by the 2-D code (format in `TOKEN.md`),
//! and [`scanned::classify`], the one rule that tells a scanned text's token from ID from other.
//! The service, the pharmacy client and the scanner firmware all use these types; nothing re-implements them.
//!
//! With the `render` and `decode` features (default) the crate also draws the printable barcodes and
//! reads them back from scanner images and phone photos.
#![cfg_attr(not(any(feature = "std", test)), no_std)]

pub mod id;
pub mod nhs;
pub mod scanned;
pub mod token;

pub use id::{IdError, PrescriptionId};
pub use nhs::{NhsNumber, NhsNumberError};
pub use scanned::{Scanned, Unrecognised};
pub use token::{KeyId, Token, TokenError, TokenText};

#[cfg(feature = "render")]
pub mod render;

#[cfg(feature = "decode")]
pub mod decode;

#[cfg(feature = "synth")]
pub mod synth;
