//! Random bytes into every parser: nothing panics, and whatever parses re-encodes consistently.
#![allow(clippy::unwrap_used)]

use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::code128::{self, Code128Config};
use prescrypt_scanner_firmware::hid::PosAssembler;
use prescrypt_scanner_firmware::host_link::{Decoder, FrameBuf, MAX_ENCODED, encode, parse_raw};
use prescrypt_scanner_firmware::scanline::Edges;
use prescrypt_scanner_firmware::ssi::{DecodeAssembler, Packet, PacketReader};
use prescrypt_scanner_firmware::validate;
use rand::{Rng, SeedableRng, rngs::StdRng};

fn random_chunks(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = rng.gen_range(0..600);
            // Bias towards small values and zeros so that framing bytes come up often.
            (0..len)
                .map(|_| match rng.gen_range(0..4) {
                    0 => 0,
                    1 => rng.gen_range(0..8),
                    _ => rng.r#gen(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn host_link_decoder_survives_random_streams() {
    let mut decoder = Decoder::new();
    let mut frames = 0;
    for chunk in random_chunks(1, 3_000) {
        for &b in &chunk {
            if let Some(Ok(frame)) = decoder.push(b) {
                frames += 1;
                let copy = FrameBuf::from_frame(&frame);
                let mut wire = [0u8; MAX_ENCODED];
                let n = encode(&copy.as_frame(), &mut wire).unwrap();
                let mut again = Decoder::new();
                let mut decoded = None;
                for &b in &wire[..n] {
                    if let Some(result) = again.push(b) {
                        decoded = Some(FrameBuf::from_frame(&result.unwrap()));
                    }
                }
                assert_eq!(decoded, Some(copy.clone()));
                let _ = copy.as_frame().command();
                let _ = copy.as_frame().scan();
                let _ = copy.as_frame().param_value();
                let _ = copy.as_frame().nak_reason();
            }
        }
        let _ = parse_raw(&chunk);
        let _ = decoder.feed(&chunk);
    }
    // Random data almost never carries a valid CRC; the count only shows the path ran.
    let _ = frames;
}

#[test]
fn ssi_reader_and_assembler_survive_random_streams() {
    let mut reader = PacketReader::new();
    let mut assembler = DecodeAssembler::new();
    for chunk in random_chunks(2, 3_000) {
        let _ = Packet::parse(&chunk);
        for &b in &chunk {
            if let Some(Ok(packet)) = reader.push(b) {
                let _ = assembler.push(&packet);
            }
        }
        // Valid checksums on random payloads, so the assembler sees real packets too.
        if chunk.len() > 1 && chunk.len() < 250 {
            let packet = Packet {
                opcode: 0xF3,
                source: 0,
                status: chunk[1] & 0x02,
                data: &chunk[1..],
            };
            let mut wire = [0u8; 300];
            let n = packet.build(&mut wire).unwrap();
            let parsed = Packet::parse(&wire[..n]).unwrap();
            assert_eq!(parsed, packet);
            let _ = assembler.push(&parsed);
        }
    }
}

#[test]
fn pos_assembler_and_validation_survive_random_input() {
    let mut assembler = PosAssembler::default();
    for chunk in random_chunks(3, 2_000) {
        let mut report = [0u8; 64];
        let n = chunk.len().min(64);
        report[..n].copy_from_slice(&chunk[..n]);
        report[0] = 2;
        let _ = assembler.push(&report);
        let _ = assembler.push(&chunk);
        for aim in [
            AimId::CODE128,
            AimId::DATA_MATRIX,
            AimId::QR,
            AimId::GS1_128,
        ] {
            let _ = validate::check(aim, &chunk, false);
        }
        let _ = AimId::parse(&chunk);
    }
}

#[test]
fn code128_decoder_survives_random_lines_and_never_reads_one() {
    let mut edges = Edges::new();
    for (i, chunk) in random_chunks(4, 500).into_iter().enumerate() {
        // Random lines at several scales: raw noise and stretched noise (random bars).
        let stretch = 1 + i % 6;
        let line: Vec<u8> = chunk
            .iter()
            .flat_map(|&b| std::iter::repeat_n(b, stretch))
            .take(4096)
            .collect();
        let read = code128::read_line_adaptive(&line, &mut edges, &Code128Config::default());
        assert!(
            !matches!(read, code128::LineRead::Symbol(_)),
            "random line {i} read as {read:?}"
        );
    }
}
