#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| prescrypt_fuzz::barcode::gs1_parse(data));
