//! Firmware for Prescrypt's counter barcode scanner, as a hardware-independent `#![no_std]` core
//! (no allocation) behind small hardware traits, plus a host simulator (`scanner-sim`, feature `sim`).
//!
//! - [`host_link`]: the framed serial protocol to the pharmacy PC (`PROTOCOL.md`); the pharmacy client
//!   uses this module's codec, and with feature `std` the blocking [`host_client::HostClient`].
//! - [`ssi`]: Zebra SSI packets from a 2-D scan engine (Data Matrix); [`aim`]: AIM symbology ids.
//! - [`scanline`] + [`code128`]: decoding a Code 128 from one linear-sensor scanline, or from the
//!   votes of the lines of one trigger ([`code128::TriggerVotes`], what the scanner runs).
//! - [`validate`]: what may be sent (ID check character, token format, GS1 element strings, no
//!   programming symbols), using `prescrypt-barcode`'s rules.
//! - [`hid`]: USB HID POS scanned-data reports and keyboard-wedge reports.
//! - [`hal`] + [`scanner`]: the hardware traits and the clock-driven state machine tying it together.
#![cfg_attr(not(any(feature = "std", test)), no_std)]

pub mod aim;
pub mod code128;
pub mod hal;
pub mod hid;
pub mod host_link;
pub mod scanline;
pub mod scanner;
pub mod ssi;
pub mod validate;

#[cfg(feature = "std")]
pub mod host_client;

#[cfg(feature = "sim")]
pub mod sim;

use core::fmt;

/// Firmware version reported by the host link's `GetVersion`.
pub const VERSION: &str = concat!("prescrypt-scanner-firmware ", env!("CARGO_PKG_VERSION"));

/// Everything that can go wrong parsing or building frames and packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The output buffer cannot hold the frame.
    BufferTooSmall,
    /// The payload does not fit one frame.
    PayloadTooLong,
    /// Fewer bytes than the smallest frame or than the length field says.
    Truncated,
    /// More bytes than the largest frame.
    Oversized,
    /// The checksum does not match.
    Checksum,
    /// The length field disagrees with the bytes received.
    Length,
    /// A COBS framing error.
    Framing,
    /// The opcode is not one this protocol knows (answer with NAK `BadContext`).
    UnknownOpcode { opcode: u8, seq: u8 },
    /// The fields are well-formed but their content is not (wrong payload for the opcode).
    Malformed,
    /// A request is already waiting for its answer.
    Busy,
    /// A reassembled multi-packet message exceeds the buffer.
    MessageTooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall => f.write_str("output buffer too small"),
            Self::PayloadTooLong => f.write_str("payload too long for one frame"),
            Self::Truncated => f.write_str("frame truncated"),
            Self::Oversized => f.write_str("frame longer than the maximum"),
            Self::Checksum => f.write_str("checksum mismatch"),
            Self::Length => f.write_str("length field does not match"),
            Self::Framing => f.write_str("COBS framing error"),
            Self::UnknownOpcode { opcode, .. } => write!(f, "unknown opcode 0x{opcode:02X}"),
            Self::Malformed => f.write_str("malformed payload"),
            Self::Busy => f.write_str("a request is already outstanding"),
            Self::MessageTooLong => f.write_str("reassembled message too long"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
