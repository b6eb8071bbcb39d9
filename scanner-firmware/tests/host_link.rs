//! The host-link codec, its stop-and-wait helpers and the blocking host client.
#![allow(clippy::unwrap_used)]

use prescrypt_scanner_firmware::Error;
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::host_link::*;

fn wire(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = [0u8; MAX_ENCODED];
    let n = encode(frame, &mut out).unwrap();
    out[..n].to_vec()
}

fn decode_all(bytes: &[u8]) -> Vec<Result<FrameBuf, Error>> {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    for &b in bytes {
        if let Some(result) = decoder.push(b) {
            frames.push(result.map(|f| FrameBuf::from_frame(&f)));
        }
    }
    frames
}

#[test]
fn crc_is_ccitt_false() {
    assert_eq!(CRC.checksum(b"123456789"), 0x29B1);
}

#[test]
fn largest_payload_round_trips_and_zero_bytes_never_appear_inside_a_frame() {
    let payload: Vec<u8> = (0..254u16).map(|i| (i % 3) as u8).collect();
    let payload = [payload.as_slice(), &[0]].concat();
    assert_eq!(payload.len(), MAX_PAYLOAD);
    let frame = Frame::new(Opcode::Version, 7, &payload);
    let bytes = wire(&frame);
    assert!(bytes.len() <= MAX_ENCODED);
    assert!(!bytes[..bytes.len() - 1].contains(&0));
    let frames = decode_all(&bytes);
    assert_eq!(frames, vec![Ok(FrameBuf::from_frame(&frame))]);
}

