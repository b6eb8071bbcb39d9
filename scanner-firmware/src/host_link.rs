//! The host link: the framed serial protocol between the scanner and the pharmacy PC
//! (specified byte by byte in `PROTOCOL.md`).
//!
//! Each frame is `[opcode][seq][status][len][payload…][crc16 hi][crc16 lo]`, modelled on Zebra SSI,
//! then COBS-encoded and terminated by a `0x00` delimiter so that a receiver re-synchronises at the
//! next zero after any line noise. The CRC is CRC-16/IBM-3740 (a.k.a. CCITT-FALSE) over opcode..payload.
//!
//! Everything here is `no_std` without allocation and is meant to be used from std code too: the
//! pharmacy client drives [`Decoder`], [`encode`] and [`Outbox`] (or the blocking
//! `HostClient` with the `std` feature).

use crate::Error;
use crate::aim::AimId;

/// Largest payload of one frame (the `len` byte).
pub const MAX_PAYLOAD: usize = 255;
/// Opcode, seq, status and len.
pub const HEADER_LEN: usize = 4;
/// The CRC-16 trailer.
pub const CRC_LEN: usize = 2;
/// Largest frame before COBS encoding.
pub const MAX_RAW: usize = HEADER_LEN + MAX_PAYLOAD + CRC_LEN;
/// Largest frame on the wire: COBS overhead (one byte per 254) plus the code byte and the delimiter.
pub const MAX_ENCODED: usize = MAX_RAW + MAX_RAW / 254 + 1 + 1;
/// The frame delimiter.
pub const DELIMITER: u8 = 0x00;
/// Largest decoded data in a scan frame (the payload less the AIM id).
pub const MAX_SCAN_DATA: usize = MAX_PAYLOAD - 3;

/// Default time a sender waits for the answer to a request before it retransmits.
pub const DEFAULT_ACK_TIMEOUT_MS: u32 = 250;
/// Default number of retransmissions before a sender gives up.
pub const DEFAULT_MAX_RETRIES: u8 = 3;

/// The CRC the link uses (poly 0x1021, init 0xFFFF, check value 0x29B1 for "123456789").
pub const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// Positive answer to a request; carries the request's seq.
    Ack = 0x01,
    /// Negative answer; payload is one [`NakReason`] byte.
    Nak = 0x02,
    /// Scanner → host: a validated symbol. Payload: AIM id (3 bytes) + data.
    ScanData = 0x10,
    /// Host → scanner: start a decode session (host-triggered mode or any mode).
    Trigger = 0x20,
    /// Host → scanner: end the current decode session.
    TriggerStop = 0x21,
    /// Host → scanner: sound the beeper. Payload: one [`BeepKind`] byte.
    Beep = 0x22,
    /// Host → scanner: allow scanning (the default).
    Enable = 0x23,
    /// Host → scanner: refuse to scan until enabled again.
    Disable = 0x24,
    /// Host → scanner: set a parameter. Payload: [`Param`] byte + value (u16, big-endian).
    SetParam = 0x25,
    /// Host → scanner: read a parameter. Payload: [`Param`] byte. Answered by `ParamValue`.
    GetParam = 0x26,
    /// Scanner → host: answer to `GetParam`. Payload: [`Param`] byte + value (u16, big-endian).
    ParamValue = 0x27,
    /// Host → scanner: ask for the firmware version. Answered by `Version`.
    GetVersion = 0x28,
    /// Scanner → host: answer to `GetVersion`. Payload: ASCII version text.
    Version = 0x29,
}

impl Opcode {
    /// The opcode for a wire byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x01 => Self::Ack,
            0x02 => Self::Nak,
            0x10 => Self::ScanData,
            0x20 => Self::Trigger,
            0x21 => Self::TriggerStop,
            0x22 => Self::Beep,
            0x23 => Self::Enable,
            0x24 => Self::Disable,
            0x25 => Self::SetParam,
            0x26 => Self::GetParam,
            0x27 => Self::ParamValue,
            0x28 => Self::GetVersion,
            0x29 => Self::Version,
            _ => return None,
        })
    }

    /// Responses answer a request and are never answered themselves.
    pub fn is_response(self) -> bool {
        matches!(
            self,
            Self::Ack | Self::Nak | Self::ParamValue | Self::Version
        )
    }
}

