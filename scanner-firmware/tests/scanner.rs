//! The scanner state machine against simulated hardware: sessions, decoding, validation,
//! re-read suppression, host link exchanges, 2-D engine, HID output, exposure retry.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use ed25519_dalek::SigningKey;
use prescrypt_barcode::{PrescriptionId, Token};
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::code128::{self, Code128Config, LineRead};
use prescrypt_scanner_firmware::hal::{Absent, Beep, Led};
use prescrypt_scanner_firmware::hid::PosAssembler;
use prescrypt_scanner_firmware::host_link::{
    Command, Decoder, Frame, FrameBuf, MAX_ENCODED, NakReason, Opcode, Param, Status, encode,
};
use prescrypt_scanner_firmware::scanline::{EdgeConfig, Edges};
use prescrypt_scanner_firmware::scanner::{Config, Event, Interface, Scanner, TriggerMode};
use prescrypt_scanner_firmware::sim::devices::{
    MemoryPort, Scene, SimClock, SimEngine, SimIndicators, SimInputs, SimSensor, SimUsb,
};
use prescrypt_scanner_firmware::sim::optics::{
    Optics, code128_modules, code128_modules_from_values, gs1_128_modules, with_blotted_character,
};
use prescrypt_scanner_firmware::ssi;
use prescrypt_scanner_firmware::validate::Reject;

const ID: &str = "D7AC09A999684BA59C";

type Device =
    Scanner<SimSensor, MemoryPort, MemoryPort, SimUsb, SimInputs, SimIndicators, SimIndicators>;

struct Rig {
    scanner: Device,
    clock: SimClock,
    scene: Rc<RefCell<Scene>>,
    inputs: SimInputs,
    indicators: SimIndicators,
    host: MemoryPort,
    host_decoder: Decoder,
    engine: SimEngine,
    usb: SimUsb,
    host_seq: u8,
}

impl Rig {
    fn new(config: Config) -> Self {
        let clock = SimClock::default();
        clock.set(1_000);
        let scene = Rc::new(RefCell::new(Scene {
            modules: None,
            rows: Vec::new(),
            optics: Optics {
                module_samples: 3.0,
                blur: 0.7,
                samples: 2048,
                ..Optics::default()
            },
        }));
        let inputs = SimInputs::default();
        let indicators = SimIndicators {
            clock: clock.clone(),
            ..SimIndicators::default()
        };
        let (host, device_host) = MemoryPort::pair();
        let (engine_port, device_engine) = MemoryPort::pair();
        let usb = SimUsb::default();
        let scanner = Scanner::new(
            SimSensor::new(scene.clone(), clock.clone()),
            device_engine,
            device_host,
            usb.clone(),
            inputs.clone(),
            indicators.clone(),
            indicators.clone(),
            config,
        );
        Self {
            scanner,
            clock,
            scene,
            inputs,
            indicators,
            host,
            host_decoder: Decoder::new(),
            engine: SimEngine::new(engine_port),
            usb,
            host_seq: 0,
        }
    }

    fn show(&self, modules: Vec<bool>) {
        self.scene.borrow_mut().modules = Some(modules);
    }

    fn hide(&self) {
        let mut scene = self.scene.borrow_mut();
        scene.modules = None;
        scene.rows.clear();
    }

    /// A label whose consecutive lines cross `rows` in turn (blots at different heights).
    fn show_rows(&self, rows: Vec<Vec<bool>>) {
        let mut scene = self.scene.borrow_mut();
        scene.modules = Some(rows[0].clone());
        scene.rows = rows;
    }

    /// Whether the sensor's line through `modules` reads alone with either edge setting.
    fn reads_alone(&self, modules: &[bool]) -> bool {
        let optics = self.scene.borrow().optics.clone();
        let mut edges = Edges::new();
        (1..=4).any(|seed| {
            let line = Optics {
                seed,
                ..optics.clone()
            }
            .scanline(modules);
            [EdgeConfig::SHARP, EdgeConfig::SMOOTH]
                .iter()
                .any(|edge_config| {
                    matches!(
                        code128::read_line(
                            &line,
                            &mut edges,
                            edge_config,
                            &Code128Config::default()
                        ),
                        LineRead::Symbol(_)
                    )
                })
        })
    }

