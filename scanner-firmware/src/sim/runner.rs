//! Runs the firmware core in real time against simulated hardware and a real host link (a pty
//! or stdin/stdout), presenting a list of symbols one after the other.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use prescrypt_barcode::PrescriptionId;

use crate::scanner::{Config, Event, Scanner, TriggerMode};
use crate::sim::devices::{
    MemoryPort, Scene, SimClock, SimEngine, SimIndicators, SimInputs, SimSensor, SimUsb,
};
use crate::sim::optics::{Optics, code128_modules, gs1_128_modules, id_code128_modules};
use crate::ssi;

/// A symbol to present to the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symbol {
    /// A prescription ID, printed as Code 128 and read by the linear sensor.
    Id(String),
    /// Any Code 128 text, read by the linear sensor.
    Code128(String),
    /// GS1 element strings in the bracketed form `(01)…(17)…`, printed as GS1-128 (FNC1 first,
    /// FNC1 after each variable-length value that is not last) and read by the linear sensor.
    Gs1(String),
    /// A dispensing token, printed as Data Matrix and read by the 2-D engine (SSI).
    Token(String),
    /// GS1 element strings in the bracketed form, printed as a GS1 DataMatrix (a medicine pack
    /// under the EU Falsified Medicines Directive) and read by the 2-D engine, which reports it
    /// with the GS1 Data Matrix code type and FNC1 separators as GS.
    Gs1DataMatrix(String),
}

impl Symbol {
    fn describe(&self) -> String {
        match self {
            Self::Id(id) => format!("ID {id} (Code 128, linear sensor)"),
            Self::Code128(text) => format!("Code 128 {text:?} (linear sensor)"),
            Self::Gs1(text) => format!("GS1-128 {text} (linear sensor)"),
            Self::Token(token) => format!(
                "token {}… (Data Matrix, 2-D engine)",
                &token[..token.len().min(12)]
            ),
            Self::Gs1DataMatrix(text) => format!("GS1 DataMatrix {text} (2-D engine)"),
        }
    }
}

/// What the simulator does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub symbols: Vec<Symbol>,
    pub config: Config,
    pub optics: Optics,
    /// Pause between two symbols (trigger released / nothing presented).
    pub interval_ms: u64,
    /// Give up on a symbol not read and delivered within this time.
    pub symbol_timeout_ms: u64,
    /// After the last symbol, keep answering the host this long (or until it hangs up).
    pub linger_ms: u64,
    /// How long to wait for the host to open the pty.
    pub connect_timeout_ms: u64,
    /// Bytes per DECODE_DATA packet from the engine.
    pub engine_chunk: usize,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Symbols the host ACKed.
    pub delivered: usize,
    /// Symbols not read, rejected, refused or not answered.
    pub failed: usize,
}

/// The host link over file descriptors (a pty master, or stdin + stdout).
#[derive(Debug)]
pub struct FdLink {
    reader: File,
    writer: File,
    hung_up: bool,
    /// Whether the end of input means the host went away (a pty) or only that it sends
    /// nothing more (stdin, e.g. `< /dev/null`).
    eof_is_hangup: bool,
    input_closed: bool,
}

impl FdLink {
    /// A link reading `reader` and writing `writer`; the end of `reader` is a hang-up.
    pub fn new(reader: File, writer: File) -> Self {
        Self {
            reader,
            writer,
            hung_up: false,
            eof_is_hangup: true,
            input_closed: false,
        }
    }

    /// A link over stdin/stdout: the end of stdin only stops reading.
    pub fn stdio(reader: File, writer: File) -> Self {
        Self {
            eof_is_hangup: false,
            ..Self::new(reader, writer)
        }
    }

    fn closed(&mut self) {
        if self.eof_is_hangup {
            self.hung_up = true;
        } else {
            self.input_closed = true;
        }
    }

    /// Whether the other end closed (pty slave closed, stdin at end).
    pub fn hung_up(&self) -> bool {
        self.hung_up
    }

    /// Waits up to `timeout` for readable data or a hang-up.
    fn wait(&mut self, timeout: PollTimeout) -> bool {
        if self.input_closed {
            if timeout != PollTimeout::ZERO {
                std::thread::sleep(Duration::from_millis(1));
            }
            return false;
        }
        let mut fds = [PollFd::new(self.reader.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) if n > 0 => {
                let revents = fds[0].revents().unwrap_or(PollFlags::empty());
                if revents.contains(PollFlags::POLLIN) {
                    return true;
                }
                if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.closed();
                }
                false
            }
            _ => false,
        }
    }
}