/// The status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status(pub u8);

impl Status {
    /// Bit 0: this frame is a retransmission of the previous request with the same seq.
    pub const RETRANSMIT: u8 = 0x01;

    /// A status with no bits set.
    pub const NONE: Self = Self(0);

    /// Whether the retransmit bit is set.
    pub fn is_retransmit(self) -> bool {
        self.0 & Self::RETRANSMIT != 0
    }
}

/// Why a frame was refused (the payload of a NAK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NakReason {
    /// The frame arrived damaged (CRC, length or COBS error): send it again.
    Resend = 0x01,
    /// Unknown opcode, malformed payload or a request the receiver does not take.
    BadContext = 0x02,
    /// Understood but refused (e.g. a parameter value out of range).
    Denied = 0x06,
    /// The receiver cancels the exchange.
    Cancel = 0x0A,
}

impl NakReason {
    /// The reason for a wire byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x01 => Self::Resend,
            0x02 => Self::BadContext,
            0x06 => Self::Denied,
            0x0A => Self::Cancel,
            _ => return None,
        })
    }
}

/// Which beep a `Beep` command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BeepKind {
    /// The good-read beep.
    GoodRead = 0x00,
    /// The error beep.
    Error = 0x01,
}

/// Parameters the host can set and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Param {
    /// 0 = trigger (manual), 1 = host-triggered, 2 = presentation.
    TriggerMode = 0x01,
    /// Same-symbol re-read suppression in ms (default 500).
    RereadTimeoutMs = 0x02,
    /// Decode session timeout in ms (default 9,900).
    SessionTimeoutMs = 0x03,
    /// How long the scanner waits for the host's ACK before retransmitting, in ms (default 250).
    AckTimeoutMs = 0x04,
    /// Retransmissions before the scanner gives up on a scan frame (default 3).
    MaxRetries = 0x05,
    /// 0 = beeper off, 1 = on.
    Beeper = 0x06,
}

impl Param {
    /// The parameter for a wire byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x01 => Self::TriggerMode,
            0x02 => Self::RereadTimeoutMs,
            0x03 => Self::SessionTimeoutMs,
            0x04 => Self::AckTimeoutMs,
            0x05 => Self::MaxRetries,
            0x06 => Self::Beeper,
            _ => return None,
        })
    }
}

/// One frame, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub opcode: Opcode,
    pub seq: u8,
    pub status: Status,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A frame with no status bits.
    pub fn new(opcode: Opcode, seq: u8, payload: &'a [u8]) -> Self {
        Self {
            opcode,
            seq,
            status: Status::NONE,
            payload,
        }
    }

    /// Reads the payload of a `ScanData` frame.
    pub fn scan(&self) -> Result<Scan<'a>, Error> {
        if self.opcode != Opcode::ScanData || self.payload.len() < 3 {
            return Err(Error::Malformed);
        }
        let aim = AimId::parse(&self.payload[..3]).ok_or(Error::Malformed)?;
        Ok(Scan {
            aim,
            data: &self.payload[3..],
        })
    }

    /// Reads the reason of a `Nak` frame (unknown reasons read as `BadContext`).
    pub fn nak_reason(&self) -> Result<NakReason, Error> {
        match (self.opcode, self.payload) {
            (Opcode::Nak, [reason]) => {
                Ok(NakReason::from_byte(*reason).unwrap_or(NakReason::BadContext))
            }
            _ => Err(Error::Malformed),
        }
    }

    /// Reads a `SetParam` or `ParamValue` payload.
    pub fn param_value(&self) -> Result<(Param, u16), Error> {
        match (self.opcode, self.payload) {
            (Opcode::SetParam | Opcode::ParamValue, [param, hi, lo]) => Ok((
                Param::from_byte(*param).ok_or(Error::Malformed)?,
                u16::from_be_bytes([*hi, *lo]),
            )),
            _ => Err(Error::Malformed),
        }
    }

    /// Reads a host command (any request frame the scanner accepts).
    pub fn command(&self) -> Result<Command, Error> {
        Ok(match (self.opcode, self.payload) {
            (Opcode::Trigger, []) => Command::Trigger,
            (Opcode::TriggerStop, []) => Command::TriggerStop,
            (Opcode::Beep, [0x00]) => Command::Beep(BeepKind::GoodRead),
            (Opcode::Beep, [0x01]) => Command::Beep(BeepKind::Error),
            (Opcode::Enable, []) => Command::Enable,
            (Opcode::Disable, []) => Command::Disable,
            (Opcode::SetParam, _) => {
                let (param, value) = self.param_value()?;
                Command::SetParam(param, value)
            }
            (Opcode::GetParam, [param]) => {
                Command::GetParam(Param::from_byte(*param).ok_or(Error::Malformed)?)
            }
            (Opcode::GetVersion, []) => Command::GetVersion,
            _ => return Err(Error::Malformed),
        })
    }
}

