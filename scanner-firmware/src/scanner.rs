//! The scanner's state machine: decode sessions by trigger, host command or presence; reading
//! scanlines (with exposure retry) or the 2-D engine's SSI packets; validating; re-read
//! suppression; beeper and LEDs; and output over the host link or USB HID.
//!
//! Driven entirely by [`Scanner::poll`] with the current time: nothing waits or sleeps, so the
//! same core runs from a bare-metal main loop, an RTIC task or the host simulator.

use embedded_io::{Read, ReadReady, Write};

use crate::aim::AimId;
use crate::code128::{Code128Config, LineRead, TriggerVotes};
use crate::hal::{Beep, Beeper, Clock, HidReports, Inputs, Led, Leds, LinearSensor};
use crate::hid::{HidKind, nth_report};
use crate::host_link::{
    Answer, Command, DEFAULT_ACK_TIMEOUT_MS, DEFAULT_MAX_RETRIES, Decoder, Frame, Inbox,
    MAX_ENCODED, MAX_SCAN_DATA, NakReason, Opcode, Outbox, OutboxPoll, Param, encode,
};
use crate::scanline::{Edges, Exposure, MAX_SAMPLES};
use crate::ssi::{self, DecodeAssembler, PacketReader};
use crate::validate::{self, Reject};

/// Silence after which a partial SSI packet from the engine is dropped.
const ENGINE_INTER_BYTE_TIMEOUT_MS: u64 = 50;

/// How decode sessions start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerMode {
    /// Scan while the trigger is held, until a read or the session timeout.
    Manual = 0,
    /// Scan after the host's `Trigger` command, until a read, `TriggerStop` or the timeout.
    Host = 1,
    /// Scan whenever the presence sensor sees something (hands-free).
    Presentation = 2,
}

/// Where decoded symbols go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// The framed serial host link (`PROTOCOL.md`).
    HostLink,
    /// USB HID POS Scanned Data Reports.
    HidPos,
    /// USB boot keyboard (wedge); labels outside `[0-9A-Z]` are rejected.
    Wedge,
}

/// Settings; the host link can change most of them (`SetParam`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub mode: TriggerMode,
    pub interface: Interface,
    /// The same symbol is not output again while it keeps being seen within this time.
    pub reread_timeout_ms: u32,
    pub session_timeout_ms: u32,
    pub beeper: bool,
    pub ack_timeout_ms: u32,
    pub max_retries: u8,
    /// How long the good/bad LED stays lit.
    pub led_ms: u32,
    pub exposure_min_us: u32,
    pub exposure_max_us: u32,
    pub code128: Code128Config,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: TriggerMode::Manual,
            interface: Interface::HostLink,
            reread_timeout_ms: 500,
            session_timeout_ms: 9_900,
            beeper: true,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
            max_retries: DEFAULT_MAX_RETRIES,
            led_ms: 300,
            exposure_min_us: 50,
            exposure_max_us: 20_000,
            code128: Code128Config::default(),
        }
    }
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Symbols output (host link frames sent or HID labels queued).
    pub sent: u32,
    /// Symbols the host ACKed.
    pub acknowledged: u32,
    /// Symbols rejected by validation.
    pub rejected: u32,
    /// Sightings suppressed as re-reads.
    pub suppressed: u32,
    /// Scan frames the host never answered.
    pub unanswered: u32,
    /// Scanlines decoded (with or without a symbol).
    pub lines: u32,
    /// Exposure changes.
    pub exposure_changes: u32,
    /// Damaged frames or packets received.
    pub damaged: u32,
}

/// What happened to the latest symbol, for the simulator's log and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Sent(AimId),
    Rejected(Reject),
    HostAcked,
    HostRefused(NakReason),
    HostSilent,
}

#[derive(Debug, Clone)]
struct Sighting {
    aim: AimId,
    data: heapless::Vec<u8, MAX_SCAN_DATA>,
    at_ms: u64,
}

#[derive(Debug, Clone)]
struct HidLabel {
    aim: AimId,
    data: heapless::Vec<u8, MAX_SCAN_DATA>,
    next: usize,
    kind: HidKind,
}