impl embedded_io::ErrorType for FdLink {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for FdLink {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        match self.reader.read(buf) {
            Ok(n) if n > 0 => Ok(n),
            // End of input; a pty master reads EIO once the slave side is closed.
            Ok(_) | Err(_) => {
                self.closed();
                Ok(0)
            }
        }
    }
}

impl embedded_io::ReadReady for FdLink {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.hung_up && !self.input_closed && self.wait(PollTimeout::ZERO))
    }
}

impl embedded_io::Write for FdLink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.writer
            .write(buf)
            .map_err(|_| embedded_io::ErrorKind::BrokenPipe)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.writer
            .flush()
            .map_err(|_| embedded_io::ErrorKind::BrokenPipe)
    }
}

/// A pseudo-terminal whose slave side the host opens.
#[derive(Debug)]
pub struct Pty {
    master: OwnedFd,
    /// The path the host opens, e.g. `/dev/pts/3`.
    pub path: PathBuf,
}

impl Pty {
    /// Opens a pty in raw mode (no echo, no line editing, all bytes passed through).
    pub fn open() -> io::Result<Self> {
        let pair = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        let mut termios = tcgetattr(&pair.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &termios).map_err(io::Error::from)?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pair.slave.as_raw_fd()))?;
        // Close our slave handle: the master then reports a hang-up until the host opens it.
        drop(pair.slave);
        Ok(Self {
            master: pair.master,
            path,
        })
    }

    /// Waits until the host opened the slave side.
    pub fn wait_for_host(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            let hung_up = match poll(&mut fds, PollTimeout::ZERO) {
                Ok(_) => fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
                Err(_) => true,
            };
            if !hung_up {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The host link over the master side.
    pub fn link(self) -> io::Result<FdLink> {
        let reader = File::from(self.master);
        let writer = reader.try_clone()?;
        Ok(FdLink::new(reader, writer))
    }
}

/// Where we are in presenting the plan's symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Presenting symbol `index` since `since`.
    Presenting {
        index: usize,
        since: u64,
        sent: bool,
    },
    /// Nothing presented until `until`, then symbol `next`.
    Gap { next: usize, until: u64 },
    /// All symbols done; answering the host until `until`.
    Lingering { until: u64 },
}