/// The payload of a `ScanData` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan<'a> {
    pub aim: AimId,
    pub data: &'a [u8],
}

/// A host command, as the scanner receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Trigger,
    TriggerStop,
    Beep(BeepKind),
    Enable,
    Disable,
    SetParam(Param, u16),
    GetParam(Param),
    GetVersion,
}

impl Command {
    /// The request frame for this command (payload written into `scratch`).
    pub fn frame<'a>(&self, seq: u8, scratch: &'a mut [u8; 3]) -> Frame<'a> {
        let (opcode, len) = match *self {
            Self::Trigger => (Opcode::Trigger, 0),
            Self::TriggerStop => (Opcode::TriggerStop, 0),
            Self::Beep(kind) => {
                scratch[0] = kind as u8;
                (Opcode::Beep, 1)
            }
            Self::Enable => (Opcode::Enable, 0),
            Self::Disable => (Opcode::Disable, 0),
            Self::SetParam(param, value) => {
                scratch[0] = param as u8;
                scratch[1..3].copy_from_slice(&value.to_be_bytes());
                (Opcode::SetParam, 3)
            }
            Self::GetParam(param) => {
                scratch[0] = param as u8;
                (Opcode::GetParam, 1)
            }
            Self::GetVersion => (Opcode::GetVersion, 0),
        };
        Frame::new(opcode, seq, &scratch[..len])
    }
}

/// Encodes `frame` for the wire (COBS + trailing delimiter) into `out`; returns the byte count.
pub fn encode(frame: &Frame<'_>, out: &mut [u8]) -> Result<usize, Error> {
    let len = u8::try_from(frame.payload.len()).map_err(|_| Error::PayloadTooLong)?;
    let header = [frame.opcode as u8, frame.seq, frame.status.0, len];
    let mut digest = CRC.digest();
    digest.update(&header);
    digest.update(frame.payload);
    let crc = digest.finalize().to_be_bytes();
    let mut encoder = cobs::CobsEncoder::new(out);
    encoder
        .push(&header)
        .and_then(|()| encoder.push(frame.payload))
        .and_then(|()| encoder.push(&crc))
        .map_err(|_| Error::BufferTooSmall)?;
    let written = encoder.finalize();
    let delimiter = out.get_mut(written).ok_or(Error::BufferTooSmall)?;
    *delimiter = DELIMITER;
    Ok(written + 1)
}

/// Encodes a `ScanData` frame from an AIM id and data without a separate payload buffer.
pub fn encode_scan(
    aim: AimId,
    data: &[u8],
    seq: u8,
    status: Status,
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut payload = [0u8; MAX_PAYLOAD];
    let total = 3 + data.len();
    if total > MAX_PAYLOAD {
        return Err(Error::PayloadTooLong);
    }
    payload[..3].copy_from_slice(aim.as_bytes());
    payload[3..total].copy_from_slice(data);
    encode(
        &Frame {
            opcode: Opcode::ScanData,
            seq,
            status,
            payload: &payload[..total],
        },
        out,
    )
}