    /// Runs the scanner for `ms` in 1 ms steps (the engine answers between polls).
    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.scanner.poll(self.clock.now());
            self.engine.step();
            self.clock.advance(1);
        }
    }

    /// Frames the scanner sent to the host since the last call.
    fn frames(&mut self) -> Vec<FrameBuf> {
        let bytes = self.host.take();
        let mut frames = Vec::new();
        for b in bytes {
            if let Some(result) = self.host_decoder.push(b) {
                frames.push(FrameBuf::from_frame(&result.unwrap()));
            }
        }
        frames
    }

    fn send_frame(&self, frame: &Frame<'_>) {
        let mut wire = [0u8; MAX_ENCODED];
        let n = encode(frame, &mut wire).unwrap();
        self.host.send(&wire[..n]);
    }

    fn ack(&self, seq: u8) {
        self.send_frame(&Frame::new(Opcode::Ack, seq, &[]));
    }

    /// Sends a command and returns the scanner's answer.
    fn command(&mut self, command: Command) -> FrameBuf {
        let mut scratch = [0u8; 3];
        let frame = command.frame(self.host_seq, &mut scratch);
        self.host_seq = self.host_seq.wrapping_add(1);
        self.send_frame(&frame);
        self.run(2);
        let frames = self.frames();
        assert_eq!(frames.len(), 1, "one answer to {command:?}: {frames:?}");
        frames.into_iter().next().unwrap()
    }

    fn beeps(&self) -> Vec<Beep> {
        self.indicators
            .beeps
            .borrow()
            .iter()
            .map(|(_, b)| *b)
            .collect()
    }
}

fn scan_of(frame: &FrameBuf) -> (AimId, Vec<u8>) {
    let scan = frame.as_frame().scan().unwrap();
    (scan.aim, scan.data.to_vec())
}

fn token_text() -> String {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let token = Token::sign(PrescriptionId::parse(ID).unwrap(), &key);
    token.text().as_str().to_owned()
}

#[test]
fn trigger_read_sends_the_id_once_and_the_ack_completes_it() {
    let mut rig = Rig::new(Config::default());
    rig.show(code128_modules(ID).unwrap());
    rig.run(100);
    assert!(rig.frames().is_empty(), "nothing without the trigger");
    rig.inputs.trigger.set(true);
    rig.run(100);
    let frames = rig.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, Opcode::ScanData);
    assert_eq!(frames[0].status, Status::NONE);
    assert_eq!(
        scan_of(&frames[0]),
        (AimId::CODE128, ID.as_bytes().to_vec())
    );
    assert_eq!(rig.beeps(), vec![Beep::GoodRead]);
    assert!(rig.indicators.is_lit(Led::Good));
    assert!(!rig.scanner.in_session(), "a read ends the trigger session");
    rig.ack(frames[0].seq);
    rig.run(5);
    assert_eq!(rig.scanner.take_event(), Some(Event::HostAcked));
    assert!(rig.scanner.is_idle());
    rig.run(400);
    assert!(
        !rig.indicators.is_lit(Led::Good),
        "the good-read LED goes out"
    );
    // Holding the trigger does not read again; a new pull does (after the re-read timeout).
    rig.run(600);
    assert!(rig.frames().is_empty());
    rig.inputs.trigger.set(false);
    rig.run(10);
    rig.inputs.trigger.set(true);
    rig.run(100);
    let again = rig.frames();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].seq, frames[0].seq.wrapping_add(1));
}

/// The Code 128 of `text` in code set B from its symbol values (start B = 104).
fn code_b_values(text: &str) -> Vec<u8> {
    std::iter::once(104)
        .chain(text.bytes().map(|b| b - 32))
        .collect()
}

#[test]
fn a_clean_label_answers_on_the_first_line() {
    let mut rig = Rig::new(Config::default());
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.trigger.set(true);
    rig.run(1);
    assert_eq!(rig.scanner.stats().lines, 1);
    let frames = rig.frames();
    assert_eq!(
        frames.len(),
        1,
        "sent from the first line, no waiting for votes"
    );
    assert_eq!(
        scan_of(&frames[0]),
        (AimId::CODE128, ID.as_bytes().to_vec())
    );
}

#[test]
fn a_trigger_whose_lines_none_reads_alone_is_read_by_their_votes() {
    // The printed ID with a blot at a different height on three characters: each line crosses
    // one blot, so no line reads alone, but every character is readable on some line.
    let values = code_b_values(ID);
    let clean = code128_modules_from_values(&values, 0);
    let rows: Vec<Vec<bool>> = [3, 9, 15]
        .iter()
        .map(|&c| with_blotted_character(&clean, c))
        .collect();
    let mut rig = Rig::new(Config::default());
    for row in &rows {
        assert!(!rig.reads_alone(row), "a blotted line must not read alone");
    }
    assert!(rig.reads_alone(&clean));
    rig.show_rows(rows);
    rig.inputs.trigger.set(true);
    // Six lines at 30 lines/s, under the 250 ms ACK timeout.
    rig.run(200);
    let frames = rig.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        scan_of(&frames[0]),
        (AimId::CODE128, ID.as_bytes().to_vec())
    );
    let lines = rig.scanner.stats().lines;
    assert!((2..=4).contains(&lines), "read after {lines} lines");
    assert_eq!(rig.beeps(), vec![Beep::GoodRead]);
    assert!(!rig.scanner.in_session());
}

