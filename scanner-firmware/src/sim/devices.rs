//! Simulated devices implementing the `hal` traits, for the simulator and host tests. Shared
//! handles (`Rc<Cell<…>>`) let the driver change the scene and inspect outputs while the
//! scanner core owns the devices.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::rc::Rc;

use crate::hal::{Beep, Beeper, HidReports, Inputs, Led, Leds, LinearSensor};
use crate::sim::optics::Optics;
use crate::ssi::{self, PacketReader};

/// A simulated monotonic clock shared by the devices and the driver.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Rc<Cell<u64>>);

impl SimClock {
    /// Current time in ms.
    pub fn now(&self) -> u64 {
        self.0.get()
    }

    /// Moves time forward.
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }

    /// Sets the time.
    pub fn set(&self, ms: u64) {
        self.0.set(ms);
    }
}

impl crate::hal::Clock for SimClock {
    fn now_ms(&mut self) -> u64 {
        self.now()
    }
}

/// What the linear sensor is looking at.
#[derive(Debug, Clone, Default)]
pub struct Scene {
    /// The symbol's modules, or `None` for an empty field of view.
    pub modules: Option<Vec<bool>>,
    /// The symbol as printed at other heights (blots, voids, dead print elements differ along
    /// the bars): when not empty, the sensor's line `n` crosses `rows[n % rows.len()]` instead of
    /// `modules`, as a hand-held scanner's line wanders up and down the label. Ignored while
    /// `modules` is `None`.
    pub rows: Vec<Vec<bool>>,
    pub optics: Optics,
}

/// A linear sensor producing one line per `line_period_ms`, brightness proportional to the
/// exposure (nominal at `nominal_exposure_us`).
#[derive(Debug, Clone)]
pub struct SimSensor {
    pub scene: Rc<RefCell<Scene>>,
    pub clock: SimClock,
    pub line_period_ms: u64,
    pub nominal_exposure_us: u32,
    exposure_us: u32,
    next_line_at: u64,
    lines: u64,
}

impl SimSensor {
    /// A sensor at 30 lines/s.
    pub fn new(scene: Rc<RefCell<Scene>>, clock: SimClock) -> Self {
        Self {
            scene,
            clock,
            line_period_ms: 33,
            nominal_exposure_us: 1_000,
            exposure_us: 1_000,
            next_line_at: 0,
            lines: 0,
        }
    }

    /// Current exposure.
    pub fn exposure_us(&self) -> u32 {
        self.exposure_us
    }

    /// Lines produced so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

impl LinearSensor for SimSensor {
    type Error = Infallible;

    fn read_line(&mut self, line: &mut [u8]) -> Result<Option<usize>, Infallible> {
        let now = self.clock.now();
        if now < self.next_line_at {
            return Ok(None);
        }
        self.next_line_at = now + self.line_period_ms;
        self.lines += 1;
        let scene = self.scene.borrow();
        let mut optics = scene.optics.clone();
        optics.gain *= f64::from(self.exposure_us) / f64::from(self.nominal_exposure_us);
        optics.seed = optics.seed.wrapping_add(self.lines);
        optics.samples = optics.samples.min(line.len());
        let row = (self.lines as usize - 1)
            .checked_rem(scene.rows.len())
            .map(|n| &scene.rows[n]);
        let samples = match (&scene.modules, row) {
            (Some(_), Some(row)) => optics.scanline(row),
            (Some(modules), None) => optics.scanline(modules),
            (None, _) => optics.scanline(&[]),
        };
        line[..samples.len()].copy_from_slice(&samples);
        Ok(Some(samples.len()))
    }

    fn set_exposure_us(&mut self, exposure_us: u32) -> Result<(), Infallible> {
        self.exposure_us = exposure_us;
        Ok(())
    }
}

/// Trigger and presence, set by the driver.
#[derive(Debug, Clone, Default)]
pub struct SimInputs {
    pub trigger: Rc<Cell<bool>>,
    pub present: Rc<Cell<bool>>,
}

impl Inputs for SimInputs {
    fn trigger_pressed(&mut self) -> bool {
        self.trigger.get()
    }

