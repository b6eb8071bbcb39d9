//! Checks for `prescrypt-scanner-firmware`: the host-link decoder and encoder, the SSI packet
//! parser and reassembler, and the USB HID report builders.

use prescrypt_scanner_firmware::Error;
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::hid::{
    self, HidKind, KEY_ENTER, KEY_REPORT_LEN, POS_CHUNK, POS_REPORT_LEN, PosAssembler,
};
use prescrypt_scanner_firmware::host_link::{
    self, DELIMITER, Decoder, Frame, FrameBuf, MAX_ENCODED, MAX_PAYLOAD, Opcode, Status,
};
use prescrypt_scanner_firmware::ssi::{self, DecodeAssembler, MAX_MESSAGE, Packet, PacketReader};

/// Host link. The input is used twice:
/// 1. as a raw byte stream into [`Decoder`] (byte by byte and through `feed`, which must agree);
///    every frame it yields re-encodes to a frame that decodes to itself, and its typed
///    accessors never panic;
/// 2. as a frame to send — opcode, seq, status, then the payload — which must come back
///    unchanged after `encode` → `Decoder`.
pub fn host_link_decode(data: &[u8]) {
    let by_push = decode_stream_by_push(data);
    let by_feed = decode_stream_by_feed(data);
    assert_eq!(by_push, by_feed, "push and feed disagree");
    for frame in by_push.iter().filter_map(|r| r.as_ref().ok()) {
        let frame = frame.as_frame();
        assert_eq!(
            round_trip(&frame).as_ref(),
            Some(&FrameBuf::from_frame(&frame))
        );
        let _ = (frame.scan(), frame.nak_reason(), frame.param_value());
        if let Ok(command) = frame.command() {
            let mut scratch = [0u8; 3];
            let rebuilt = command.frame(frame.seq, &mut scratch);
            assert_eq!(
                (rebuilt.opcode, rebuilt.payload),
                (frame.opcode, frame.payload)
            );
        }
    }

    let [opcode, seq, status, payload @ ..] = data else {
        return;
    };
    let Some(opcode) = Opcode::from_byte(*opcode) else {
        return;
    };
    let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
    let frame = Frame {
        opcode,
        seq: *seq,
        status: Status(*status),
        payload,
    };
    assert_eq!(round_trip(&frame), Some(FrameBuf::from_frame(&frame)));
}

type Decoded = Result<FrameBuf, Error>;

fn decode_stream_by_push(data: &[u8]) -> Vec<Decoded> {
    let mut decoder = Decoder::new();
    data.iter()
        .filter_map(|&b| decoder.push(b).map(|r| r.map(|f| FrameBuf::from_frame(&f))))
        .collect()
}

fn decode_stream_by_feed(mut data: &[u8]) -> Vec<Decoded> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    while !data.is_empty() {
        let (used, result) = decoder.feed(data);
        assert!(used > 0 && used <= data.len());
        data = &data[used..];
        out.extend(result.map(|r| r.map(|f| FrameBuf::from_frame(&f))));
    }
    out
}

/// Encodes a frame and decodes the wire bytes with a fresh decoder.
fn round_trip(frame: &Frame<'_>) -> Option<FrameBuf> {
    let mut wire = [0u8; MAX_ENCODED];
    let n = host_link::encode(frame, &mut wire).expect("a frame of ≤ 255 bytes always encodes");
    let wire = &wire[..n];
    assert_eq!(wire.last(), Some(&DELIMITER));
    assert!(
        !wire[..n - 1].contains(&DELIMITER),
        "delimiter inside a frame"
    );
    let mut decoder = Decoder::new();
    let (used, result) = decoder.feed(wire);
    assert_eq!(used, n);
    let decoded = result?.expect("an encoded frame decodes");
    Some(FrameBuf::from_frame(&decoded))
}

