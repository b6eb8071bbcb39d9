//! Every byte-level example in PROTOCOL.md is built and parsed by the crate's codecs.
#![allow(clippy::unwrap_used)]

use prescrypt_scanner_firmware::host_link::{Decoder, Frame, MAX_ENCODED, Opcode, Status, encode};
use prescrypt_scanner_firmware::ssi::Packet;

const DOC: &str = include_str!("../PROTOCOL.md");

fn blocks(lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    DOC.split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_owned())
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

struct Example {
    opcode: u8,
    seq: u8,
    status: u8,
    payload: Vec<u8>,
    wire: Vec<u8>,
}

fn parse_example(block: &str) -> Example {
    let mut lines = block.lines();
    let fields = lines.next().unwrap();
    let wire = lines.next().unwrap().strip_prefix("wire=").unwrap();
    let field = |name: &str| {
        let start = fields.find(&format!("{name}=")).unwrap() + name.len() + 1;
        fields[start..].split(' ').next().unwrap().to_owned()
    };
    let payload = if let Some(at) = fields.find("text=") {
        fields.as_bytes()[at + 5..].to_vec()
    } else {
        hex(&fields[fields.find("payload=").unwrap() + 8..])
    };
    Example {
        opcode: u8::from_str_radix(&field("opcode"), 16).unwrap(),
        seq: u8::from_str_radix(&field("seq"), 16).unwrap(),
        status: u8::from_str_radix(&field("status"), 16).unwrap(),
        payload,
        wire: hex(wire),
    }
}

#[test]
fn host_link_examples_encode_and_decode_as_documented() {
    let examples: Vec<Example> = blocks("frame").iter().map(|b| parse_example(b)).collect();
    assert!(examples.len() >= 9, "PROTOCOL.md lost its examples");
    for example in examples {
        let frame = Frame {
            opcode: Opcode::from_byte(example.opcode).unwrap(),
            seq: example.seq,
            status: Status(example.status),
            payload: &example.payload,
        };
        let mut out = [0u8; MAX_ENCODED];
        let n = encode(&frame, &mut out).unwrap();
        assert_eq!(&out[..n], &example.wire[..], "encoding of {frame:?}");

        let mut decoder = Decoder::new();
        let (last, head) = example.wire.split_last().unwrap();
        for &b in head {
            assert!(decoder.push(b).is_none());
        }
        let decoded = decoder.push(*last).unwrap().unwrap();
        assert_eq!(decoded, frame);
    }
}

#[test]
fn documented_scan_example_carries_a_valid_prescription_id() {
    let example = parse_example(&blocks("frame")[1]);
    let frame = Frame::new(Opcode::ScanData, example.seq, &example.payload);
    let scan = frame.scan().unwrap();
    assert_eq!(scan.aim.as_str(), "]C0");
    prescrypt_barcode::PrescriptionId::parse_bytes(scan.data).unwrap();
}

#[test]
fn ssi_examples_have_the_documented_checksums() {
    let block = &blocks("ssi")[0];
    let mut count = 0;
    for line in block.lines() {
        let bytes = hex(line);
        let packet = Packet::parse(&bytes).unwrap();
        let mut out = [0u8; 8];
        let n = packet.build(&mut out).unwrap();
        assert_eq!(&out[..n], &bytes[..]);
        count += 1;
    }
    assert_eq!(count, 5);
}
