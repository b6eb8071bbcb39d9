//! The host side of the host link for std programs (the pharmacy client, tests): a blocking
//! client over any `std::io::Read + Write` stream — a serial port or a pty.
//!
//! It ACKs every `ScanData` frame (once per seq, dropping retransmitted duplicates), NAKs damaged
//! frames with `Resend`, and sends commands with stop-and-wait retransmission.
//! Give the stream a short read timeout (e.g. serialport's `.timeout(20 ms)`) or make it
//! non-blocking: `TimedOut`, `WouldBlock` and `Interrupted` are treated as "no bytes yet".

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use crate::Error;
use crate::aim::AimId;
use crate::host_link::{
    Answer, Command, Decoder, Frame, FrameBuf, Inbox, MAX_ENCODED, NakReason, Opcode, Outbox,
    OutboxPoll, Param, encode,
};

/// A symbol the scanner sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    pub aim: AimId,
    pub data: Vec<u8>,
}

impl ScanRecord {
    /// The data as text, when it is UTF-8 (IDs and tokens are ASCII).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// The scanner's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// ACK.
    Ack,
    /// Answer to `GetParam`.
    ParamValue(Param, u16),
    /// Answer to `GetVersion`.
    Version(String),
}

/// Why a host-side operation failed.
#[derive(Debug)]
pub enum HostError {
    /// The stream failed.
    Io(std::io::Error),
    /// The stream reached its end (the scanner went away).
    Disconnected,
    /// The scanner refused the command.
    Refused(NakReason),
    /// No answer after all retransmissions.
    NoAnswer,
    /// A frame could not be built or an answer was malformed.
    Protocol(Error),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "scanner link I/O error: {e}"),
            Self::Disconnected => f.write_str("scanner disconnected"),
            Self::Refused(reason) => write!(f, "scanner refused the command ({reason:?})"),
            Self::NoAnswer => f.write_str("scanner did not answer"),
            Self::Protocol(e) => write!(f, "scanner link protocol error: {e}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<std::io::Error> for HostError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<Error> for HostError {
    fn from(e: Error) -> Self {
        Self::Protocol(e)
    }
}

/// Blocking host-side endpoint of the host link.
#[derive(Debug)]
pub struct HostClient<P> {
    port: P,
    decoder: Box<Decoder>,
    outbox: Box<Outbox>,
    inbox: Inbox,
    epoch: Instant,
    scans: VecDeque<ScanRecord>,
    answer: Option<Result<Reply, HostError>>,
}

impl<P: Read + Write> HostClient<P> {
    /// Wraps a connected stream.
    pub fn new(port: P) -> Self {
        Self {
            port,
            decoder: Box::default(),
            outbox: Box::default(),
            inbox: Inbox::new(),
            epoch: Instant::now(),
            scans: VecDeque::new(),
            answer: None,
        }
    }

    /// Sets how long to wait for an answer before retransmitting, and how often to retransmit.
    pub fn set_retransmit(&mut self, ack_timeout: Duration, max_retries: u8) {
        self.outbox.ack_timeout_ms = u32::try_from(ack_timeout.as_millis()).unwrap_or(u32::MAX);
        self.outbox.max_retries = max_retries;
    }

    /// The stream, back.
    pub fn into_inner(self) -> P {
        self.port
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Waits up to `timeout` for the next symbol (ACKing it); `None` on timeout.
    pub fn next_scan(&mut self, timeout: Duration) -> Result<Option<ScanRecord>, HostError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(scan) = self.scans.pop_front() {
                return Ok(Some(scan));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.pump()?;
        }
    }