#[test]
fn votes_that_cannot_agree_send_nothing() {
    let values = code_b_values(ID);
    let clean = code128_modules_from_values(&values, 0);
    // Every line blotted at the same character: that character is never read.
    let mut rig = Rig::new(Config::default());
    rig.show_rows(vec![with_blotted_character(&clean, 9); 3]);
    rig.inputs.trigger.set(true);
    rig.run(1_000);
    assert!(rig.frames().is_empty());
    assert!(rig.beeps().is_empty());
    assert!(
        rig.scanner.in_session(),
        "still trying while the trigger is held"
    );
    assert!(rig.scanner.stats().lines > 20);
    // Lines alternating between two different IDs, each blotted: whatever is sent is one of
    // them exactly, never a mixture of their characters.
    let other = PrescriptionId::new(0x12_3456, "A99968", 7).unwrap();
    let other_values = code_b_values(other.compact());
    let other_clean = code128_modules_from_values(&other_values, 0);
    for seed in 0..6u64 {
        let mut rig = Rig::new(Config::default());
        rig.scene.borrow_mut().optics.seed = seed;
        let a = (3 + seed as usize) % 18 + 1;
        let b = (11 + 2 * seed as usize) % 18 + 1;
        rig.show_rows(vec![
            with_blotted_character(&clean, a),
            with_blotted_character(&other_clean, b),
            with_blotted_character(&clean, b),
            with_blotted_character(&other_clean, a),
        ]);
        rig.inputs.trigger.set(true);
        rig.run(1_000);
        for frame in rig.frames() {
            let (aim, data) = scan_of(&frame);
            assert_eq!(aim, AimId::CODE128);
            assert!(
                data == ID.as_bytes() || data == other.compact().as_bytes(),
                "seed {seed}: misread {data:?}"
            );
        }
    }
}

#[test]
fn unanswered_scan_is_retransmitted_then_given_up_with_an_error_signal() {
    let mut rig = Rig::new(Config::default());
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.trigger.set(true);
    rig.run(60);
    let first = rig.frames();
    assert_eq!(first.len(), 1);
    rig.run(260);
    let second = rig.frames();
    assert_eq!(second.len(), 1);
    assert!(second[0].status.is_retransmit());
    assert_eq!(second[0].seq, first[0].seq);
    assert_eq!(second[0].payload, first[0].payload);
    rig.run(600);
    assert_eq!(rig.frames().len(), 2, "three retransmissions in all");
    rig.run(300);
    assert_eq!(rig.scanner.stats().unanswered, 1);
    assert_eq!(rig.beeps(), vec![Beep::GoodRead, Beep::Error]);
    assert!(rig.indicators.is_lit(Led::Bad));
}

#[test]
fn nak_resend_gets_an_immediate_retransmission() {
    let mut rig = Rig::new(Config::default());
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.trigger.set(true);
    rig.run(60);
    let first = rig.frames();
    rig.send_frame(&Frame::new(Opcode::Nak, 0, &[NakReason::Resend as u8]));
    rig.run(3);
    let again = rig.frames();
    assert_eq!(again.len(), 1);
    assert!(again[0].status.is_retransmit());
    assert_eq!(again[0].payload, first[0].payload);
}

#[test]
fn reread_suppression_follows_the_timeout() {
    let config = Config {
        mode: TriggerMode::Presentation,
        ..Config::default()
    };
    let mut rig = Rig::new(config);
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.present.set(true);
    rig.run(100);
    let first = rig.frames();
    assert_eq!(first.len(), 1);
    rig.ack(first[0].seq);
    // Left in view: read on every line, never sent again.
    rig.run(2_000);
    assert!(rig.frames().is_empty());
    assert!(rig.scanner.stats().suppressed > 30);
    // Away for less than the timeout: still the same presentation.
    rig.inputs.present.set(false);
    rig.run(300);
    rig.inputs.present.set(true);
    rig.run(100);
    assert!(rig.frames().is_empty());
    // Away for longer than the timeout: a new read.
    rig.inputs.present.set(false);
    rig.run(600);
    rig.inputs.present.set(true);
    rig.run(100);
    let again = rig.frames();
    assert_eq!(again.len(), 1);
    assert_eq!(scan_of(&again[0]).1, ID.as_bytes());
}

