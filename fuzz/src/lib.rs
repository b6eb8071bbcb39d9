//! The properties the fuzz targets check, one function per target.
//!
//! Each module is self-contained (it uses only the crate under test and std) so that the
//! regression tests of that crate include the same file with `#[path]` and replay the committed
//! corpus and crash reproducers through exactly these checks on stable `cargo test`.

pub mod barcode;
pub mod firmware;
pub mod replay;
#[cfg(feature = "service")]
pub mod service;