    /// Sends a command and waits for its answer, retransmitting on timeout.
    pub fn command(&mut self, command: Command) -> Result<Reply, HostError> {
        let mut scratch = [0u8; 3];
        let frame = command.frame(0, &mut scratch);
        let now = self.now_ms();
        self.answer = None;
        let bytes = self.outbox.send(frame.opcode, frame.payload, now)?;
        self.port.write_all(bytes)?;
        self.port.flush()?;
        loop {
            if let Some(answer) = self.answer.take() {
                return answer;
            }
            let now = self.now_ms();
            match self.outbox.poll(now) {
                OutboxPoll::Retransmit(bytes) => {
                    self.port.write_all(bytes)?;
                    self.port.flush()?;
                }
                OutboxPoll::GaveUp => return Err(HostError::NoAnswer),
                OutboxPoll::Idle | OutboxPoll::Waiting => {}
            }
            self.pump()?;
        }
    }

    /// Starts a decode session.
    pub fn trigger(&mut self) -> Result<(), HostError> {
        self.command(Command::Trigger).map(drop)
    }

    /// The firmware version text.
    pub fn version(&mut self) -> Result<String, HostError> {
        match self.command(Command::GetVersion)? {
            Reply::Version(text) => Ok(text),
            _ => Err(HostError::Protocol(Error::Malformed)),
        }
    }

    /// Sets a parameter.
    pub fn set_param(&mut self, param: Param, value: u16) -> Result<(), HostError> {
        self.command(Command::SetParam(param, value)).map(drop)
    }

    /// Reads whatever bytes are available (one read) and handles the frames they complete.
    fn pump(&mut self) -> Result<(), HostError> {
        let mut buf = [0u8; 256];
        let n = match self.port.read(&mut buf) {
            Ok(0) => return Err(HostError::Disconnected),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => 0,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                0
            }
            Err(e) => return Err(e.into()),
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let (used, frame) = self.decoder.feed(rest);
            rest = &rest[used..];
            let reply = match frame {
                None => None,
                Some(Ok(frame)) => {
                    let frame = FrameBuf::from_frame(&frame);
                    self.handle(&frame.as_frame())
                }
                Some(Err(Error::UnknownOpcode { seq, .. })) => {
                    Some((seq, Some(NakReason::BadContext)))
                }
                Some(Err(_)) => Some((0, Some(NakReason::Resend))),
            };
            match reply {
                Some((seq, Some(reason))) => {
                    self.write_frame(&Frame::new(Opcode::Nak, seq, &[reason as u8]))?;
                }
                Some((seq, None)) => self.write_frame(&Frame::new(Opcode::Ack, seq, &[]))?,
                None => {}
            }
        }
        Ok(())
    }

    /// Handles one good frame; returns the answer to send, if any: (seq, `None` = ACK or a NAK reason).
    fn handle(&mut self, frame: &Frame<'_>) -> Option<(u8, Option<NakReason>)> {
        if frame.opcode.is_response() {
            let now = self.now_ms();
            match self.outbox.on_response(frame, now) {
                Some(Answer::Accepted) => {
                    self.answer = Some(match frame.opcode {
                        Opcode::ParamValue => frame
                            .param_value()
                            .map(|(p, v)| Reply::ParamValue(p, v))
                            .map_err(HostError::Protocol),
                        Opcode::Version => Ok(Reply::Version(
                            String::from_utf8_lossy(frame.payload).into_owned(),
                        )),
                        _ => Ok(Reply::Ack),
                    });
                }
                Some(Answer::Refused(reason)) => {
                    self.answer = Some(Err(HostError::Refused(reason)))
                }
                None => {}
            }
            return None;
        }
        if frame.opcode != Opcode::ScanData {
            return Some((frame.seq, Some(NakReason::BadContext)));
        }
        let Ok(scan) = frame.scan() else {
            return Some((frame.seq, Some(NakReason::BadContext)));
        };
        if self.inbox.accept(frame) {
            self.scans.push_back(ScanRecord {
                aim: scan.aim,
                data: scan.data.to_vec(),
            });
        }
        Some((frame.seq, None))
    }

    fn write_frame(&mut self, frame: &Frame<'_>) -> Result<(), HostError> {
        let mut wire = [0u8; MAX_ENCODED];
        let n = encode(frame, &mut wire)?;
        self.port.write_all(&wire[..n])?;
        self.port.flush()?;
        Ok(())
    }
}