#[test]
fn reread_timeout_is_configurable_over_the_host_link() {
    let config = Config {
        mode: TriggerMode::Presentation,
        ..Config::default()
    };
    let mut rig = Rig::new(config);
    let answer = rig.command(Command::SetParam(Param::RereadTimeoutMs, 100));
    assert_eq!(answer.opcode, Opcode::Ack);
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.present.set(true);
    rig.run(100);
    let first = rig.frames();
    rig.ack(first[0].seq);
    rig.inputs.present.set(false);
    rig.run(150);
    rig.inputs.present.set(true);
    rig.run(100);
    assert_eq!(
        rig.frames().len(),
        1,
        "150 ms away exceeds a 100 ms re-read timeout"
    );
}

#[test]
fn an_id_with_a_wrong_check_character_is_rejected_and_not_sent() {
    let mut rig = Rig::new(Config::default());
    let mut wrong = ID.as_bytes().to_vec();
    *wrong.last_mut().unwrap() = if wrong[17] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).unwrap();
    assert!(PrescriptionId::parse(&wrong).is_err());
    rig.show(code128_modules(&wrong).unwrap());
    rig.inputs.trigger.set(true);
    rig.run(100);
    assert!(rig.frames().is_empty());
    assert_eq!(
        rig.scanner.take_event(),
        Some(Event::Rejected(Reject::BadCheckCharacter))
    );
    assert_eq!(rig.beeps(), vec![Beep::Error]);
    assert!(rig.indicators.is_lit(Led::Bad));
    assert!(!rig.indicators.is_lit(Led::Good));
}

#[test]
fn other_code128_data_is_forwarded_but_programming_symbols_are_not() {
    let mut rig = Rig::new(Config::default());
    rig.show(code128_modules("PJJ123C").unwrap());
    rig.inputs.trigger.set(true);
    rig.run(100);
    let frames = rig.frames();
    assert_eq!(scan_of(&frames[0]).1, b"PJJ123C");
    rig.ack(frames[0].seq);
    rig.inputs.trigger.set(false);
    rig.run(10);
    // Start B, FNC3, "AB": a reader-programming symbol.
    rig.show(code128_modules_from_values(&[104, 96, 33, 34], 0));
    rig.inputs.trigger.set(true);
    rig.run(100);
    assert!(rig.frames().is_empty());
    assert_eq!(
        rig.scanner.take_event(),
        Some(Event::Rejected(Reject::ProgrammingSymbol))
    );
}

#[test]
fn a_dim_scene_raises_the_exposure_until_it_reads() {
    let mut rig = Rig::new(Config::default());
    rig.scene.borrow_mut().optics.gain = 0.05;
    rig.show(code128_modules(ID).unwrap());
    let start = rig.scanner.exposure_us();
    rig.inputs.trigger.set(true);
    rig.run(240);
    let frames = rig.frames();
    assert_eq!(frames.len(), 1);
    assert!(rig.scanner.exposure_us() >= start * 4);
    assert!(rig.scanner.stats().exposure_changes >= 2);
}

#[test]
fn manual_session_times_out_and_stops_the_engine() {
    let mut rig = Rig::new(Config {
        session_timeout_ms: 1_000,
        ..Config::default()
    });
    rig.inputs.trigger.set(true);
    rig.run(500);
    assert!(rig.scanner.in_session());
    rig.run(600);
    assert!(!rig.scanner.in_session());
    let received = rig.engine.received.borrow().clone();
    assert_eq!(
        received,
        vec![ssi::opcode::START_DECODE, ssi::opcode::STOP_DECODE]
    );
}

#[test]
fn host_triggered_mode_reads_only_after_the_trigger_command() {
    let mut rig = Rig::new(Config {
        mode: TriggerMode::Host,
        ..Config::default()
    });
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.trigger.set(true);
    rig.run(200);
    assert!(rig.frames().is_empty());
    rig.send_frame(&Frame::new(Opcode::Trigger, 0, &[]));
    rig.run(100);
    let frames = rig.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!((frames[0].opcode, frames[0].seq), (Opcode::Ack, 0));
    assert_eq!(frames[1].opcode, Opcode::ScanData);
    assert!(
        !rig.scanner.in_session(),
        "the read ends the host-triggered session"
    );
}

