//! The firmware core linked the way a board would link it (every path of `Scanner::poll`
//! reachable, trivial hardware), for code-size measurement by bench/budget.sh, and the static
//! RAM of the core's state.

use std::convert::Infallible;
use std::hint::black_box;
use std::mem::size_of;

use prescrypt_scanner_firmware::code128::Decoded;
use prescrypt_scanner_firmware::hal::{Absent, Beep, Beeper, Inputs, Led, Leds, LinearSensor};
use prescrypt_scanner_firmware::host_link::{Decoder, Outbox};
use prescrypt_scanner_firmware::scanline::Edges;
use prescrypt_scanner_firmware::scanner::{Config, Scanner};
use prescrypt_scanner_firmware::ssi::{DecodeAssembler, PacketReader};

struct Pins(u64);

impl LinearSensor for Pins {
    type Error = Infallible;
    fn read_line(&mut self, line: &mut [u8]) -> Result<Option<usize>, Infallible> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        for (i, s) in line.iter_mut().enumerate() {
            *s = (self.0 >> (i % 56)) as u8;
        }
        Ok(Some(black_box(line.len())))
    }
    fn set_exposure_us(&mut self, us: u32) -> Result<(), Infallible> {
        black_box(us);
        Ok(())
    }
}

impl Inputs for Pins {
    fn trigger_pressed(&mut self) -> bool {
        black_box(self.0 & 1 == 1)
    }
    fn object_present(&mut self) -> bool {
        black_box(self.0 & 2 == 2)
    }
}

impl Beeper for Pins {
    fn beep(&mut self, beep: Beep) {
        black_box(beep);
    }
}

impl Leds for Pins {
    fn set(&mut self, led: Led, on: bool) {
        black_box((led, on));
    }
}

type Core = Scanner<Pins, Absent, Absent, Absent, Pins, Pins, Pins>;

fn main() {
    let polls: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let mut scanner: Box<Core> = Box::new(Scanner::new(
        Pins(1),
        Absent,
        Absent,
        Absent,
        Pins(2),
        Pins(3),
        Pins(4),
        Config::default(),
    ));
    for now in 0..polls {
        scanner.poll(black_box(now));
    }
    println!("static RAM of the core's state (bytes):");
    println!(
        "  Scanner (everything below + config) {}",
        size_of::<Core>()
    );
    println!(
        "  scanline buffer                     {}",
        prescrypt_scanner_firmware::scanline::MAX_SAMPLES
    );
    println!(
        "  Edges                               {}",
        size_of::<Edges>()
    );
    println!(
        "  code128 TriggerVotes                {}",
        size_of::<prescrypt_scanner_firmware::code128::TriggerVotes>()
    );
    println!(
        "  host link Decoder                   {}",
        size_of::<Decoder>()
    );
    println!(
        "  host link Outbox                    {}",
        size_of::<Outbox>()
    );
    println!(
        "  SSI PacketReader                    {}",
        size_of::<PacketReader>()
    );
    println!(
        "  SSI DecodeAssembler                 {}",
        size_of::<DecodeAssembler>()
    );
    println!(
        "  code128 Decoded (stack, per line)   {}",
        size_of::<Decoded>()
    );
    println!("stats after {polls} polls: {:?}", scanner.stats());
}
