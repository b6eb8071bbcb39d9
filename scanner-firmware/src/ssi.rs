//! Zebra SSI (Simple Serial Interface) as spoken by a 2-D scan engine on the scanner's UART.
//!
//! Packet: `[Length][Opcode][Source][Status][Data…][CksumHi][CksumLo]`; Length counts every byte
//! but the checksum (4..=255), the checksum is the 16-bit two's complement of the byte sum of
//! Length..last data byte, MSB first. Every packet is ACKed; a message longer than one packet is
//! split over packets with the continuation status bit set on all but the last.

use crate::Error;
use crate::aim::AimId;

/// Smallest value of the Length byte.
pub const MIN_LENGTH: usize = 4;
/// Largest packet including the checksum.
pub const MAX_PACKET: usize = 255 + 2;
/// Largest data in one packet.
pub const MAX_DATA: usize = 255 - MIN_LENGTH;
/// Largest reassembled DECODE_DATA message the firmware keeps (a token is 131 bytes).
pub const MAX_MESSAGE: usize = 512;

/// Source byte of packets the host (our MCU) sends.
pub const SOURCE_HOST: u8 = 0x04;
/// Source byte of packets the decoder (engine) sends.
pub const SOURCE_DECODER: u8 = 0x00;

/// Status bit 0: retransmission.
pub const STATUS_RETRANSMIT: u8 = 0x01;
/// Status bit 1: more packets of this message follow.
pub const STATUS_CONTINUATION: u8 = 0x02;
/// Status bit 3: parameter change is permanent.
pub const STATUS_PERMANENT: u8 = 0x08;

/// SSI opcodes used here.
pub mod opcode {
    pub const CMD_ACK: u8 = 0xD0;
    pub const CMD_NAK: u8 = 0xD1;
    pub const DECODE_DATA: u8 = 0xF3;
    pub const START_DECODE: u8 = 0xE4;
    pub const STOP_DECODE: u8 = 0xE5;
    pub const SCAN_ENABLE: u8 = 0xE9;
    pub const SCAN_DISABLE: u8 = 0xEA;
    pub const LED_ON: u8 = 0xE7;
    pub const LED_OFF: u8 = 0xE8;
    pub const PARAM_SEND: u8 = 0xC6;
    pub const PARAM_REQUEST: u8 = 0xC7;
    pub const REQUEST_REVISION: u8 = 0xA3;
    pub const REPLY_REVISION: u8 = 0xA4;
    pub const RESET: u8 = 0xFA;
}

/// NAK cause codes.
pub mod nak {
    pub const RESEND: u8 = 0x01;
    pub const BAD_CONTEXT: u8 = 0x02;
    pub const DENIED: u8 = 0x06;
    pub const CANCEL: u8 = 0x0A;
}

/// SSI symbology codes in DECODE_DATA (Zebra's code types).
pub mod symbology {
    pub const CODE128: u8 = 0x03;
    pub const GS1_128: u8 = 0x0F;
    pub const DATA_MATRIX: u8 = 0x1B;
    pub const QR: u8 = 0x1C;
    /// A Data Matrix with FNC1 in the first position: a medicine pack's GS1 DataMatrix.
    pub const GS1_DATA_MATRIX: u8 = 0xC1;
    /// A QR Code with FNC1 in the first position.
    pub const GS1_QR: u8 = 0xC2;
}

/// FNC1 as an engine transmits it inside the data (ASCII GS).
const FNC1_AS_GS: u8 = 0x1D;

/// The AIM id for an SSI symbology code, if the firmware handles that symbology.
pub fn aim_for_symbology(code: u8) -> Option<AimId> {
    Some(match code {
        symbology::CODE128 => AimId::CODE128,
        symbology::GS1_128 => AimId::GS1_128,
        symbology::DATA_MATRIX => AimId::DATA_MATRIX,
        symbology::QR => AimId::QR,
        symbology::GS1_DATA_MATRIX => AimId::GS1_DATA_MATRIX,
        symbology::GS1_QR => AimId::GS1_QR,
        _ => return None,
    })
}