#[test]
fn data_matrix_token_from_the_engine_is_acked_per_packet_and_sent_as_d1() {
    let mut rig = Rig::new(Config::default());
    let token = token_text();
    *rig.engine.symbol.borrow_mut() =
        Some((ssi::symbology::DATA_MATRIX, token.clone().into_bytes()));
    rig.engine.chunk = 50; // 131 bytes → 3 packets
    rig.inputs.trigger.set(true);
    rig.run(50);
    let frames = rig.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        scan_of(&frames[0]),
        (AimId::DATA_MATRIX, token.into_bytes())
    );
    let received = rig.engine.received.borrow().clone();
    let acks = received
        .iter()
        .filter(|&&op| op == ssi::opcode::CMD_ACK)
        .count();
    assert_eq!(acks, 3);
}

#[test]
fn data_matrix_that_is_not_a_token_or_programs_the_reader_is_rejected() {
    for (data, reason) in [
        (b"RX1NOTATOKEN".to_vec(), Reject::NotAToken),
        ([&[234u8][..], b"PARAM"].concat(), Reject::ProgrammingSymbol),
    ] {
        let mut rig = Rig::new(Config::default());
        *rig.engine.symbol.borrow_mut() = Some((ssi::symbology::DATA_MATRIX, data));
        rig.inputs.trigger.set(true);
        rig.run(50);
        assert!(rig.frames().is_empty());
        assert_eq!(rig.scanner.take_event(), Some(Event::Rejected(reason)));
        assert_eq!(rig.beeps(), vec![Beep::Error]);
    }
}

/// A pack's element string as the scanner transmits it: GTIN, expiry, batch (variable
/// length, so FNC1 → GS after it), serial.
const PACK: &[u8] = b"01095011015300031727013110AB12\x1d21SN1";

/// The same element string built from symbol values: start C, FNC1 (102), the digits in pairs,
/// code B (100) for the batch, FNC1 as separator, the serial.
fn pack_values() -> Vec<u8> {
    let mut values = vec![105, 102, 1, 9, 50, 11, 1, 53, 0, 3, 17, 27, 1, 31, 10, 100];
    values.extend(b"AB12".iter().map(|b| b - 32));
    values.push(102);
    values.extend(b"21SN1".iter().map(|b| b - 32));
    values
}

#[test]
fn a_gs1_128_pack_label_reaches_the_host_as_c1_with_fnc1_as_gs() {
    let text = std::str::from_utf8(PACK).unwrap();
    for (encoder, modules) in [
        ("rxing", gs1_128_modules(text).unwrap()),
        (
            "symbol values",
            code128_modules_from_values(&pack_values(), 0),
        ),
    ] {
        let mut rig = Rig::new(Config::default());
        rig.show(modules);
        rig.inputs.trigger.set(true);
        rig.run(100);
        let frames = rig.frames();
        assert_eq!(frames.len(), 1, "{encoder}");
        assert_eq!(
            scan_of(&frames[0]),
            (AimId::GS1_128, PACK.to_vec()),
            "{encoder}"
        );
        assert_eq!(rig.beeps(), vec![Beep::GoodRead]);
        // The host end parses what arrived as the pack it was.
        let wire = [&b"]C1"[..], PACK].concat();
        let parsed =
            prescrypt_barcode::ElementString::parse(std::str::from_utf8(&wire).unwrap()).unwrap();
        assert_eq!(parsed.gtin(), Some("09501101530003"));
        assert_eq!(parsed.batch(), Some("AB12"));
        assert_eq!(parsed.serial(), Some("SN1"));
    }
    // The same digits without FNC1 first are plain Code 128 data, not GS1.
    let mut rig = Rig::new(Config::default());
    rig.show(code128_modules("0109501101530003").unwrap());
    rig.inputs.trigger.set(true);
    rig.run(100);
    let frames = rig.frames();
    assert_eq!(
        scan_of(&frames[0]),
        (AimId::CODE128, b"0109501101530003".to_vec())
    );
}