/// The firmware core, owning its devices.
#[derive(Debug)]
pub struct Scanner<S, E, H, U, I, B, L> {
    pub sensor: S,
    pub engine: E,
    pub host: H,
    pub usb: U,
    pub inputs: I,
    pub beeper: B,
    pub leds: L,
    config: Config,
    enabled: bool,
    session_since: Option<u64>,
    trigger_was_pressed: bool,
    exposure_us: u32,
    line: [u8; MAX_SAMPLES],
    edges: Edges,
    /// The per-character votes of this session's lines (`code128::read_lines`, line by line).
    trigger_votes: TriggerVotes,
    host_decoder: Decoder,
    outbox: Outbox,
    inbox: Inbox,
    last_answer: (Opcode, u8),
    engine_reader: PacketReader,
    engine_byte_at: u64,
    /// The last command sent to the engine, resent if the engine NAKs it with "resend".
    engine_last_command: Option<u8>,
    assembler: DecodeAssembler,
    last_sighting: Option<Sighting>,
    hid_label: Option<HidLabel>,
    good_led_until: Option<u64>,
    bad_led_until: Option<u64>,
    last_event: Option<Event>,
    stats: Stats,
}

impl<S, E, H, U, I, B, L> Scanner<S, E, H, U, I, B, L>
where
    S: LinearSensor,
    E: Read + ReadReady + Write,
    H: Read + ReadReady + Write,
    U: HidReports,
    I: Inputs,
    B: Beeper,
    L: Leds,
{
    /// A scanner with the given devices and settings.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sensor: S,
        engine: E,
        host: H,
        usb: U,
        inputs: I,
        beeper: B,
        leds: L,
        config: Config,
    ) -> Self {
        let mut outbox = Outbox::new();
        outbox.ack_timeout_ms = config.ack_timeout_ms;
        outbox.max_retries = config.max_retries;
        let exposure_us = 1_000u32.clamp(config.exposure_min_us, config.exposure_max_us);
        let mut scanner = Self {
            sensor,
            engine,
            host,
            usb,
            inputs,
            beeper,
            leds,
            config,
            enabled: true,
            session_since: None,
            trigger_was_pressed: false,
            exposure_us,
            line: [0; MAX_SAMPLES],
            edges: Edges::new(),
            trigger_votes: TriggerVotes::new(),
            host_decoder: Decoder::new(),
            outbox,
            inbox: Inbox::new(),
            last_answer: (Opcode::Ack, 0),
            engine_reader: PacketReader::new(),
            engine_byte_at: 0,
            engine_last_command: None,
            assembler: DecodeAssembler::new(),
            last_sighting: None,
            hid_label: None,
            good_led_until: None,
            bad_led_until: None,
            last_event: None,
            stats: Stats::default(),
        };
        let _ = scanner.sensor.set_exposure_us(exposure_us);
        scanner
    }

    /// Current settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether a decode session is running.
    pub fn in_session(&self) -> bool {
        self.session_since.is_some()
    }

    /// Current sensor exposure.
    pub fn exposure_us(&self) -> u32 {
        self.exposure_us
    }

    /// Takes the latest event (read, reject, ACK…).
    pub fn take_event(&mut self) -> Option<Event> {
        self.last_event.take()
    }

    /// Whether everything output so far has been delivered (no frame awaiting its ACK, no HID
    /// reports pending).
    pub fn is_idle(&self) -> bool {
        !self.outbox.is_busy() && self.hid_label.is_none()
    }

    /// Runs one step at the time the clock reads now.
    pub fn tick(&mut self, clock: &mut impl Clock) {
        let now = clock.now_ms();
        self.poll(now);
    }

    /// Runs one step: host link, engine, sessions, one scanline, outputs, indicators.
    pub fn poll(&mut self, now_ms: u64) {
        self.poll_host(now_ms);
        self.poll_outbox(now_ms);
        self.poll_hid();
        self.poll_session(now_ms);
        self.poll_engine(now_ms);
        self.poll_sensor(now_ms);
        self.poll_leds(now_ms);
    }

    fn poll_host(&mut self, now_ms: u64) {
        let mut buf = [0u8; 64];
        while self.host.read_ready().unwrap_or(false) {
            let n = match self.host.read(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (used, result) = self.host_decoder.feed(rest);
                rest = &rest[used..];
                let Some(result) = result else { continue };
                match result {
                    Ok(frame) => {
                        let frame = crate::host_link::FrameBuf::from_frame(&frame);
                        self.on_host_frame(&frame.as_frame(), now_ms);
                    }
                    Err(crate::Error::UnknownOpcode { seq, .. }) => {
                        self.stats.damaged += 1;
                        self.answer(Opcode::Nak, seq, &[NakReason::BadContext as u8]);
                    }
                    Err(_) => {
                        self.stats.damaged += 1;
                        self.answer(Opcode::Nak, 0, &[NakReason::Resend as u8]);
                    }
                }
            }
        }
    }

    fn answer(&mut self, opcode: Opcode, seq: u8, payload: &[u8]) {
        let mut wire = [0u8; MAX_ENCODED];
        if let Ok(n) = encode(&Frame::new(opcode, seq, payload), &mut wire) {
            let _ = self.host.write_all(&wire[..n]);
            let _ = self.host.flush();
        }
    }

    fn on_host_frame(&mut self, frame: &Frame<'_>, now_ms: u64) {
        if frame.opcode.is_response() {
            match self.outbox.on_response(frame, now_ms) {
                Some(Answer::Accepted) => {
                    self.stats.acknowledged += 1;
                    self.last_event = Some(Event::HostAcked);
                }
                Some(Answer::Refused(reason)) => {
                    self.last_event = Some(Event::HostRefused(reason));
                    self.signal_bad(now_ms);
                }
                None => {}
            }
            return;
        }
        let Ok(command) = frame.command() else {
            self.answer(Opcode::Nak, frame.seq, &[NakReason::BadContext as u8]);
            return;
        };
        if !self.inbox.accept(frame) {
            // A retransmission of the request just handled: answer again, do not act again.
            let (opcode, reason) = self.last_answer;
            if opcode == Opcode::Nak {
                self.answer(Opcode::Nak, frame.seq, &[reason]);
            } else if matches!(command, Command::GetParam(_) | Command::GetVersion) {
                self.reply_query(command, frame.seq);
            } else {
                self.answer(Opcode::Ack, frame.seq, &[]);
            }
            return;
        }
        let outcome = self.execute(command, now_ms);
        match outcome {
            Ok(()) if matches!(command, Command::GetParam(_) | Command::GetVersion) => {
                self.last_answer = (Opcode::Ack, 0);
                self.reply_query(command, frame.seq);
            }
            Ok(()) => {
                self.last_answer = (Opcode::Ack, 0);
                self.answer(Opcode::Ack, frame.seq, &[]);
            }
            Err(reason) => {
                self.last_answer = (Opcode::Nak, reason as u8);
                self.answer(Opcode::Nak, frame.seq, &[reason as u8]);
            }
        }
    }

    fn reply_query(&mut self, command: Command, seq: u8) {
        match command {
            Command::GetParam(param) => {
                let value = self.param(param).to_be_bytes();
                self.answer(Opcode::ParamValue, seq, &[param as u8, value[0], value[1]]);
            }
            _ => self.answer(Opcode::Version, seq, crate::VERSION.as_bytes()),
        }
    }

    fn execute(&mut self, command: Command, now_ms: u64) -> Result<(), NakReason> {
        match command {
            Command::Trigger => {
                if !self.enabled {
                    return Err(NakReason::Denied);
                }
                self.start_session(now_ms);
            }
            Command::TriggerStop => self.end_session(),
            Command::Beep(kind) => self.beeper.beep(match kind {
                crate::host_link::BeepKind::GoodRead => Beep::GoodRead,
                crate::host_link::BeepKind::Error => Beep::Error,
            }),
            Command::Enable => self.enabled = true,
            Command::Disable => {
                self.enabled = false;
                self.end_session();
            }
            Command::SetParam(param, value) => self.set_param(param, value)?,
            Command::GetParam(_) | Command::GetVersion => {}
        }
        Ok(())
    }

    fn param(&self, param: Param) -> u16 {
        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        match param {
            Param::TriggerMode => self.config.mode as u16,
            Param::RereadTimeoutMs => clamp(self.config.reread_timeout_ms),
            Param::SessionTimeoutMs => clamp(self.config.session_timeout_ms),
            Param::AckTimeoutMs => clamp(self.config.ack_timeout_ms),
            Param::MaxRetries => u16::from(self.config.max_retries),
            Param::Beeper => u16::from(self.config.beeper),
        }
    }

    /// Changes a setting (ranges as in `PROTOCOL.md`).
    pub fn set_param(&mut self, param: Param, value: u16) -> Result<(), NakReason> {
        let v = u32::from(value);
        match param {
            Param::TriggerMode => {
                self.config.mode = match value {
                    0 => TriggerMode::Manual,
                    1 => TriggerMode::Host,
                    2 => TriggerMode::Presentation,
                    _ => return Err(NakReason::Denied),
                };
                self.end_session();
            }
            Param::RereadTimeoutMs if v <= 30_000 => self.config.reread_timeout_ms = v,
            Param::SessionTimeoutMs if (100..=30_000).contains(&v) => {
                self.config.session_timeout_ms = v;
            }
            Param::AckTimeoutMs if (20..=5_000).contains(&v) => {
                self.config.ack_timeout_ms = v;
                self.outbox.ack_timeout_ms = v;
            }
            Param::MaxRetries if v <= 10 => {
                self.config.max_retries = value as u8;
                self.outbox.max_retries = value as u8;
            }
            Param::Beeper if v <= 1 => self.config.beeper = v == 1,
            _ => return Err(NakReason::Denied),
        }
        Ok(())
    }

    fn poll_outbox(&mut self, now_ms: u64) {
        match self.outbox.poll(now_ms) {
            OutboxPoll::Retransmit(bytes) => {
                let _ = self.host.write_all(bytes);
                let _ = self.host.flush();
            }
            OutboxPoll::GaveUp => {
                self.stats.unanswered += 1;
                self.last_event = Some(Event::HostSilent);
                self.signal_bad(now_ms);
            }
            OutboxPoll::Idle | OutboxPoll::Waiting => {}
        }
    }

    fn poll_hid(&mut self) {
        let Some(label) = self.hid_label.as_mut() else {
            return;
        };
        let mut report = [0u8; 64];
        loop {
            let Some(len) = nth_report(label.kind, label.aim, &label.data, label.next, &mut report)
            else {
                self.hid_label = None;
                return;
            };
            if !self.usb.send_report(&report[..len]) {
                return;
            }
            label.next += 1;
        }
    }

    fn start_session(&mut self, now_ms: u64) {
        if self.session_since.is_none() {
            self.session_since = Some(now_ms);
            self.trigger_votes.clear();
            self.engine_command(ssi::opcode::START_DECODE);
        }
    }

    fn end_session(&mut self) {
        if self.session_since.take().is_some() {
            self.engine_command(ssi::opcode::STOP_DECODE);
        }
    }

    fn engine_command(&mut self, opcode: u8) {
        let mut wire = [0u8; 8];
        let packet = ssi::Packet {
            opcode,
            source: ssi::SOURCE_HOST,
            status: 0,
            data: &[],
        };
        if let Ok(n) = packet.build(&mut wire) {
            let _ = self.engine.write_all(&wire[..n]);
            self.engine_last_command = Some(opcode);
        }
    }

    fn poll_session(&mut self, now_ms: u64) {
        let pressed = self.inputs.trigger_pressed();
        let pressed_now = pressed && !self.trigger_was_pressed;
        self.trigger_was_pressed = pressed;
        if !self.enabled {
            self.end_session();
            return;
        }
        match self.config.mode {
            TriggerMode::Manual => {
                if pressed_now {
                    self.start_session(now_ms);
                } else if !pressed {
                    self.end_session();
                }
            }
            TriggerMode::Presentation => {
                if self.inputs.object_present() {
                    self.start_session(now_ms);
                    // Hands-free scanning has no timeout while something is presented.
                    self.session_since = Some(now_ms);
                } else {
                    self.end_session();
                }
            }
            TriggerMode::Host => {}
        }
        if let Some(since) = self.session_since
            && now_ms.saturating_sub(since) >= u64::from(self.config.session_timeout_ms)
        {
            self.end_session();
        }
    }

    /// Whether a new symbol can be taken now (a session runs and the last one is delivered).
    fn ready_for_symbol(&self) -> bool {
        self.enabled && self.session_since.is_some() && self.is_idle()
    }

    fn poll_engine(&mut self, now_ms: u64) {
        // A partial packet followed by silence was line noise: resynchronise.
        if self.engine_reader.in_packet()
            && now_ms.saturating_sub(self.engine_byte_at) > ENGINE_INTER_BYTE_TIMEOUT_MS
        {
            self.engine_reader.reset();
        }
        let mut buf = [0u8; 64];
        while self.engine.read_ready().unwrap_or(false) {
            let n = match self.engine.read(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            self.engine_byte_at = now_ms;
            for &byte in &buf[..n] {
                let Some(result) = self.engine_reader.push(byte) else {
                    continue;
                };
                let mut wire = [0u8; 8];
                let message = match result {
                    Ok(packet) if packet.source == ssi::SOURCE_DECODER => {
                        let assembled = if packet.opcode == ssi::opcode::CMD_ACK {
                            Ok(None)
                        } else if packet.opcode == ssi::opcode::CMD_NAK {
                            // The engine got our command damaged: send it again (once per NAK).
                            if packet.data.first() == Some(&ssi::nak::RESEND)
                                && let Some(opcode) = self.engine_last_command.take()
                            {
                                self.engine_command(opcode);
                            }
                            Ok(None)
                        } else {
                            if let Ok(n) = ssi::host_ack(&mut wire) {
                                let _ = self.engine.write_all(&wire[..n]);
                            }
                            self.assembler.push(&packet)
                        };
                        assembled.ok().flatten()
                    }
                    Ok(_) => None,
                    Err(_) => {
                        self.stats.damaged += 1;
                        if let Ok(n) = ssi::host_nak(ssi::nak::RESEND, &mut wire) {
                            let _ = self.engine.write_all(&wire[..n]);
                        }
                        None
                    }
                };
                if let Some(message) = message {
                    match message.symbol() {
                        Some((aim, data)) if self.ready_for_symbol() => {
                            self.on_symbol(aim, data, false, now_ms);
                        }
                        Some(_) => {}
                        None => {
                            if self.ready_for_symbol() {
                                self.reject(Reject::UnsupportedSymbology, now_ms);
                            }
                        }
                    }
                }
            }
        }
    }

    fn poll_sensor(&mut self, now_ms: u64) {
        if !self.ready_for_symbol() {
            return;
        }
        let len = match self.sensor.read_line(&mut self.line) {
            Ok(Some(len)) => len.min(MAX_SAMPLES),
            Ok(None) | Err(_) => return,
        };
        self.stats.lines = self.stats.lines.wrapping_add(1);
        // Light or heavy smoothing, one pass per line (each line within the same budget): in
        // turn, then whichever read more of this trigger's label. A line that reads alone
        // answers at once; otherwise its characters join the votes of the session's earlier
        // lines, which may read the label together.
        let edge_config = self.trigger_votes.next_edge_config();
        match self.trigger_votes.read(
            &self.line[..len],
            &mut self.edges,
            &edge_config,
            &self.config.code128,
        ) {
            LineRead::Symbol(decoded) => {
                let aim = if decoded.gs1 {
                    AimId::GS1_128
                } else {
                    AimId::CODE128
                };
                self.on_symbol(aim, &decoded.data, decoded.programming, now_ms);
            }
            LineRead::NoRead => {}
            LineRead::Exposure(direction) => {
                let next = match direction {
                    Exposure::TooDark => self.exposure_us.saturating_mul(2),
                    Exposure::TooBright | Exposure::Good | Exposure::Featureless => {
                        self.exposure_us / 2
                    }
                }
                .clamp(self.config.exposure_min_us, self.config.exposure_max_us);
                if next != self.exposure_us && self.sensor.set_exposure_us(next).is_ok() {
                    self.exposure_us = next;
                    self.stats.exposure_changes += 1;
                }
            }
        }
    }

    /// Suppresses a symbol seen again within the re-read timeout (each sighting restarts it).
    fn is_reread(&mut self, aim: AimId, data: &[u8], now_ms: u64) -> bool {
        let timeout = u64::from(self.config.reread_timeout_ms);
        if let Some(last) = self.last_sighting.as_mut()
            && last.aim == aim
            && last.data == data
            && now_ms.saturating_sub(last.at_ms) < timeout
        {
            last.at_ms = now_ms;
            return true;
        }
        let mut copy = heapless::Vec::new();
        let _ = copy.extend_from_slice(&data[..data.len().min(MAX_SCAN_DATA)]);
        self.last_sighting = Some(Sighting {
            aim,
            data: copy,
            at_ms: now_ms,
        });
        false
    }

    fn on_symbol(&mut self, aim: AimId, data: &[u8], programming: bool, now_ms: u64) {
        if self.is_reread(aim, data, now_ms) {
            // Not an event: a symbol left in view is seen on every line.
            self.stats.suppressed += 1;
            return;
        }
        if let Err(reason) = validate::check(aim, data, programming) {
            self.reject(reason, now_ms);
            return;
        }
        let kind = match self.config.interface {
            Interface::HostLink => None,
            Interface::HidPos => Some(HidKind::Pos),
            Interface::Wedge => Some(HidKind::Wedge),
        };
        match kind {
            None => {
                let mut payload = [0u8; 3 + MAX_SCAN_DATA];
                payload[..3].copy_from_slice(aim.as_bytes());
                payload[3..3 + data.len()].copy_from_slice(data);
                let sent = self
                    .outbox
                    .send(Opcode::ScanData, &payload[..3 + data.len()], now_ms)
                    .map(|bytes| self.host.write_all(bytes).and_then(|()| self.host.flush()));
                if !matches!(sent, Ok(Ok(()))) {
                    self.outbox.cancel();
                    self.reject(Reject::BadLength, now_ms);
                    return;
                }
            }
            Some(kind) => {
                if kind == HidKind::Wedge
                    && (validate::is_gs1(aim) || crate::hid::wedge_reports(data).is_err())
                {
                    self.reject(Reject::NotLayoutSafe, now_ms);
                    return;
                }
                let mut copy = heapless::Vec::new();
                let _ = copy.extend_from_slice(data);
                self.hid_label = Some(HidLabel {
                    aim,
                    data: copy,
                    next: 0,
                    kind,
                });
                self.poll_hid();
            }
        }
        self.stats.sent += 1;
        self.last_event = Some(Event::Sent(aim));
        if self.config.beeper {
            self.beeper.beep(Beep::GoodRead);
        }
        self.leds.set(Led::Good, true);
        self.good_led_until = Some(now_ms + u64::from(self.config.led_ms));
        if self.config.mode != TriggerMode::Presentation {
            self.end_session();
        }
    }

    fn reject(&mut self, reason: Reject, now_ms: u64) {
        self.stats.rejected += 1;
        self.last_event = Some(Event::Rejected(reason));
        self.signal_bad(now_ms);
    }

    fn signal_bad(&mut self, now_ms: u64) {
        if self.config.beeper {
            self.beeper.beep(Beep::Error);
        }
        self.leds.set(Led::Bad, true);
        self.bad_led_until = Some(now_ms + u64::from(self.config.led_ms));
    }

    fn poll_leds(&mut self, now_ms: u64) {
        if self.good_led_until.is_some_and(|t| now_ms >= t) {
            self.good_led_until = None;
            self.leds.set(Led::Good, false);
        }
        if self.bad_led_until.is_some_and(|t| now_ms >= t) {
            self.bad_led_until = None;
            self.leds.set(Led::Bad, false);
        }
    }
}