/// The SSI checksum of `bytes` (Length..last data byte).
pub fn checksum(bytes: &[u8]) -> u16 {
    let sum = bytes
        .iter()
        .fold(0u16, |sum, &b| sum.wrapping_add(u16::from(b)));
    sum.wrapping_neg()
}

/// One SSI packet, fields borrowed from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub opcode: u8,
    pub source: u8,
    pub status: u8,
    pub data: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Whether more packets of the same message follow.
    pub fn continues(&self) -> bool {
        self.status & STATUS_CONTINUATION != 0
    }

    /// Parses exactly one complete packet (checksum included).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let Some(&length) = bytes.first() else {
            return Err(Error::Truncated);
        };
        let length = usize::from(length);
        if length < MIN_LENGTH {
            return Err(Error::Length);
        }
        if bytes.len() < length + 2 {
            return Err(Error::Truncated);
        }
        if bytes.len() > length + 2 {
            return Err(Error::Oversized);
        }
        let expected = u16::from_be_bytes([bytes[length], bytes[length + 1]]);
        if checksum(&bytes[..length]) != expected {
            return Err(Error::Checksum);
        }
        Ok(Self {
            opcode: bytes[1],
            source: bytes[2],
            status: bytes[3],
            data: &bytes[4..length],
        })
    }

    /// Writes the packet with its checksum into `out`; returns the byte count.
    pub fn build(&self, out: &mut [u8]) -> Result<usize, Error> {
        if self.data.len() > MAX_DATA {
            return Err(Error::PayloadTooLong);
        }
        let length = MIN_LENGTH + self.data.len();
        if out.len() < length + 2 {
            return Err(Error::BufferTooSmall);
        }
        out[0] = length as u8;
        out[1] = self.opcode;
        out[2] = self.source;
        out[3] = self.status;
        out[4..length].copy_from_slice(self.data);
        let sum = checksum(&out[..length]).to_be_bytes();
        out[length..length + 2].copy_from_slice(&sum);
        Ok(length + 2)
    }
}

/// The host's ACK packet (`04 D0 04 00 FF 28`).
pub fn host_ack(out: &mut [u8]) -> Result<usize, Error> {
    Packet {
        opcode: opcode::CMD_ACK,
        source: SOURCE_HOST,
        status: 0,
        data: &[],
    }
    .build(out)
}

/// The host's NAK packet with a cause (e.g. `05 D1 04 00 01 FF 25` for resend).
pub fn host_nak(cause: u8, out: &mut [u8]) -> Result<usize, Error> {
    Packet {
        opcode: opcode::CMD_NAK,
        source: SOURCE_HOST,
        status: 0,
        data: &[cause],
    }
    .build(out)
}

/// Incremental reader that cuts a UART byte stream into packets by the Length byte.
#[derive(Debug, Clone)]
pub struct PacketReader {
    buf: [u8; MAX_PACKET],
    len: usize,
}

impl Default for PacketReader {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketReader {
    /// An empty reader.
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_PACKET],
            len: 0,
        }
    }

    /// Drops a partial packet (e.g. after an inter-byte timeout).
    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// Whether a packet is partly received.
    pub fn in_packet(&self) -> bool {
        self.len > 0
    }

    /// Takes one byte; when a packet is complete returns it (or why it is bad, then starts over).
    pub fn push(&mut self, byte: u8) -> Option<Result<Packet<'_>, Error>> {
        if self.len == 0 && usize::from(byte) < MIN_LENGTH {
            return Some(Err(Error::Length));
        }
        self.buf[self.len] = byte;
        self.len += 1;
        let total = usize::from(self.buf[0]) + 2;
        if self.len < total {
            return None;
        }
        self.len = 0;
        Some(Packet::parse(&self.buf[..total]))
    }
}

