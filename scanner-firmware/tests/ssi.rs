//! SSI packets from the 2-D engine: checksums, framing errors, continuation, symbology → AIM.
#![allow(clippy::unwrap_used)]

use prescrypt_scanner_firmware::Error;
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::ssi::*;

#[test]
fn host_ack_and_nak_match_zebra_examples() {
    let mut out = [0u8; 8];
    let n = host_ack(&mut out).unwrap();
    assert_eq!(&out[..n], &[0x04, 0xD0, 0x04, 0x00, 0xFF, 0x28]);
    let n = host_nak(nak::RESEND, &mut out).unwrap();
    assert_eq!(&out[..n], &[0x05, 0xD1, 0x04, 0x00, 0x01, 0xFF, 0x25]);
}

#[test]
fn parse_rejects_bad_checksum_truncation_oversize_and_short_length() {
    let good = [0x04, 0xE4, 0x04, 0x00, 0xFF, 0x14];
    assert!(Packet::parse(&good).is_ok());
    let mut bad = good;
    bad[5] ^= 1;
    assert_eq!(Packet::parse(&bad), Err(Error::Checksum));
    assert_eq!(Packet::parse(&good[..5]), Err(Error::Truncated));
    assert_eq!(Packet::parse(&[]), Err(Error::Truncated));
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(Packet::parse(&long), Err(Error::Oversized));
    assert_eq!(
        Packet::parse(&[0x03, 0xD0, 0x04, 0xFF, 0x29]),
        Err(Error::Length)
    );
}

#[test]
fn build_refuses_data_beyond_one_packet() {
    let data = [0u8; MAX_DATA + 1];
    let packet = Packet {
        opcode: opcode::DECODE_DATA,
        source: SOURCE_DECODER,
        status: 0,
        data: &data,
    };
    let mut out = [0u8; MAX_PACKET + 2];
    assert_eq!(packet.build(&mut out), Err(Error::PayloadTooLong));
    let fits = Packet {
        data: &data[..MAX_DATA],
        ..packet
    };
    assert_eq!(fits.build(&mut out), Ok(MAX_PACKET));
    assert_eq!(
        Packet::parse(&out[..MAX_PACKET]).unwrap().data.len(),
        MAX_DATA
    );
}

fn reassemble(stream: &[u8]) -> Vec<Result<DecodeMessage, Error>> {
    let mut reader = PacketReader::new();
    let mut assembler = DecodeAssembler::new();
    let mut out = Vec::new();
    for &b in stream {
        if let Some(packet) = reader.push(b) {
            match packet {
                Ok(packet) => match assembler.push(&packet) {
                    Ok(Some(message)) => out.push(Ok(message)),
                    Ok(None) => {}
                    Err(e) => out.push(Err(e)),
                },
                Err(e) => out.push(Err(e)),
            }
        }
    }
    out
}

#[test]
fn decode_data_over_several_packets_is_reassembled() {
    let token: Vec<u8> = (0..131).map(|i| b'A' + (i % 26) as u8).collect();
    let mut stream = Vec::new();
    let mut packets = 0;
    encode_decode_data(symbology::DATA_MATRIX, &token, 50, |p| {
        stream.extend_from_slice(p);
        packets += 1;
    })
    .unwrap();
    assert_eq!(packets, 3);
    let messages = reassemble(&stream);
    assert_eq!(messages.len(), 1);
    let message = messages[0].as_ref().unwrap();
    assert_eq!(message.aim(), Some(AimId::DATA_MATRIX));
    assert_eq!(&message.data[..], &token[..]);
}

#[test]
fn a_damaged_packet_is_reported_and_the_next_message_still_reads() {
    let mut stream = Vec::new();
    encode_decode_data(symbology::CODE128, b"HELLO", 200, |p| {
        stream.extend_from_slice(p)
    })
    .unwrap();
    let last = stream.len() - 1;
    stream[last] ^= 0xFF;
    encode_decode_data(symbology::QR, b"WORLD", 200, |p| {
        stream.extend_from_slice(p)
    })
    .unwrap();
    let messages = reassemble(&stream);
    assert_eq!(messages[0], Err(Error::Checksum));
    let second = messages[1].as_ref().unwrap();
    assert_eq!(second.aim(), Some(AimId::QR));
    assert_eq!(&second.data[..], b"WORLD");
}

#[test]
fn overlong_message_is_dropped_whole() {
    let data = vec![b'9'; MAX_MESSAGE + 10];
    let mut stream = Vec::new();
    encode_decode_data(symbology::DATA_MATRIX, &data, 200, |p| {
        stream.extend_from_slice(p)
    })
    .unwrap();
    let messages = reassemble(&stream);
    assert_eq!(messages, vec![Err(Error::MessageTooLong)]);
}

#[test]
fn symbologies_map_to_aim_ids() {
    assert_eq!(aim_for_symbology(0x03), Some(AimId::CODE128));
    assert_eq!(aim_for_symbology(0x0F), Some(AimId::GS1_128));
    assert_eq!(aim_for_symbology(0x1B), Some(AimId::DATA_MATRIX));
    assert_eq!(aim_for_symbology(0x1C), Some(AimId::QR));
    assert_eq!(aim_for_symbology(0xC1), Some(AimId::GS1_DATA_MATRIX));
    assert_eq!(aim_for_symbology(0xC2), Some(AimId::GS1_QR));
    assert_eq!(AimId::GS1_DATA_MATRIX.as_str(), "]d2");
    assert_eq!(aim_for_symbology(0x77), None);
    assert_eq!(AimId::DATA_MATRIX.as_str(), "]d1");
}

fn one_message(symbology: u8, data: &[u8]) -> prescrypt_scanner_firmware::ssi::DecodeMessage {
    let mut stream = Vec::new();
    encode_decode_data(symbology, data, 200, |p| stream.extend_from_slice(p)).unwrap();
    let mut messages = reassemble(&stream);
    assert_eq!(messages.len(), 1);
    messages.remove(0).unwrap()
}

#[test]
fn fnc1_in_first_position_makes_a_gs1_symbol_and_is_not_transmitted() {
    let pack = b"010950110153000321SN1\x1d10AB12";
    // The GS1 code types: the data starts with the first element.
    let message = one_message(symbology::GS1_DATA_MATRIX, pack);
    assert_eq!(message.symbol(), Some((AimId::GS1_DATA_MATRIX, &pack[..])));
    // A plain Data Matrix code type whose data starts with FNC1 (as GS) is GS1 data too.
    let leading = [&[0x1D][..], pack].concat();
    let message = one_message(symbology::DATA_MATRIX, &leading);
    assert_eq!(message.symbol(), Some((AimId::GS1_DATA_MATRIX, &pack[..])));
    assert_eq!(message.aim(), Some(AimId::GS1_DATA_MATRIX));
    let message = one_message(symbology::GS1_DATA_MATRIX, &leading);
    assert_eq!(message.symbol(), Some((AimId::GS1_DATA_MATRIX, &pack[..])));
    let message = one_message(symbology::QR, &leading);
    assert_eq!(message.symbol(), Some((AimId::GS1_QR, &pack[..])));
    // Without FNC1 first a Data Matrix stays plain, GS inside or not.
    let message = one_message(symbology::DATA_MATRIX, pack);
    assert_eq!(message.symbol(), Some((AimId::DATA_MATRIX, &pack[..])));
    // A GS1-128 keeps its data as it is (the engine sends no leading GS for it).
    let message = one_message(symbology::GS1_128, pack);
    assert_eq!(message.symbol(), Some((AimId::GS1_128, &pack[..])));
}