/// SSI. The input is (1) one packet for [`Packet::parse`] (what parses rebuilds to the same
/// bytes), (2) a UART stream through [`PacketReader`] into [`DecodeAssembler`], and (3) a
/// decode to split with `encode_decode_data` (symbology, chunk size, data) and reassemble.
pub fn ssi_parse(data: &[u8]) {
    if let Ok(packet) = Packet::parse(data) {
        let mut out = [0u8; ssi::MAX_PACKET];
        let n = packet.build(&mut out).expect("a parsed packet rebuilds");
        assert_eq!(&out[..n], data);
    }

    let mut reader = PacketReader::new();
    let mut assembler = DecodeAssembler::new();
    for &byte in data {
        let Some(Ok(packet)) = reader.push(byte) else {
            continue;
        };
        let mut out = [0u8; ssi::MAX_PACKET];
        let n = packet.build(&mut out).expect("a read packet rebuilds");
        assert_eq!(Packet::parse(&out[..n]), Ok(packet));
        if let Ok(Some(message)) = assembler.push(&packet) {
            assert!(message.data.len() <= MAX_MESSAGE);
            let _ = message.aim();
        }
    }

    let [symbology, chunk, decode @ ..] = data else {
        return;
    };
    let mut assembler = DecodeAssembler::new();
    let mut messages = Vec::new();
    let mut packets = 0usize;
    let split = ssi::encode_decode_data(*symbology, decode, usize::from(*chunk), |wire| {
        packets += 1;
        let packet = Packet::parse(wire).expect("an encoded packet parses");
        messages.push(assembler.push(&packet));
    });
    if decode.is_empty() {
        assert_eq!(split, Err(Error::Malformed));
        return;
    }
    assert_eq!(split, Ok(()));
    let chunk = usize::from(*chunk).clamp(1, ssi::MAX_DATA - 1);
    assert_eq!(packets, decode.len().div_ceil(chunk));
    let (last, earlier) = messages.split_last().expect("at least one packet");
    assert!(earlier.iter().all(|m| *m == Ok(None)));
    if decode.len() <= MAX_MESSAGE {
        let message = last.clone().expect("fits").expect("complete");
        assert_eq!(
            (message.symbology, message.data.as_slice()),
            (*symbology, decode)
        );
    } else {
        assert_eq!(*last, Err(Error::MessageTooLong));
    }
}

const AIMS: [AimId; 6] = [
    AimId::CODE128,
    AimId::GS1_128,
    AimId::DATA_MATRIX,
    AimId::GS1_DATA_MATRIX,
    AimId::QR,
    AimId::GS1_QR,
];

/// Largest label the HID target builds reports for (the host-side assembler keeps 512).
pub const HID_MAX_LABEL: usize = 512;

/// HID. The first three bytes are an AIM id (if they are not a valid one, the first byte picks a
/// known id and the label starts at the second byte); the rest is the label. Scanned Data
/// Reports reassemble to the label; wedge reports type the label back and end with Enter, or
/// the builder names the first byte a keyboard cannot type layout-safely. Random 64-byte reports
/// into the assembler never panic.
pub fn hid_reports(data: &[u8]) {
    let (aim, label) = match data {
        [a, b, c, rest @ ..] if AimId::parse(&[*a, *b, *c]).is_some() => {
            (AimId::parse(&[*a, *b, *c]).expect("checked"), rest)
        }
        [first, rest @ ..] => (AIMS[usize::from(*first) % AIMS.len()], rest),
        [] => return,
    };
    let label = &label[..label.len().min(HID_MAX_LABEL)];

    let reports: Vec<_> = hid::pos_reports(aim, label).collect();
    assert_eq!(reports.len(), label.len().div_ceil(POS_CHUNK).max(1));
    let mut assembler = PosAssembler::default();
    let mut done = None;
    for (index, report) in reports.iter().enumerate() {
        assert!(done.is_none(), "a report after the last one");
        let mut out = [0u8; 64];
        if index < 2 || index + 1 == reports.len() {
            assert_eq!(
                hid::nth_report(HidKind::Pos, aim, label, index, &mut out),
                Some(POS_REPORT_LEN)
            );
            assert_eq!(&out, report);
        }
        done = assembler
            .push(report)
            .expect("our own report is well-formed");
    }
    let (got_aim, got_label) = done.expect("the last report completes the label");
    assert_eq!((got_aim, got_label.as_slice()), (aim, label));

    match hid::wedge_reports(label) {
        Ok(reports) => {
            let reports: Vec<_> = reports.collect();
            assert_eq!(reports.len(), 2 * (label.len() + 1));
            let mut typed = Vec::new();
            for pair in reports.chunks(2) {
                let (down, up) = (pair[0], pair[1]);
                assert_eq!(up, [0u8; KEY_REPORT_LEN], "every key is released");
                typed.push((down[0], down[2]));
            }
            let enter = typed.pop().expect("the Enter suffix");
            assert_eq!(enter, (0, KEY_ENTER));
            let expected: Vec<_> = label
                .iter()
                .map(|&b| hid::key_for(b).expect("safe"))
                .collect();
            assert_eq!(typed, expected);
        }
        Err(not_safe) => {
            assert!(hid::key_for(label[not_safe.position]).is_none());
            assert!(
                label[..not_safe.position]
                    .iter()
                    .all(|&b| hid::key_for(b).is_some())
            );
        }
    }

    let mut assembler = PosAssembler::default();
    for report in data.chunks(POS_REPORT_LEN) {
        if let Ok(Some((_, label))) = assembler.push(report) {
            assert!(label.len() <= HID_MAX_LABEL);
        }
    }
}