/// A complete decode: symbology and data, reassembled from one or more DECODE_DATA packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeMessage {
    pub symbology: u8,
    pub data: heapless::Vec<u8, MAX_MESSAGE>,
}

impl DecodeMessage {
    /// The AIM id of its symbology.
    pub fn aim(&self) -> Option<AimId> {
        self.symbol().map(|(aim, _)| aim)
    }

    /// The symbol as the scanner transmits it: AIM id and the data after it. A GS1 symbol's FNC1
    /// in the first position is said by the AIM id (`]d2`, `]Q3`), never by the data: an engine
    /// that reports a GS1 DataMatrix by the plain Data Matrix code (`1B`) puts that FNC1 in
    /// front of the data as GS, which is dropped here; later FNC1s stay GS.
    pub fn symbol(&self) -> Option<(AimId, &[u8])> {
        let aim = aim_for_symbology(self.symbology)?;
        let fnc1_first = self.data.first() == Some(&FNC1_AS_GS);
        Some(match aim {
            AimId::DATA_MATRIX if fnc1_first => (AimId::GS1_DATA_MATRIX, &self.data[1..]),
            AimId::QR if fnc1_first => (AimId::GS1_QR, &self.data[1..]),
            AimId::GS1_DATA_MATRIX | AimId::GS1_QR if fnc1_first => (aim, &self.data[1..]),
            _ => (aim, &self.data[..]),
        })
    }
}

/// Reassembles DECODE_DATA messages by the continuation bit. Each packet repeats the symbology
/// byte before its share of the data.
#[derive(Debug, Clone, Default)]
pub struct DecodeAssembler {
    current: Option<DecodeMessage>,
    overflow: bool,
}

impl DecodeAssembler {
    /// An empty assembler.
    pub const fn new() -> Self {
        Self {
            current: None,
            overflow: false,
        }
    }

    /// Takes a DECODE_DATA packet; returns the message once its last packet arrived.
    /// Other opcodes return `Ok(None)`; a message longer than [`MAX_MESSAGE`] is dropped whole.
    pub fn push(&mut self, packet: &Packet<'_>) -> Result<Option<DecodeMessage>, Error> {
        if packet.opcode != opcode::DECODE_DATA {
            return Ok(None);
        }
        let Some((&symbology, data)) = packet.data.split_first() else {
            return Err(Error::Malformed);
        };
        let message = self.current.get_or_insert_with(|| DecodeMessage {
            symbology,
            data: heapless::Vec::new(),
        });
        if message.symbology != symbology {
            self.current = None;
            self.overflow = false;
            return Err(Error::Malformed);
        }
        if message.data.extend_from_slice(data).is_err() {
            self.overflow = true;
        }
        if packet.continues() {
            return Ok(None);
        }
        let message = self.current.take();
        if core::mem::take(&mut self.overflow) {
            return Err(Error::MessageTooLong);
        }
        Ok(message)
    }
}

/// Splits a decode into DECODE_DATA packets as an engine sends them (used by the simulator and
/// tests): calls `emit` with each encoded packet.
pub fn encode_decode_data(
    symbology: u8,
    data: &[u8],
    chunk: usize,
    mut emit: impl FnMut(&[u8]),
) -> Result<(), Error> {
    let chunk = chunk.clamp(1, MAX_DATA - 1);
    let mut payload = [0u8; MAX_DATA];
    let mut wire = [0u8; MAX_PACKET];
    let mut parts = data.chunks(chunk).peekable();
    if data.is_empty() {
        return Err(Error::Malformed);
    }
    while let Some(part) = parts.next() {
        payload[0] = symbology;
        payload[1..=part.len()].copy_from_slice(part);
        let status = if parts.peek().is_some() {
            STATUS_CONTINUATION
        } else {
            0
        };
        let n = Packet {
            opcode: opcode::DECODE_DATA,
            source: SOURCE_DECODER,
            status,
            data: &payload[..=part.len()],
        }
        .build(&mut wire)?;
        emit(&wire[..n]);
    }
    Ok(())
}