#[test]
fn a_gs1_code_that_does_not_parse_is_refused() {
    // Wrong GTIN check digit (…0003 is right), a GTIN cut short, an impossible expiry date.
    use prescrypt_barcode::gs1::{ElementString, Gs1Error};
    for (text, reason) in [
        ("010950110153000417270131", "check digit"),
        ("01095011015300", "too short"),
        ("010950110153000317271331", "date"),
    ] {
        let why = ElementString::parse(text).unwrap_err();
        assert!(
            matches!(
                (reason, why),
                ("check digit", Gs1Error::CheckDigit { .. })
                    | ("too short", Gs1Error::TooShort { .. })
                    | ("date", Gs1Error::Date { .. })
            ),
            "{text}: {why:?}"
        );
        let mut rig = Rig::new(Config::default());
        rig.show(gs1_128_modules(text).unwrap());
        rig.inputs.trigger.set(true);
        rig.run(100);
        assert!(rig.frames().is_empty(), "{text}");
        assert_eq!(
            rig.scanner.take_event(),
            Some(Event::Rejected(Reject::NotGs1)),
            "{text}"
        );
        assert!(!rig.beeps().contains(&Beep::GoodRead));
        assert!(!rig.indicators.is_lit(Led::Good));
        assert_eq!(rig.scanner.stats().sent, 0);
    }
}

#[test]
fn gs1_128_from_the_engine_is_checked_as_gs1_too() {
    for (data, sent) in [(PACK.to_vec(), true), (b"0109501101530004".to_vec(), false)] {
        let mut rig = Rig::new(Config::default());
        *rig.engine.symbol.borrow_mut() = Some((ssi::symbology::GS1_128, data.clone()));
        rig.inputs.trigger.set(true);
        rig.run(50);
        let frames = rig.frames();
        if sent {
            assert_eq!(scan_of(&frames[0]), (AimId::GS1_128, data));
        } else {
            assert!(frames.is_empty());
            assert_eq!(
                rig.scanner.take_event(),
                Some(Event::Rejected(Reject::NotGs1))
            );
        }
    }
}

/// A medicine pack's GS1 DataMatrix (EU FMD: GTIN, serial, expiry, batch), FNC1 as GS.
const FMD_PACK: &[u8] = b"010950110153000321SN0001XYZ\x1d1727013110AB12345";

#[test]
fn a_gs1_datamatrix_from_the_engine_reaches_the_host_as_d2_and_is_checked_as_gs1() {
    let leading_fnc1 = [&[0x1D][..], FMD_PACK].concat();
    for (symbology, data, expected) in [
        // The engine's GS1 Data Matrix code type.
        (
            ssi::symbology::GS1_DATA_MATRIX,
            FMD_PACK.to_vec(),
            Ok((AimId::GS1_DATA_MATRIX, FMD_PACK.to_vec())),
        ),
        // The plain Data Matrix code type with FNC1 first, sent as GS.
        (
            ssi::symbology::DATA_MATRIX,
            leading_fnc1,
            Ok((AimId::GS1_DATA_MATRIX, FMD_PACK.to_vec())),
        ),
        // GTIN check digit wrong (…0003 is right).
        (
            ssi::symbology::GS1_DATA_MATRIX,
            b"010950110153000421SN1".to_vec(),
            Err(Reject::NotGs1),
        ),
        // The same pack data without FNC1 first is a plain Data Matrix, and not a token.
        (
            ssi::symbology::DATA_MATRIX,
            FMD_PACK.to_vec(),
            Err(Reject::NotAToken),
        ),
    ] {
        let mut rig = Rig::new(Config::default());
        *rig.engine.symbol.borrow_mut() = Some((symbology, data.clone()));
        rig.inputs.trigger.set(true);
        rig.run(50);
        let frames = rig.frames();
        match expected {
            Ok(scan) => {
                assert_eq!(frames.len(), 1, "{data:?}");
                assert_eq!(scan_of(&frames[0]), scan);
                assert_eq!(rig.beeps(), vec![Beep::GoodRead]);
            }
            Err(reason) => {
                assert!(frames.is_empty(), "{data:?}");
                assert_eq!(
                    rig.scanner.take_event(),
                    Some(Event::Rejected(reason)),
                    "{data:?}"
                );
            }
        }
    }
}

#[test]
fn hid_pos_carries_a_gs1_128_with_its_aim_id_and_gs_but_the_wedge_refuses_it() {
    let mut rig = Rig::new(Config {
        interface: Interface::HidPos,
        ..Config::default()
    });
    rig.show(code128_modules_from_values(&pack_values(), 0));
    rig.inputs.trigger.set(true);
    for _ in 0..20 {
        rig.usb.host_poll();
        rig.run(8);
    }
    let reports = rig.usb.reports.borrow().clone();
    assert_eq!(reports.len(), 1);
    assert_eq!(&reports[0][2..5], b"]C1");
    let (aim, data) = PosAssembler::default().push(&reports[0]).unwrap().unwrap();
    assert_eq!(aim, AimId::GS1_128);
    assert_eq!(&data[..], PACK);
    // The wedge types no AIM id (and no GS): GS1 data would arrive as anonymous digits.
    let mut rig = Rig::new(Config {
        interface: Interface::Wedge,
        ..Config::default()
    });
    rig.show(gs1_128_modules("0109501101530003").unwrap());
    rig.inputs.trigger.set(true);
    for _ in 0..20 {
        rig.usb.host_poll();
        rig.run(8);
    }
    assert!(rig.usb.reports.borrow().is_empty());
    assert_eq!(
        rig.scanner.take_event(),
        Some(Event::Rejected(Reject::NotLayoutSafe))
    );
}