/// Checks a decoded (un-COBSed) frame and splits it into fields.
pub fn parse_raw(raw: &[u8]) -> Result<Frame<'_>, Error> {
    if raw.len() < HEADER_LEN + CRC_LEN {
        return Err(Error::Truncated);
    }
    let (body, crc) = raw.split_at(raw.len() - CRC_LEN);
    if CRC.checksum(body) != u16::from_be_bytes([crc[0], crc[1]]) {
        return Err(Error::Checksum);
    }
    let payload = &body[HEADER_LEN..];
    if usize::from(body[3]) != payload.len() {
        return Err(Error::Length);
    }
    let opcode = Opcode::from_byte(body[0]).ok_or(Error::UnknownOpcode {
        opcode: body[0],
        seq: body[1],
    })?;
    Ok(Frame {
        opcode,
        seq: body[1],
        status: Status(body[2]),
        payload,
    })
}

/// Incremental byte-stream parser: push bytes as they arrive, get frames at each delimiter.
///
/// Damaged frames come out as errors (answer them with NAK `Resend`); the decoder is then ready
/// for the next frame. Empty frames (repeated delimiters) are skipped, so a sender may prefix a
/// frame with `0x00` to flush a partial frame at the receiver.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: [u8; MAX_ENCODED],
    len: usize,
    overflow: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// An empty decoder.
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_ENCODED],
            len: 0,
            overflow: false,
        }
    }

    /// Drops any partial frame.
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    /// Takes one byte; at a delimiter returns the frame that ended (or why it is invalid).
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame<'_>, Error>> {
        if byte != DELIMITER {
            if self.len < self.buf.len() {
                self.buf[self.len] = byte;
                self.len += 1;
            } else {
                self.overflow = true;
            }
            return None;
        }
        let len = core::mem::take(&mut self.len);
        if core::mem::take(&mut self.overflow) {
            return Some(Err(Error::Oversized));
        }
        if len == 0 {
            return None;
        }
        Some(
            cobs::decode_in_place(&mut self.buf[..len])
                .map_err(|_| Error::Framing)
                .and_then(|n| parse_raw(&self.buf[..n])),
        )
    }

    /// Takes bytes until a frame ends; returns how many bytes were used and the frame, if any.
    pub fn feed(&mut self, bytes: &[u8]) -> (usize, Option<Result<Frame<'_>, Error>>) {
        for (i, &byte) in bytes.iter().enumerate() {
            if byte == DELIMITER && (self.len > 0 || self.overflow) {
                return (i + 1, self.push(byte));
            }
            let _ = self.push(byte);
        }
        (bytes.len(), None)
    }
}

/// An owned copy of a frame (for code that keeps frames past the decoder's next byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameBuf {
    pub opcode: Opcode,
    pub seq: u8,
    pub status: Status,
    pub payload: heapless::Vec<u8, MAX_PAYLOAD>,
}

impl FrameBuf {
    /// Copies a frame.
    pub fn from_frame(frame: &Frame<'_>) -> Self {
        let mut payload = heapless::Vec::new();
        // A Frame's payload never exceeds MAX_PAYLOAD (the len byte bounds it).
        let _ = payload.extend_from_slice(frame.payload);
        Self {
            opcode: frame.opcode,
            seq: frame.seq,
            status: frame.status,
            payload,
        }
    }

    /// Borrows it back as a [`Frame`].
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            opcode: self.opcode,
            seq: self.seq,
            status: self.status,
            payload: &self.payload,
        }
    }
}

/// What [`Outbox::poll`] asks the caller to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxPoll<'a> {
    /// Nothing outstanding.
    Idle,
    /// Waiting for the answer.
    Waiting,
    /// Write these bytes (a retransmission with the retransmit bit set).
    Retransmit(&'a [u8]),
    /// No answer after all retries: the request is dropped.
    GaveUp,
}

/// How an outstanding request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// ACK, or the reply frame of a query.
    Accepted,
    /// NAK with this reason (other than `Resend`, which retransmits).
    Refused(NakReason),
}

