//! The hardware boundary: what a board support crate implements for the scanner core.
//!
//! Serial links (the 2-D engine's UART, the host link) are `embedded-io` `Read + ReadReady +
//! Write`; everything else is a small trait here. Nothing blocks: a sensor without a finished
//! line says so, and the core comes back on its next `poll`.

/// A linear image sensor (CCD/CIS), e.g. a TCD1304 behind a timer and an ADC with DMA.
pub trait LinearSensor {
    type Error: core::fmt::Debug;

    /// Copies the latest complete scanline (one 8-bit sample per pixel, dark = low) into `line`
    /// and returns its length, or `None` if no new line finished since the last call.
    fn read_line(&mut self, line: &mut [u8]) -> Result<Option<usize>, Self::Error>;

    /// Sets the integration time for the following lines.
    fn set_exposure_us(&mut self, exposure_us: u32) -> Result<(), Self::Error>;
}

/// The trigger button and the presence (motion / proximity) sensor.
pub trait Inputs {
    /// Whether the trigger is held.
    fn trigger_pressed(&mut self) -> bool;
    /// Whether something is in front of the window (presentation mode).
    fn object_present(&mut self) -> bool;
}

/// Which sound to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beep {
    GoodRead,
    Error,
}

/// The beeper; `beep` starts a sound and returns at once.
pub trait Beeper {
    fn beep(&mut self, beep: Beep);
}

/// The indicator LEDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Led {
    /// Green: good read.
    Good,
    /// Red: rejected read, host not answering.
    Bad,
}

/// The indicator LEDs.
pub trait Leds {
    fn set(&mut self, led: Led, on: bool);
}

/// A monotonic millisecond clock.
pub trait Clock {
    fn now_ms(&mut self) -> u64;
}

/// A USB HID interface endpoint (POS scanner or boot keyboard): offers one input report.
pub trait HidReports {
    /// Queues `report` for the next IN transfer; `false` if the endpoint is still busy.
    fn send_report(&mut self, report: &[u8]) -> bool;
}

/// For boards without a 2-D engine or without USB HID: never has data, accepts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Absent;

impl embedded_io::ErrorType for Absent {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Absent {
    fn read(&mut self, _buf: &mut [u8]) -> Result<usize, Self::Error> {
        Ok(0)
    }
}

impl embedded_io::ReadReady for Absent {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(false)
    }
}

impl embedded_io::Write for Absent {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl HidReports for Absent {
    fn send_report(&mut self, _report: &[u8]) -> bool {
        false
    }
}