#[test]
fn damaged_engine_packets_are_nakked() {
    let mut rig = Rig::new(Config::default());
    rig.engine
        .port
        .send(&[0x05, 0xF3, 0x00, 0x00, 0x1B, 0x00, 0x00]);
    rig.scanner.poll(rig.clock.now());
    assert_eq!(
        rig.engine.port.take(),
        vec![0x05, 0xD1, 0x04, 0x00, 0x01, 0xFF, 0x25]
    );
    assert_eq!(rig.scanner.stats().damaged, 1);
}

#[test]
fn host_commands_are_answered() {
    let mut rig = Rig::new(Config::default());
    let version = rig.command(Command::GetVersion);
    assert_eq!(version.opcode, Opcode::Version);
    assert_eq!(
        &version.payload[..],
        prescrypt_scanner_firmware::VERSION.as_bytes()
    );

    assert_eq!(
        rig.command(Command::SetParam(Param::SessionTimeoutMs, 2_000))
            .opcode,
        Opcode::Ack
    );
    let value = rig.command(Command::GetParam(Param::SessionTimeoutMs));
    assert_eq!(
        value.as_frame().param_value(),
        Ok((Param::SessionTimeoutMs, 2_000))
    );

    let denied = rig.command(Command::SetParam(Param::TriggerMode, 9));
    assert_eq!(denied.as_frame().nak_reason(), Ok(NakReason::Denied));

    assert_eq!(
        rig.command(Command::Beep(
            prescrypt_scanner_firmware::host_link::BeepKind::Error
        ))
        .opcode,
        Opcode::Ack
    );
    assert_eq!(rig.beeps(), vec![Beep::Error]);

    assert_eq!(rig.command(Command::Disable).opcode, Opcode::Ack);
    let refused = rig.command(Command::Trigger);
    assert_eq!(refused.as_frame().nak_reason(), Ok(NakReason::Denied));
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.trigger.set(true);
    rig.run(200);
    assert!(rig.frames().is_empty(), "a disabled scanner does not scan");
    assert_eq!(rig.command(Command::Enable).opcode, Opcode::Ack);
}

#[test]
fn malformed_and_unknown_host_frames_are_nakked() {
    let mut rig = Rig::new(Config::default());
    let mut wire = [0u8; MAX_ENCODED];
    let n = encode(&Frame::new(Opcode::Trigger, 4, &[]), &mut wire).unwrap();
    wire[2] ^= 0x10;
    rig.host.send(&wire[..n]);
    rig.run(2);
    let nak = rig.frames();
    assert_eq!(nak[0].as_frame().nak_reason(), Ok(NakReason::Resend));
    // A response-only opcode sent as a request, and a command with a wrong payload.
    rig.send_frame(&Frame::new(Opcode::Beep, 5, &[7]));
    rig.run(2);
    let nak = rig.frames();
    assert_eq!(nak[0].seq, 5);
    assert_eq!(nak[0].as_frame().nak_reason(), Ok(NakReason::BadContext));
}

#[test]
fn a_retransmitted_command_is_answered_but_not_repeated() {
    let mut rig = Rig::new(Config::default());
    let frame = Frame::new(Opcode::Beep, 9, &[0]);
    rig.send_frame(&frame);
    rig.run(2);
    rig.send_frame(&Frame {
        status: Status(Status::RETRANSMIT),
        ..frame
    });
    rig.run(2);
    let answers = rig.frames();
    assert_eq!(answers.len(), 2);
    assert!(
        answers
            .iter()
            .all(|a| a.opcode == Opcode::Ack && a.seq == 9)
    );
    assert_eq!(rig.beeps(), vec![Beep::GoodRead], "beeped once");
}