/// Runs the plan over `link`, logging to `log`. Returns what was delivered.
pub fn run(plan: &Plan, link: FdLink, log: &mut dyn Write) -> Result<Report, String> {
    let clock = SimClock::default();
    let scene = Rc::new(RefCell::new(Scene {
        modules: None,
        rows: Vec::new(),
        optics: plan.optics.clone(),
    }));
    let inputs = SimInputs::default();
    let indicators = SimIndicators {
        clock: clock.clone(),
        ..SimIndicators::default()
    };
    let (engine_port, device_engine) = MemoryPort::pair();
    let mut engine = SimEngine::new(engine_port);
    engine.chunk = plan.engine_chunk;
    let mut scanner = Scanner::new(
        SimSensor::new(scene.clone(), clock.clone()),
        device_engine,
        link,
        SimUsb::default(),
        inputs.clone(),
        indicators.clone(),
        indicators,
        plan.config,
    );
    let mut modules = Vec::with_capacity(plan.symbols.len());
    for symbol in &plan.symbols {
        modules.push(match symbol {
            Symbol::Id(text) => {
                let id = PrescriptionId::parse(text).map_err(|e| format!("--id {text}: {e}"))?;
                Some(id_code128_modules(&id)?)
            }
            Symbol::Code128(text) => Some(code128_modules(text)?),
            Symbol::Gs1(text) => {
                let elements = prescrypt_barcode::gs1::ElementString::parse_bracketed(text)
                    .map_err(|e| format!("--gs1 {text}: {e}"))?;
                Some(gs1_128_modules(&elements.canonical().to_string())?)
            }
            Symbol::Token(_) => None,
            Symbol::Gs1DataMatrix(text) => {
                prescrypt_barcode::gs1::ElementString::parse_bracketed(text)
                    .map_err(|e| format!("--gs1-datamatrix {text}: {e}"))?;
                None
            }
        });
    }

    let epoch = Instant::now();
    let mut report = Report::default();
    let mut phase = if plan.symbols.is_empty() {
        Phase::Lingering {
            until: plan.linger_ms,
        }
    } else {
        Phase::Gap { next: 0, until: 0 }
    };
    loop {
        let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        clock.set(now);
        scanner.poll(now);
        engine.step();
        let event = scanner.take_event();
        match (phase, event) {
            (_, Some(Event::Sent(aim))) => {
                let _ = writeln!(log, "scanner-sim: read and sent {aim} (beep, green LED)");
                if let Phase::Presenting { index, since, .. } = phase {
                    phase = Phase::Presenting {
                        index,
                        since,
                        sent: true,
                    };
                }
            }
            (
                Phase::Presenting { index, .. },
                Some(
                    outcome @ (Event::HostAcked
                    | Event::HostRefused(_)
                    | Event::HostSilent
                    | Event::Rejected(_)),
                ),
            ) => {
                let delivered = outcome == Event::HostAcked;
                if delivered {
                    report.delivered += 1;
                } else {
                    report.failed += 1;
                }
                let _ = writeln!(
                    log,
                    "scanner-sim: {} → {outcome:?}",
                    plan.symbols[index].describe()
                );
                phase = next_phase(plan, index, now);
            }
            (_, Some(other)) => {
                let _ = writeln!(log, "scanner-sim: {other:?}");
            }
            (_, None) => {}
        }
        match phase {
            Phase::Gap { next, until } => {
                withdraw(&scene, &engine, &inputs);
                if now >= until {
                    present(
                        &plan.symbols[next],
                        modules[next].clone(),
                        &scene,
                        &engine,
                        plan.config.mode,
                        &inputs,
                    );
                    let _ = writeln!(
                        log,
                        "scanner-sim: presenting {}",
                        plan.symbols[next].describe()
                    );
                    phase = Phase::Presenting {
                        index: next,
                        since: now,
                        sent: false,
                    };
                }
            }
            Phase::Presenting { index, since, sent } => {
                // A trigger session that ended without a read: pull the trigger again.
                if plan.config.mode == TriggerMode::Manual && !sent && !scanner.in_session() {
                    inputs.trigger.set(false);
                    scanner.poll(now);
                    inputs.trigger.set(true);
                }
                if now.saturating_sub(since) > plan.symbol_timeout_ms {
                    report.failed += 1;
                    let _ = writeln!(
                        log,
                        "scanner-sim: {} → not delivered in time",
                        plan.symbols[index].describe()
                    );
                    phase = next_phase(plan, index, now);
                }
            }
            Phase::Lingering { until } => {
                withdraw(&scene, &engine, &inputs);
                if now >= until || scanner.host.hung_up() {
                    break;
                }
            }
        }
        if scanner.host.hung_up() && !matches!(phase, Phase::Lingering { .. }) {
            let _ = writeln!(log, "scanner-sim: the host closed the link");
            report.failed += plan.symbols.len() - report.delivered - report.failed;
            break;
        }
        // Sleep until the next line or host byte (no busy loop).
        scanner.host.wait(PollTimeout::from(1u8));
    }
    Ok(report)
}

fn next_phase(plan: &Plan, index: usize, now: u64) -> Phase {
    if index + 1 < plan.symbols.len() {
        Phase::Gap {
            next: index + 1,
            until: now + plan.interval_ms,
        }
    } else {
        Phase::Lingering {
            until: now + plan.linger_ms,
        }
    }
}

fn withdraw(scene: &Rc<RefCell<Scene>>, engine: &SimEngine, inputs: &SimInputs) {
    scene.borrow_mut().modules = None;
    *engine.symbol.borrow_mut() = None;
    inputs.trigger.set(false);
    inputs.present.set(false);
}

fn present(
    symbol: &Symbol,
    modules: Option<Vec<bool>>,
    scene: &Rc<RefCell<Scene>>,
    engine: &SimEngine,
    mode: TriggerMode,
    inputs: &SimInputs,
) {
    match symbol {
        Symbol::Token(text) => {
            *engine.symbol.borrow_mut() =
                Some((ssi::symbology::DATA_MATRIX, text.clone().into_bytes()));
        }
        Symbol::Gs1DataMatrix(text) => {
            // Checked when the plan was read.
            if let Ok(elements) = prescrypt_barcode::gs1::ElementString::parse_bracketed(text) {
                *engine.symbol.borrow_mut() = Some((
                    ssi::symbology::GS1_DATA_MATRIX,
                    elements.canonical().to_string().into_bytes(),
                ));
            }
        }
        Symbol::Id(_) | Symbol::Code128(_) | Symbol::Gs1(_) => {
            scene.borrow_mut().modules = modules;
        }
    }
    match mode {
        TriggerMode::Manual => inputs.trigger.set(true),
        TriggerMode::Presentation => inputs.present.set(true),
        TriggerMode::Host => {}
    }
}