#[test]
fn oversized_payload_and_small_buffers_are_refused() {
    let payload = [1u8; MAX_PAYLOAD + 1];
    let mut out = [0u8; 2 * MAX_ENCODED];
    assert_eq!(
        encode(&Frame::new(Opcode::Version, 0, &payload), &mut out),
        Err(Error::PayloadTooLong)
    );
    let mut small = [0u8; 6];
    assert_eq!(
        encode(&Frame::new(Opcode::Version, 0, b"abc"), &mut small),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn decoder_reports_damage_and_resynchronises_at_the_next_delimiter() {
    let good = wire(&Frame::new(Opcode::Trigger, 1, &[]));
    let mut corrupted = wire(&Frame::new(Opcode::Beep, 2, &[1]));
    corrupted[4] ^= 0x40; // a data byte, not a COBS code byte
    let mut stream = vec![0x55, 0x66]; // noise before the first delimiter
    stream.push(0);
    stream.extend_from_slice(&corrupted);
    stream.extend_from_slice(&good);
    let frames = decode_all(&stream);
    assert_eq!(frames.len(), 3);
    assert!(frames[0].is_err());
    assert_eq!(frames[1], Err(Error::Checksum));
    assert_eq!(frames[2].as_ref().unwrap().opcode, Opcode::Trigger);
}

#[test]
fn decoder_refuses_an_overlong_frame_then_recovers() {
    let mut stream = vec![0x01; MAX_ENCODED + 20];
    stream.push(0);
    stream.extend_from_slice(&wire(&Frame::new(Opcode::Enable, 9, &[])));
    let frames = decode_all(&stream);
    assert_eq!(frames[0], Err(Error::Oversized));
    assert_eq!(frames[1].as_ref().unwrap().seq, 9);
}

#[test]
fn unknown_opcode_keeps_its_seq_for_the_nak() {
    // Build a valid frame, then patch the opcode and recompute CRC and COBS by hand-free means:
    // encode with a known opcode and replace it in the raw frame.
    let raw = [0x7Fu8, 0x11, 0x00, 0x00];
    let crc = CRC.checksum(&raw).to_be_bytes();
    let mut full = raw.to_vec();
    full.extend_from_slice(&crc);
    assert_eq!(
        parse_raw(&full),
        Err(Error::UnknownOpcode {
            opcode: 0x7F,
            seq: 0x11
        })
    );
}

#[test]
fn length_field_must_match() {
    let raw = [0x01u8, 0x00, 0x00, 0x02];
    let crc = CRC.checksum(&raw).to_be_bytes();
    let full = [raw.as_slice(), &crc].concat();
    assert_eq!(parse_raw(&full), Err(Error::Length));
    assert_eq!(parse_raw(&full[..3]), Err(Error::Truncated));
}

#[test]
fn commands_round_trip_through_frames() {
    let commands = [
        Command::Trigger,
        Command::TriggerStop,
        Command::Beep(BeepKind::GoodRead),
        Command::Beep(BeepKind::Error),
        Command::Enable,
        Command::Disable,
        Command::SetParam(Param::RereadTimeoutMs, 500),
        Command::GetParam(Param::TriggerMode),
        Command::GetVersion,
    ];
    for command in commands {
        let mut scratch = [0u8; 3];
        let frame = command.frame(3, &mut scratch);
        let frames = decode_all(&wire(&frame));
        let decoded = frames[0].as_ref().unwrap();
        assert_eq!(decoded.as_frame().command(), Ok(command));
    }
}

#[test]
fn scan_frame_carries_aim_and_data() {
    let mut out = [0u8; MAX_ENCODED];
    let n = encode_scan(AimId::DATA_MATRIX, b"RX1ABC", 4, Status::NONE, &mut out).unwrap();
    let frames = decode_all(&out[..n]);
    let frame = frames[0].as_ref().unwrap();
    let scan = frame.as_frame().scan().unwrap();
    assert_eq!(scan.aim, AimId::DATA_MATRIX);
    assert_eq!(scan.data, b"RX1ABC");
    let too_long = [b'A'; MAX_SCAN_DATA + 1];
    assert_eq!(
        encode_scan(AimId::CODE128, &too_long, 0, Status::NONE, &mut out),
        Err(Error::PayloadTooLong)
    );
}

#[test]
fn outbox_retransmits_with_the_flag_then_gives_up() {
    let mut outbox = Outbox::new();
    let first = outbox
        .send(Opcode::ScanData, b"]C0X", 1_000)
        .unwrap()
        .to_vec();
    assert_eq!(decode_all(&first)[0].as_ref().unwrap().status, Status::NONE);
    assert!(matches!(outbox.poll(1_249), OutboxPoll::Waiting));
    assert_eq!(
        outbox.send(Opcode::ScanData, b"]C0Y", 1_100),
        Err(Error::Busy)
    );
    for attempt in 0..DEFAULT_MAX_RETRIES {
        let now = 1_250 + u64::from(attempt) * 250;
        let OutboxPoll::Retransmit(bytes) = outbox.poll(now) else {
            panic!("expected a retransmission at {now}");
        };
        let frame = decode_all(bytes)[0].clone().unwrap();
        assert!(frame.status.is_retransmit());
        assert_eq!(frame.seq, 0);
    }
    assert!(matches!(outbox.poll(10_000), OutboxPoll::GaveUp));
    assert!(matches!(outbox.poll(10_001), OutboxPoll::Idle));
}

#[test]
fn outbox_matches_answers_by_seq_and_resends_on_nak_resend() {
    let mut outbox = Outbox::new();
    outbox.send(Opcode::ScanData, b"]C0X", 0).unwrap();
    let stale_ack = Frame::new(Opcode::Ack, 9, &[]);
    assert_eq!(outbox.on_response(&stale_ack, 10), None);
    let resend = Frame::new(Opcode::Nak, 0xEE, &[0x01]);
    assert_eq!(outbox.on_response(&resend, 20), None);
    assert!(matches!(outbox.poll(20), OutboxPoll::Retransmit(_)));
    let ack = Frame::new(Opcode::Ack, 0, &[]);
    assert_eq!(outbox.on_response(&ack, 30), Some(Answer::Accepted));
    assert!(!outbox.is_busy());

    outbox.send(Opcode::ScanData, b"]C0Y", 40).unwrap();
    assert_eq!(outbox.seq(), 1);
    let denied = Frame::new(Opcode::Nak, 1, &[0x06]);
    assert_eq!(
        outbox.on_response(&denied, 50),
        Some(Answer::Refused(NakReason::Denied))
    );
}

#[test]
fn inbox_drops_retransmitted_duplicates_only() {
    let mut inbox = Inbox::new();
    let first = Frame::new(Opcode::ScanData, 4, b"]C0X");
    let again = Frame {
        status: Status(Status::RETRANSMIT),
        ..first
    };
    assert!(inbox.accept(&first));
    assert!(!inbox.accept(&again));
    assert!(inbox.accept(&Frame::new(Opcode::ScanData, 5, b"]C0X")));
    // A retransmission of a request we never saw is new to us.
    assert!(inbox.accept(&Frame { seq: 6, ..again }));
}
