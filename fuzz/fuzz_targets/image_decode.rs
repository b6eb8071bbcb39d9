#![no_main]

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use prescrypt_barcode::decode::Decoder;

static DECODER: LazyLock<Decoder> = LazyLock::new(prescrypt_fuzz::barcode::image_decoder);
static CAUGHT_PANICS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(
    init: {
        // The pipeline runs rxing and the image codecs under `catch_unwind` by design, so a
        // panic there is handled, not a crash: count it and report the first few instead of
        // aborting as libfuzzer-sys's hook would. A panic that escapes the pipeline still
        // reaches libfuzzer-sys's own `catch_unwind` around this target and aborts.
        std::panic::set_hook(Box::new(|info| {
            let n = CAUGHT_PANICS.fetch_add(1, Ordering::Relaxed);
            if n < 5 || n.is_power_of_two() {
                eprintln!("panic #{} (caught inside the pipeline?): {info}", n + 1);
            }
        }));
    },
    |data: &[u8]| prescrypt_fuzz::barcode::image_decode(&DECODER, data)
);