#[test]
fn hid_pos_mode_sends_the_token_in_three_reports() {
    let mut rig = Rig::new(Config {
        interface: Interface::HidPos,
        ..Config::default()
    });
    let token = token_text();
    *rig.engine.symbol.borrow_mut() =
        Some((ssi::symbology::DATA_MATRIX, token.clone().into_bytes()));
    rig.inputs.trigger.set(true);
    for _ in 0..50 {
        rig.usb.host_poll();
        rig.run(8);
    }
    let reports = rig.usb.reports.borrow().clone();
    assert_eq!(reports.len(), 3);
    let mut assembler = PosAssembler::default();
    let mut label = None;
    for report in &reports {
        label = assembler.push(report).unwrap();
    }
    let (aim, data) = label.unwrap();
    assert_eq!(aim, AimId::DATA_MATRIX);
    assert_eq!(&data[..], token.as_bytes());
    assert!(
        rig.frames().is_empty(),
        "nothing on the serial host link in HID mode"
    );
}

#[test]
fn wedge_mode_types_the_id_with_key_ups_and_enter() {
    let mut rig = Rig::new(Config {
        interface: Interface::Wedge,
        ..Config::default()
    });
    rig.show(code128_modules(ID).unwrap());
    rig.inputs.trigger.set(true);
    for _ in 0..100 {
        rig.usb.host_poll();
        rig.run(8);
    }
    let reports = rig.usb.reports.borrow().clone();
    assert_eq!(reports.len(), 2 * ID.len() + 2);
    assert_eq!(
        reports[0],
        vec![0x02, 0, 4 + 3, 0, 0, 0, 0, 0],
        "D = LShift + 0x07"
    );
    assert_eq!(reports[1], vec![0; 8]);
    assert_eq!(reports[3], vec![0; 8]);
    assert_eq!(reports[2 * ID.len()], vec![0, 0, 0x28, 0, 0, 0, 0, 0]);
    assert_eq!(reports[2 * ID.len() + 1], vec![0; 8]);
}

#[test]
fn presentation_mode_without_a_target_keeps_quiet() {
    let mut rig = Rig::new(Config {
        mode: TriggerMode::Presentation,
        ..Config::default()
    });
    rig.inputs.present.set(true);
    rig.hide();
    rig.run(1_000);
    assert!(rig.frames().is_empty());
    assert!(rig.beeps().is_empty());
    assert!(
        rig.scanner.in_session(),
        "still trying while the trigger is held"
    );
    let _ = Absent;
}

#[test]
fn random_bytes_on_both_serial_links_do_not_upset_the_scanner() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rig = Rig::new(Config::default());
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..300 {
        let len = rng.gen_range(0..300);
        let noise: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        rig.host.send(&noise);
        rig.engine.port.send(&noise);
        rig.scanner.poll(rig.clock.now());
        rig.clock.advance(1);
        let _ = rig.engine.port.take();
    }
    let _ = rig.frames();
    // Still works afterwards: flush partial frames/packets, then a normal read.
    rig.host.send(&[0]);
    rig.run(2);
    let _ = rig.frames();
    let version = rig.command(Command::GetVersion);
    assert_eq!(version.opcode, Opcode::Version);
}

#[test]
fn a_partial_engine_packet_is_dropped_after_silence() {
    let mut rig = Rig::new(Config::default());
    let token = token_text();
    rig.engine.port.send(&[0x40, 0xF3, 0x00]);
    rig.run(100);
    *rig.engine.symbol.borrow_mut() =
        Some((ssi::symbology::DATA_MATRIX, token.clone().into_bytes()));
    rig.inputs.trigger.set(true);
    rig.run(50);
    let frames = rig.frames();
    assert_eq!(scan_of(&frames[0]).1, token.into_bytes());
}

#[test]
fn an_engine_nak_resend_gets_the_command_again() {
    let mut rig = Rig::new(Config::default());
    rig.inputs.trigger.set(true);
    rig.scanner.poll(rig.clock.now());
    let start = rig.engine.port.take();
    assert_eq!(
        start,
        vec![0x04, 0xE4, 0x04, 0x00, 0xFF, 0x14],
        "START_DECODE"
    );
    // The engine (source 0x00) NAKs it: resend.
    let mut nak = [0u8; 8];
    let n = ssi::Packet {
        opcode: ssi::opcode::CMD_NAK,
        source: ssi::SOURCE_DECODER,
        status: 0,
        data: &[ssi::nak::RESEND],
    }
    .build(&mut nak)
    .unwrap();
    rig.engine.port.send(&nak[..n]);
    rig.clock.advance(1);
    rig.scanner.poll(rig.clock.now());
    assert_eq!(rig.engine.port.take(), start);
}

#[test]
fn tick_reads_the_clock() {
    let mut rig = Rig::new(Config::default());
    let mut clock = rig.clock.clone();
    rig.inputs.trigger.set(true);
    rig.scanner.tick(&mut clock);
    assert!(rig.scanner.in_session());
}