    fn object_present(&mut self) -> bool {
        self.present.get()
    }
}

/// Records beeps and LED changes with the time they happened.
#[derive(Debug, Clone, Default)]
pub struct SimIndicators {
    pub clock: SimClock,
    pub beeps: Rc<RefCell<Vec<(u64, Beep)>>>,
    pub leds: Rc<RefCell<Vec<(u64, Led, bool)>>>,
}

impl SimIndicators {
    /// Whether a LED is lit now.
    pub fn is_lit(&self, led: Led) -> bool {
        self.leds
            .borrow()
            .iter()
            .rev()
            .find(|(_, l, _)| *l == led)
            .is_some_and(|(_, _, on)| *on)
    }
}

impl Beeper for SimIndicators {
    fn beep(&mut self, beep: Beep) {
        self.beeps.borrow_mut().push((self.clock.now(), beep));
    }
}

impl Leds for SimIndicators {
    fn set(&mut self, led: Led, on: bool) {
        self.leds.borrow_mut().push((self.clock.now(), led, on));
    }
}

/// One end of an in-memory serial line: reads what the other end wrote.
#[derive(Debug, Clone, Default)]
pub struct MemoryPort {
    rx: Rc<RefCell<VecDeque<u8>>>,
    tx: Rc<RefCell<VecDeque<u8>>>,
}

impl MemoryPort {
    /// Two connected ends.
    pub fn pair() -> (Self, Self) {
        let a = Rc::new(RefCell::new(VecDeque::new()));
        let b = Rc::new(RefCell::new(VecDeque::new()));
        (
            Self {
                rx: a.clone(),
                tx: b.clone(),
            },
            Self { rx: b, tx: a },
        )
    }

    /// Writes bytes towards the other end.
    pub fn send(&self, bytes: &[u8]) {
        self.tx.borrow_mut().extend(bytes);
    }

    /// Takes everything the other end wrote.
    pub fn take(&self) -> Vec<u8> {
        self.rx.borrow_mut().drain(..).collect()
    }
}

impl embedded_io::ErrorType for MemoryPort {
    type Error = Infallible;
}

impl embedded_io::Read for MemoryPort {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut rx = self.rx.borrow_mut();
        let n = buf.len().min(rx.len());
        for (slot, byte) in buf.iter_mut().zip(rx.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for MemoryPort {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!self.rx.borrow().is_empty())
    }
}

impl embedded_io::Write for MemoryPort {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.tx.borrow_mut().extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A symbol in the engine's view: SSI symbology code and data.
pub type EngineSymbol = (u8, Vec<u8>);

/// A 2-D scan engine on the scanner's UART: on START_DECODE it sends the symbol it "sees" as
/// DECODE_DATA packets (split into `chunk`-byte packets), and logs the packets it receives.
#[derive(Debug)]
pub struct SimEngine {
    /// The engine's end of the UART.
    pub port: MemoryPort,
    /// Symbology code and data in view, if any.
    pub symbol: Rc<RefCell<Option<EngineSymbol>>>,
    /// DECODE_DATA packet size.
    pub chunk: usize,
    /// Opcodes received from the scanner (ACK = 0xD0, NAK = 0xD1, START_DECODE = 0xE4 …).
    pub received: Rc<RefCell<Vec<u8>>>,
    reader: PacketReader,
}

impl SimEngine {
    /// An engine on `port` (the scanner owns the other end).
    pub fn new(port: MemoryPort) -> Self {
        Self {
            port,
            symbol: Rc::default(),
            chunk: 60,
            received: Rc::default(),
            reader: PacketReader::new(),
        }
    }

    /// Handles what the scanner sent; call between polls.
    pub fn step(&mut self) {
        for byte in self.port.take() {
            let opcode = match self.reader.push(byte) {
                Some(Ok(packet)) => packet.opcode,
                _ => continue,
            };
            self.received.borrow_mut().push(opcode);
            if opcode == ssi::opcode::START_DECODE
                && let Some((symbology, data)) = self.symbol.borrow().clone()
            {
                let port = self.port.clone();
                let _ = ssi::encode_decode_data(symbology, &data, self.chunk, |p| port.send(p));
            }
        }
    }
}

/// A USB HID endpoint that accepts one report per `step` (like one IN transfer per host poll).
#[derive(Debug, Clone, Default)]
pub struct SimUsb {
    pub reports: Rc<RefCell<Vec<Vec<u8>>>>,
    pub credit: Rc<Cell<u32>>,
}

impl SimUsb {
    /// The host polls the endpoint once more.
    pub fn host_poll(&self) {
        self.credit.set(self.credit.get() + 1);
    }
}

impl HidReports for SimUsb {
    fn send_report(&mut self, report: &[u8]) -> bool {
        if self.credit.get() == 0 {
            return false;
        }
        self.credit.set(self.credit.get() - 1);
        self.reports.borrow_mut().push(report.to_vec());
        true
    }
}
