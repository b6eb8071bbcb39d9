//! USB HID POS Scanned Data Reports and keyboard-wedge reports.
#![allow(clippy::unwrap_used)]

use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::hid::*;

#[test]
fn a_130_byte_token_takes_three_reports_with_the_continued_flag() {
    let token: Vec<u8> = (0..130).map(|i| b'A' + (i % 26) as u8).collect();
    let reports: Vec<_> = pos_reports(AimId::DATA_MATRIX, &token).collect();
    assert_eq!(reports.len(), 3);
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(report.len(), 64);
        assert_eq!(report[0], 0x02, "report id");
        assert_eq!(&report[2..5], b"]d1", "AIM id repeated in every report");
        assert_eq!(
            report[63] & 1,
            u8::from(i < 2),
            "continued on all but the last"
        );
        assert_eq!(&report[61..63], &[0, 0]);
    }
    assert_eq!(reports[0][1], 56);
    assert_eq!(reports[1][1], 56);
    assert_eq!(reports[2][1], 18);
    assert_eq!(&reports[0][5..61], &token[..56]);
    assert_eq!(&reports[1][5..61], &token[56..112]);
    assert_eq!(&reports[2][5..23], &token[112..]);
    assert!(reports[2][23..61].iter().all(|&b| b == 0));

    let mut assembler = PosAssembler::default();
    assert_eq!(assembler.push(&reports[0]).unwrap(), None);
    assert_eq!(assembler.push(&reports[1]).unwrap(), None);
    let (aim, data) = assembler.push(&reports[2]).unwrap().unwrap();
    assert_eq!(aim, AimId::DATA_MATRIX);
    assert_eq!(&data[..], &token[..]);
}

#[test]
fn short_and_exact_labels_fit_one_or_two_reports() {
    assert_eq!(pos_reports(AimId::CODE128, b"X").count(), 1);
    assert_eq!(pos_reports(AimId::CODE128, &[b'1'; 56]).count(), 1);
    let two: Vec<_> = pos_reports(AimId::CODE128, &[b'1'; 57]).collect();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1][1], 1);
}

#[test]
fn pos_assembler_rejects_malformed_reports() {
    let mut assembler = PosAssembler::default();
    assert!(assembler.push(&[0u8; 10]).is_err());
    let mut report = pos_reports(AimId::CODE128, b"X").next().unwrap();
    report[1] = 60;
    assert!(assembler.push(&report).is_err());
}

#[test]
fn wedge_types_each_key_then_releases_it_and_ends_with_enter() {
    let reports: Vec<_> = wedge_reports(b"A1Z0").unwrap().collect();
    assert_eq!(
        reports,
        vec![
            [0x02, 0, 0x04, 0, 0, 0, 0, 0],
            [0; 8],
            [0x00, 0, 0x1E, 0, 0, 0, 0, 0],
            [0; 8],
            [0x02, 0, 0x1D, 0, 0, 0, 0, 0],
            [0; 8],
            [0x00, 0, 0x27, 0, 0, 0, 0, 0],
            [0; 8],
            [0x00, 0, 0x28, 0, 0, 0, 0, 0],
            [0; 8],
        ]
    );
}

#[test]
fn repeated_characters_are_separated_by_key_ups() {
    let reports: Vec<_> = wedge_reports(b"99").unwrap().collect();
    assert_eq!(reports[0], reports[2]);
    assert_eq!(reports[1], [0; 8]);
}

#[test]
fn wedge_refuses_characters_that_depend_on_the_keyboard_layout() {
    assert_eq!(wedge_reports(b"D7AC09-A99968").unwrap_err().position, 6);
    assert_eq!(wedge_reports(b"abc").unwrap_err().position, 0);
    assert_eq!(wedge_reports(b"A\x1dB").unwrap_err().position, 1);
}