/// The sending half of stop-and-wait: one outstanding request, retransmitted on timeout.
///
/// Both ends use it: the scanner for `ScanData`, the host for commands.
#[derive(Debug, Clone)]
pub struct Outbox {
    opcode: Opcode,
    seq: u8,
    payload: heapless::Vec<u8, MAX_PAYLOAD>,
    wire: [u8; MAX_ENCODED],
    wire_len: usize,
    next_seq: u8,
    deadline_ms: u64,
    retries_left: u8,
    active: bool,
    /// Wait before a retransmission.
    pub ack_timeout_ms: u32,
    /// Retransmissions before giving up.
    pub max_retries: u8,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    /// An idle outbox with the default timeout and retries.
    pub const fn new() -> Self {
        Self {
            opcode: Opcode::Ack,
            seq: 0,
            payload: heapless::Vec::new(),
            wire: [0; MAX_ENCODED],
            wire_len: 0,
            next_seq: 0,
            deadline_ms: 0,
            retries_left: 0,
            active: false,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Whether a request is waiting for its answer.
    pub fn is_busy(&self) -> bool {
        self.active
    }

    /// Queues a new request (a fresh seq) and returns the bytes to write now.
    pub fn send(&mut self, opcode: Opcode, payload: &[u8], now_ms: u64) -> Result<&[u8], Error> {
        if self.active {
            return Err(Error::Busy);
        }
        self.payload.clear();
        self.payload
            .extend_from_slice(payload)
            .map_err(|()| Error::PayloadTooLong)?;
        self.opcode = opcode;
        self.seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.retries_left = self.max_retries;
        self.active = true;
        match self.transmit(Status::NONE, now_ms) {
            Ok(()) => Ok(&self.wire[..self.wire_len]),
            Err(e) => {
                self.active = false;
                Err(e)
            }
        }
    }

    fn transmit(&mut self, status: Status, now_ms: u64) -> Result<(), Error> {
        let frame = Frame {
            opcode: self.opcode,
            seq: self.seq,
            status,
            payload: &self.payload,
        };
        self.wire_len = encode(&frame, &mut self.wire)?;
        self.deadline_ms = now_ms + u64::from(self.ack_timeout_ms);
        Ok(())
    }

    /// Seq of the outstanding request.
    pub fn seq(&self) -> u8 {
        self.seq
    }

    /// Offers a received response. Returns `Some` when it answers the outstanding request;
    /// a NAK `Resend` instead makes the next [`poll`](Self::poll) retransmit at once.
    pub fn on_response(&mut self, frame: &Frame<'_>, now_ms: u64) -> Option<Answer> {
        if !self.active || !frame.opcode.is_response() {
            return None;
        }
        if frame.opcode == Opcode::Nak {
            let reason = frame.nak_reason().unwrap_or(NakReason::BadContext);
            if reason == NakReason::Resend {
                // Damaged frames carry no trustworthy seq: resend whatever is outstanding.
                self.deadline_ms = now_ms;
                return None;
            }
            if frame.seq != self.seq {
                return None;
            }
            self.active = false;
            return Some(Answer::Refused(reason));
        }
        if frame.seq != self.seq {
            return None;
        }
        self.active = false;
        Some(Answer::Accepted)
    }

    /// Drives retransmission from the clock.
    pub fn poll(&mut self, now_ms: u64) -> OutboxPoll<'_> {
        if !self.active {
            return OutboxPoll::Idle;
        }
        if now_ms < self.deadline_ms {
            return OutboxPoll::Waiting;
        }
        if self.retries_left == 0 {
            self.active = false;
            return OutboxPoll::GaveUp;
        }
        self.retries_left -= 1;
        match self.transmit(Status(Status::RETRANSMIT), now_ms) {
            Ok(()) => OutboxPoll::Retransmit(&self.wire[..self.wire_len]),
            Err(_) => {
                self.active = false;
                OutboxPoll::GaveUp
            }
        }
    }

    /// Abandons the outstanding request.
    pub fn cancel(&mut self) {
        self.active = false;
    }
}

/// The receiving half: recognises a retransmitted request so it is answered again but not
/// acted on twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inbox {
    last_seq: Option<u8>,
}

impl Inbox {
    /// A fresh inbox.
    pub const fn new() -> Self {
        Self { last_seq: None }
    }

    /// Records a received request; `false` means it duplicates the previous one (retransmit bit
    /// set, same seq): answer it again, do not act on it.
    pub fn accept(&mut self, frame: &Frame<'_>) -> bool {
        let duplicate = frame.status.is_retransmit() && self.last_seq == Some(frame.seq);
        self.last_seq = Some(frame.seq);
        !duplicate
    }
}
