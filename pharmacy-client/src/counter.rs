//! `pharmacy counter`: the interactive counter screen (ratatui).
//!
//! A worker thread owns the [`Session`] and does every network and database call, so the screen
//! never freezes while the centre is slow or gone; it also probes connectivity and retries the
//! outbox every few seconds. Scans come from the configured scanner: a keyboard wedge types into
//! the screen (letters, digits, `-`, Enter), a serial scanner is read on its own thread.
//! Commands therefore use keys a wedge never types: arrows, Space, `+`/`-`, function keys … see
//! [`HELP`] and the help overlay (F1), which lists every key. Everything the command line does
//! is here too: dispense with any outcome and every not-dispensed reason, owed items, scanned
//! medicine packs (batch and expiry onto the selected line; an expired pack refused), return
//! with a reason, withdraw, claim with exemption and endorsements, nominated download.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::quantity::Decimal;
use prescrypt_contract::views::{ItemView, PrescriptionView};
use prescrypt_contract::{ChargeExemption, DispenserEndorsement, NotDispensedReason, ReturnReason};
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use serde_json::{Value, json};

use crate::config::{ScannerSource, cleartext_warning};
use crate::error::{Error, Result};
use crate::outbox::{Counts, Due, Kind};
use crate::pack::PackScan;
use crate::render::{self, is_settled, number};
use crate::scan::{ScanKind, ScannedCode, Source};
use crate::session::{PrescriberSignature, Session, Verified};
use crate::terminal::safe;

pub const HELP: &str = "scan + Enter │ ↑↓ item │ Space outcome │ +/- qty │ * reason │ F5 dispense │ \
                        F1 help │ F10 quit";

/// Every key of the counter screen, for the help overlay (F1).
pub const KEYS: &[(&str, &str)] = &[
    (
        "scan / type + Enter",
        "a token or nominated ID: verify and release; a medicine pack \
      (GS1 DataMatrix, or typed as (01)…(17)…(10)…): batch and expiry onto the selected item",
    ),
    ("↑ ↓", "select an item"),
    (
        "Space",
        "the selected item's outcome: complete → partial → owing → not dispensed",
    ),
    ("+ / -", "partial quantity"),
    ("*", "not-dispensed reason (all eleven EPS reasons)"),
    (
        "/",
        "the selected item's dispenser endorsement for the claim",
    ),
    ("F5 (Ctrl-D)", "dispense what is marked"),
    (
        "F3",
        "download the prescriptions nominated to this pharmacy",
    ),
    (
        "F4",
        "withdraw the last dispense notification (Enter confirms)",
    ),
    ("F6", "send the outbox now"),
    (
        "F7",
        "another product handed over for the selected item: type DMD_CODE:NAME, Enter",
    ),
    (
        "F8",
        "return the prescription to the centre: ← → reason, Enter confirms",
    ),
    (
        "F9",
        "claim: ← → exemption, Space evidence seen, Enter confirms",
    ),
    ("Esc", "close this / cancel / clear the prescription"),
    ("F1", "this help"),
    ("F10 (Ctrl-Q)", "quit"),
];

/// How often the worker probes the centre and retries due outbox entries.
const HEARTBEAT: Duration = Duration::from_secs(3);

/// Not-dispensed reasons offered by `*`: the whole EPS list.
const REASONS: &[NotDispensedReason] = NotDispensedReason::ALL;
/// Claim endorsements offered by `/`, NDEC (none) first.
const ENDORSEMENTS: &[DispenserEndorsement] = &[
    DispenserEndorsement::None,
    DispenserEndorsement::BrokenBulk,
    DispenserEndorsement::Extemporaneous,
    DispenserEndorsement::InvoicePrice,
    DispenserEndorsement::MeasuredAndFitted,
    DispenserEndorsement::NoCheaperStock,
    DispenserEndorsement::OutOfPocket,
    DispenserEndorsement::PrescriberContacted,
    DispenserEndorsement::PrescriberNotContacted,
    DispenserEndorsement::RebateClaimed,
    DispenserEndorsement::SeriousShortageProtocol,
    DispenserEndorsement::SpecialLicence,
    DispenserEndorsement::ZeroDiscount,
];

#[derive(Debug, Clone, PartialEq)]
enum Mark {
    Complete,
    Partial(Decimal),
    Owing,
    NotDispensed(usize),
}

impl Mark {
    fn label(&self) -> String {
        match self {
            Self::Complete => "complete".to_owned(),
            Self::Partial(q) => format!("partial {q}"),
            Self::Owing => "owing".to_owned(),
            Self::NotDispensed(r) => {
                format!("not dispensed: {}", REASONS[*r])
            }
        }
    }

    fn body(&self, line: i32) -> Value {
        match self {
            Self::Complete => json!({"line": line, "outcome": "complete"}),
            Self::Partial(q) => {
                json!({"line": line, "outcome": "partial", "quantity": render::quantity_json(*q)})
            }
            Self::Owing => json!({"line": line, "outcome": "owing"}),
            Self::NotDispensed(r) => {
                json!({"line": line, "outcome": "not_dispensed", "reason": REASONS[*r].code()})
            }
        }
    }
}

/// A dialogue over the screen; while one is open, keys act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Overlay {
    Help,
    Withdraw,
    Return {
        reason: usize,
    },
    Claim {
        exemption: usize,
        evidence_seen: bool,
    },
    Substitute {
        text: String,
    },
}

enum Job {
    Scan(ScannedCode),
    Nominated,
    Withdraw(PrescriptionId),
    Return(PrescriptionId, ReturnReason),
    Claim(PrescriptionId, Value),
    /// The serial scanner could not be opened: said on screen, scans from it never come.
    ScannerFailed(Error),
    Dispense(PrescriptionId, Vec<Value>),
    Sync,
    Quit,
}

#[derive(Debug)]
enum Update {
    Message(Level, String),
    Shown(Box<Verified>, String),
    /// A medicine pack was scanned (or why it cannot be used).
    Pack(std::result::Result<PackScan, String>),
    /// The prescription left this counter (returned): clear it.
    Cleared(String),
    Status {
        online: bool,
        outbox: Counts,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Info,
    Good,
    Warn,
    Bad,
}

impl Level {
    fn style(self) -> Style {
        Style::default().fg(match self {
            Self::Info => Color::Reset,
            Self::Good => Color::Green,
            Self::Warn => Color::Yellow,
            Self::Bad => Color::Red,
        })
    }
}

struct Screen {
    online: Option<bool>,
    outbox: Counts,
    prescription: Option<PrescriptionView>,
    /// Who signed the prescription shown (verified).
    prescriber_signature: Option<PrescriberSignature>,
    marks: Vec<Mark>,
    /// Per item: the scanned pack handed over.
    packs: Vec<Option<PackScan>>,
    /// Per item: another product handed over (dm+d code, name).
    substitutes: Vec<Option<(String, String)>>,
    /// Per item: the claim endorsement (index into [`ENDORSEMENTS`]).
    endorsements: Vec<usize>,
    overlay: Option<Overlay>,
    selected: usize,
    input: String,
    messages: Vec<(Level, String)>,
    source: String,
}

impl Screen {
    /// Nothing shown yet; `online` is `None` until the first heartbeat.
    fn new(source: String, online: Option<bool>) -> Self {
        Self {
            online,
            outbox: Counts::default(),
            prescription: None,
            prescriber_signature: None,
            marks: Vec::new(),
            packs: Vec::new(),
            substitutes: Vec::new(),
            endorsements: Vec::new(),
            overlay: None,
            selected: 0,
            input: String::new(),
            messages: Vec::new(),
            source,
        }
    }

    fn say(&mut self, level: Level, text: String) {
        let text = match safe(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        self.messages.push((level, text));
        if self.messages.len() > 50 {
            self.messages.remove(0);
        }
    }

    fn show(&mut self, verified: Verified) {
        let prescription = verified.prescription;
        self.prescriber_signature = verified.prescriber_signature;
        self.marks = prescription
            .items
            .iter()
            .map(|item| {
                if is_settled(item) {
                    Mark::NotDispensed(0)
                } else {
                    Mark::Complete
                }
            })
            .collect();
        self.packs = vec![None; prescription.items.len()];
        self.substitutes = vec![None; prescription.items.len()];
        self.endorsements = vec![0; prescription.items.len()];
        self.selected = 0;
        self.prescription = Some(prescription);
    }

    fn clear(&mut self) {
        self.prescription = None;
        self.marks.clear();
        self.packs.clear();
        self.substitutes.clear();
        self.endorsements.clear();
    }

    fn open_items(&self) -> Vec<(usize, &ItemView)> {
        self.prescription
            .iter()
            .flat_map(|p| p.items.iter().enumerate())
            .filter(|(_, item)| !is_settled(item))
            .collect()
    }
}

pub fn run(session: Session) -> Result<()> {
    let source = session.settings.scanner.clone();
    let server = session.settings.server.clone();
    let (jobs, job_rx) = mpsc::channel::<Job>();
    let (updates, update_rx) = mpsc::channel::<Update>();
    let worker = thread::spawn(move || work(session, &job_rx, &updates));
    let source_label = match &source {
        ScannerSource::Wedge => "keyboard wedge".to_owned(),
        ScannerSource::Serial(device) => {
            spawn_serial(device.clone(), jobs.clone());
            format!("scanner on {device}")
        }
    };
    let mut terminal = ratatui::try_init().map_err(|e| Error::io("terminal", e))?;
    let mut screen = Screen::new(source_label.clone(), None);
    screen.messages = cleartext_warning(&server)
        .map(|warning| (Level::Warn, safe(&warning).into_owned()))
        .into_iter()
        .chain([(
            Level::Info,
            format!("Ready: waiting for scans ({source_label})."),
        )])
        .collect();
    let outcome = ui_loop(&mut terminal, &mut screen, &jobs, &update_rx);
    ratatui::restore();
    let _ = jobs.send(Job::Quit);
    let _ = worker.join();
    outcome
}

fn spawn_serial(device: String, jobs: Sender<Job>) {
    thread::spawn(move || {
        let mut scanner = match crate::serial::Scanner::open(&device) {
            Ok(scanner) => scanner,
            Err(error) => {
                let _ = jobs.send(Job::ScannerFailed(error));
                return;
            }
        };
        loop {
            match scanner.next_code(Duration::from_millis(500)) {
                Ok(Some(code)) => {
                    if jobs.send(Job::Scan(code)).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(_) => thread::sleep(Duration::from_secs(1)),
            }
        }
    });
}

fn ui_loop(
    terminal: &mut ratatui::DefaultTerminal,
    screen: &mut Screen,
    jobs: &Sender<Job>,
    updates: &Receiver<Update>,
) -> Result<()> {
    loop {
        while let Ok(update) = updates.try_recv() {
            match update {
                Update::Message(level, text) => screen.say(level, text),
                Update::Shown(verified, text) => {
                    screen.say(Level::Good, text);
                    screen.show(*verified);
                }
                Update::Status { online, outbox } => {
                    screen.online = Some(online);
                    screen.outbox = outbox;
                }
                Update::Pack(pack) => attach_pack(screen, pack),
                Update::Cleared(text) => {
                    screen.say(Level::Good, text);
                    screen.clear();
                }
            }
        }
        terminal
            .draw(|frame| draw(frame, screen))
            .map_err(|e| Error::io("terminal", e))?;
        if !event::poll(Duration::from_millis(100)).map_err(|e| Error::io("terminal", e))? {
            continue;
        }
        if let Event::Key(key) = event::read().map_err(|e| Error::io("terminal", e))?
            && key.kind != KeyEventKind::Release
            && !handle_key(key, screen, jobs)
        {
            return Ok(());
        }
    }
}

/// Handles one key; `false` = quit.
fn handle_key(key: KeyEvent, screen: &mut Screen, jobs: &Sender<Job>) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if matches!(key.code, KeyCode::F(10)) || (ctrl && matches!(key.code, KeyCode::Char('c' | 'q')))
    {
        return false;
    }
    if let Some(overlay) = screen.overlay.take() {
        screen.overlay = overlay_key(key, overlay, screen, jobs);
        return true;
    }
    match key.code {
        KeyCode::Char('-') if screen.input.is_empty() => adjust_quantity(screen, -Decimal::ONE),
        KeyCode::Char(c) if !ctrl && (c.is_ascii_alphanumeric() || c == '-') => {
            // Packs typed in their human-readable form keep their case (batch numbers).
            screen.input.push(if screen.input.starts_with('(') {
                c
            } else {
                c.to_ascii_uppercase()
            });
        }
        KeyCode::Char(c @ ('(' | ')')) if !ctrl => screen.input.push(c),
        KeyCode::Backspace => {
            screen.input.pop();
        }
        KeyCode::Enter if screen.input.starts_with('(') => {
            let typed = std::mem::take(&mut screen.input);
            attach_pack(
                screen,
                crate::pack::usable(&typed, chrono::Utc::now().date_naive()),
            );
        }
        KeyCode::Enter => {
            if let Some(text) = crate::scan::wedge_line(&std::mem::take(&mut screen.input)) {
                screen.say(Level::Info, "Checking the scanned code…".to_owned());
                let _ = jobs.send(Job::Scan(ScannedCode {
                    source: Source::Wedge,
                    aim: None,
                    text,
                }));
            }
        }
        KeyCode::Esc => {
            screen.input.clear();
            screen.clear();
        }
        KeyCode::F(1) => screen.overlay = Some(Overlay::Help),
        KeyCode::F(3) => {
            screen.say(
                Level::Info,
                "Downloading the prescriptions nominated to this pharmacy…".to_owned(),
            );
            let _ = jobs.send(Job::Nominated);
        }
        KeyCode::F(4) if shown_id(screen).is_some() => screen.overlay = Some(Overlay::Withdraw),
        KeyCode::F(7) if shown_id(screen).is_some() => {
            screen.overlay = Some(Overlay::Substitute {
                text: String::new(),
            });
        }
        KeyCode::F(8) if shown_id(screen).is_some() => {
            screen.overlay = Some(Overlay::Return { reason: 0 });
        }
        KeyCode::F(9) if shown_id(screen).is_some() => {
            screen.overlay = Some(Overlay::Claim {
                exemption: 0,
                evidence_seen: false,
            });
        }
        KeyCode::F(4 | 7 | 8 | 9) => {
            screen.say(Level::Warn, "Scan a prescription first.".to_owned())
        }
        KeyCode::Char('/') => {
            if let Some(endorsement) = screen.endorsements.get_mut(screen.selected) {
                *endorsement = (*endorsement + 1) % ENDORSEMENTS.len();
            }
        }
        KeyCode::Up => screen.selected = screen.selected.saturating_sub(1),
        KeyCode::Down => {
            let count = screen.prescription.as_ref().map_or(0, |p| p.items.len());
            screen.selected = (screen.selected + 1).min(count.saturating_sub(1));
        }
        KeyCode::Char(' ') => cycle_mark(screen),
        KeyCode::Char('?') => screen.overlay = Some(Overlay::Help),
        KeyCode::Char('+') => adjust_quantity(screen, Decimal::ONE),
        KeyCode::Char('*') => {
            if let Some(Mark::NotDispensed(r)) = screen.marks.get_mut(screen.selected) {
                *r = (*r + 1) % REASONS.len();
            }
        }
        KeyCode::F(5) => dispense(screen, jobs),
        KeyCode::Char('d') if ctrl => dispense(screen, jobs),
        KeyCode::F(6) => {
            screen.say(Level::Info, "Sending the outbox…".to_owned());
            let _ = jobs.send(Job::Sync);
        }
        _ => {}
    }
    true
}

/// A key while a dialogue is open; returns the dialogue still open, if any.
fn overlay_key(
    key: KeyEvent,
    overlay: Overlay,
    screen: &mut Screen,
    jobs: &Sender<Job>,
) -> Option<Overlay> {
    let step = |index: usize, len: usize, forward: bool| {
        if forward {
            (index + 1) % len
        } else {
            (index + len - 1) % len
        }
    };
    match (overlay, key.code) {
        (_, KeyCode::Esc) | (Overlay::Help, _) => None,
        (Overlay::Substitute { mut text }, KeyCode::Char(c)) if !c.is_control() => {
            if text.chars().count() < 300 {
                text.push(c);
            }
            Some(Overlay::Substitute { text })
        }
        (Overlay::Substitute { mut text }, KeyCode::Backspace) => {
            text.pop();
            Some(Overlay::Substitute { text })
        }
        (Overlay::Substitute { text }, KeyCode::Enter) => match text.split_once(':') {
            Some((code, name)) if !code.trim().is_empty() && !name.trim().is_empty() => {
                let line = selected_item(screen).map_or(0, |item| item.line);
                screen.say(
                    Level::Info,
                    format!(
                        "Item {line}: substituted by {} ({})",
                        name.trim(),
                        code.trim()
                    ),
                );
                if let Some(slot) = screen.substitutes.get_mut(screen.selected) {
                    *slot = Some((code.trim().to_owned(), name.trim().to_owned()));
                }
                None
            }
            _ => {
                screen.say(Level::Warn, "Type the product as DMD_CODE:NAME.".to_owned());
                Some(Overlay::Substitute { text })
            }
        },
        (Overlay::Return { reason }, KeyCode::Left | KeyCode::Right) => Some(Overlay::Return {
            reason: step(reason, ReturnReason::ALL.len(), key.code == KeyCode::Right),
        }),
        (
            Overlay::Claim {
                exemption,
                evidence_seen,
            },
            KeyCode::Left | KeyCode::Right,
        ) => Some(Overlay::Claim {
            exemption: step(
                exemption,
                ChargeExemption::ALL.len(),
                key.code == KeyCode::Right,
            ),
            evidence_seen,
        }),
        (
            Overlay::Claim {
                exemption,
                evidence_seen,
            },
            KeyCode::Char(' '),
        ) => Some(Overlay::Claim {
            exemption,
            evidence_seen: !evidence_seen,
        }),
        (confirmed, KeyCode::Enter) => {
            let id = shown_id(screen)?;
            match confirmed {
                Overlay::Withdraw => {
                    screen.say(
                        Level::Info,
                        format!("Withdrawing the last dispense of {id}…"),
                    );
                    let _ = jobs.send(Job::Withdraw(id));
                }
                Overlay::Return { reason } => {
                    let reason = ReturnReason::ALL[reason];
                    screen.say(Level::Info, format!("Returning {id}: {reason}…"));
                    let _ = jobs.send(Job::Return(id, reason));
                }
                Overlay::Claim {
                    exemption,
                    evidence_seen,
                } if ChargeExemption::ALL[exemption]
                    .charges_paid_allowed(supplied_items(screen))
                    .is_empty() =>
                {
                    screen.say(
                        Level::Bad,
                        format!(
                            "Nothing of {id} was supplied, so no charge was paid: \
                             choose the exemption that applies."
                        ),
                    );
                    return Some(Overlay::Claim {
                        exemption,
                        evidence_seen,
                    });
                }
                Overlay::Claim {
                    exemption,
                    evidence_seen,
                } => {
                    let body = claim_body(screen, ChargeExemption::ALL[exemption], evidence_seen);
                    screen.say(Level::Info, format!("Claiming {id}…"));
                    let _ = jobs.send(Job::Claim(id, body));
                }
                Overlay::Help | Overlay::Substitute { .. } => {}
            }
            None
        }
        (open, _) => Some(open),
    }
}

fn supplied_items(screen: &Screen) -> usize {
    screen
        .prescription
        .iter()
        .flat_map(|p| p.items.iter())
        .filter(|item| !item.dispensed_quantity.is_zero())
        .count()
}

/// The claim for what is shown: every supplied item with its endorsement; with exemption 0001
/// (the patient paid) one charge per supplied item.
fn claim_body(screen: &Screen, exemption: ChargeExemption, evidence_seen: bool) -> Value {
    let items: Vec<Value> = screen
        .prescription
        .iter()
        .flat_map(|p| p.items.iter().enumerate())
        .filter(|(_, item)| !item.dispensed_quantity.is_zero())
        .map(|(index, item)| {
            let endorsement = ENDORSEMENTS[screen.endorsements.get(index).copied().unwrap_or(0)];
            json!({"line": item.line, "endorsements": [{"code": endorsement.code()}]})
        })
        .collect();
    let mut body = json!({"exemption": exemption.code(), "evidence_seen": evidence_seen});
    if exemption == ChargeExemption::PaidCharges {
        body["charges_paid"] = json!(items.len());
    }
    body["items"] = json!(items);
    body
}

fn shown_id(screen: &Screen) -> Option<PrescriptionId> {
    PrescriptionId::parse(&screen.prescription.as_ref()?.id).ok()
}

/// A scanned pack onto the selected item, or why not.
fn attach_pack(screen: &mut Screen, pack: std::result::Result<PackScan, String>) {
    match pack {
        Err(why) => screen.say(Level::Bad, why),
        Ok(pack) => match selected_item(screen).map(|item| (item.line, is_settled(item))) {
            None => screen.say(
                Level::Warn,
                "A medicine pack: scan the prescription first.".to_owned(),
            ),
            Some((line, true)) => {
                screen.say(Level::Warn, format!("Item {line} is already settled."));
            }
            Some((line, false)) => {
                screen.say(
                    Level::Good,
                    format!("Item {line}: pack {}", pack.describe()),
                );
                if let Some(slot) = screen.packs.get_mut(screen.selected) {
                    *slot = Some(pack);
                }
            }
        },
    }
}

fn selected_item(screen: &Screen) -> Option<&ItemView> {
    screen.prescription.as_ref()?.items.get(screen.selected)
}

fn cycle_mark(screen: &mut Screen) {
    let Some(item) = selected_item(screen) else {
        return;
    };
    if is_settled(item) {
        return;
    }
    let full = item.quantity;
    let Some(mark) = screen.marks.get_mut(screen.selected) else {
        return;
    };
    *mark = match mark {
        Mark::Complete => Mark::Partial((full - Decimal::ONE).max(Decimal::ONE)),
        Mark::Partial(_) => Mark::Owing,
        Mark::Owing => Mark::NotDispensed(0),
        Mark::NotDispensed(_) => Mark::Complete,
    };
}

fn adjust_quantity(screen: &mut Screen, delta: Decimal) {
    let full = selected_item(screen).map_or(Decimal::MAX, |i| i.quantity);
    if let Some(Mark::Partial(q)) = screen.marks.get_mut(screen.selected) {
        *q = (*q + delta).clamp(Decimal::ONE, full.max(Decimal::ONE));
    }
}

fn dispense(screen: &mut Screen, jobs: &Sender<Job>) {
    let Some(prescription) = &screen.prescription else {
        screen.say(Level::Warn, "Scan a prescription first.".to_owned());
        return;
    };
    let Ok(id) = PrescriptionId::parse(&prescription.id) else {
        return;
    };
    let items: Vec<Value> = screen
        .open_items()
        .into_iter()
        .filter_map(|(index, item)| {
            let mark = screen.marks.get(index)?;
            let mut body = mark.body(item.line);
            if matches!(mark, Mark::Complete | Mark::Partial(_)) {
                let mut supplied = match screen.packs.get(index) {
                    Some(Some(pack)) => pack.supplied(),
                    _ => json!({}),
                };
                if let Some(Some((code, name))) = screen.substitutes.get(index) {
                    supplied["code"] = json!(code);
                    supplied["display"] = json!(name);
                }
                if supplied
                    .as_object()
                    .is_some_and(|fields| !fields.is_empty())
                {
                    body["supplied"] = supplied;
                }
            }
            Some(body)
        })
        .collect();
    if items.is_empty() {
        screen.say(
            Level::Warn,
            "Nothing left to dispense on this prescription.".to_owned(),
        );
        return;
    }
    screen.say(Level::Info, format!("Dispensing {id}…"));
    let _ = jobs.send(Job::Dispense(id, items));
}

/// The worker: owns the session, runs jobs, and keeps connectivity + outbox state fresh.
fn work(mut session: Session, jobs: &Receiver<Job>, updates: &Sender<Update>) {
    let say = |level, text: String| {
        let _ = updates.send(Update::Message(level, text));
    };
    let mut last_beat = Instant::now() - HEARTBEAT;
    loop {
        let wait = HEARTBEAT.saturating_sub(last_beat.elapsed());
        match jobs.recv_timeout(wait) {
            Ok(Job::Quit) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Job::ScannerFailed(error)) => say(Level::Bad, error.to_string()),
            Ok(Job::Scan(code)) if is_pack(&code) => {
                let pack = crate::pack::usable(&code.text, chrono::Utc::now().date_naive());
                let _ = updates.send(Update::Pack(pack));
            }
            Ok(Job::Nominated) => {
                let mut last_told = 0;
                let result = crate::nominated::download(&mut session, &mut |progress| {
                    if progress.done >= last_told + 5 || progress.done == 0 {
                        last_told = progress.done;
                        say(
                            Level::Info,
                            format!(
                                "Nominated download: {} of at least {}…",
                                progress.done, progress.expected
                            ),
                        );
                    }
                });
                match result {
                    Ok(download) => say(
                        if download.rejected.is_empty() {
                            Level::Good
                        } else {
                            Level::Bad
                        },
                        format!(
                            "Nominated download: {} released{}{}.",
                            download.released.len(),
                            if download.recovered > 0 {
                                format!(" ({} recovered)", download.recovered)
                            } else {
                                String::new()
                            },
                            if download.rejected.is_empty() {
                                String::new()
                            } else {
                                format!(", {} REFUSED (bad signature)", download.rejected.len())
                            }
                        ),
                    ),
                    Err(error) => say(Level::Bad, format!("Nominated download stopped: {error}")),
                }
            }
            Ok(Job::Withdraw(id)) => {
                let result = session.submit(Kind::Withdraw, &id, &json!({}));
                after_change(&mut session, &id, result, "Withdrawal", updates);
                last_beat = Instant::now() - HEARTBEAT;
            }
            Ok(Job::Claim(id, body)) => {
                let result = session.submit(Kind::Claim, &id, &body);
                after_change(&mut session, &id, result, "Claim", updates);
                last_beat = Instant::now() - HEARTBEAT;
            }
            Ok(Job::Return(id, reason)) => {
                match session.submit(Kind::Return, &id, &json!({"reason": reason.code()})) {
                    Ok(_) => {
                        let _ = updates.send(Update::Cleared(format!(
                            "{id} returned to the centre ({reason})."
                        )));
                    }
                    Err(error @ Error::Queued(_)) => say(Level::Warn, error.to_string()),
                    Err(error) => say(Level::Bad, error.to_string()),
                }
                last_beat = Instant::now() - HEARTBEAT;
            }
            Ok(Job::Scan(code)) => match session.release_scanned(code) {
                Ok(released) => {
                    let how = match released.scanned {
                        ScanKind::Token => "token verified offline",
                        ScanKind::Id => "nominated ID",
                    };
                    let signed = render::prescriber_signature(
                        released.released.prescriber_signature.as_ref(),
                    );
                    let _ = updates.send(Update::Shown(
                        Box::new(released.released),
                        format!(
                            "Released {} ({how}; prescription signature verified). {signed}.",
                            released.prescription_id
                        ),
                    ));
                }
                Err(error @ Error::Offline(_)) => say(Level::Warn, error.to_string()),
                Err(error) => say(Level::Bad, error.to_string()),
            },
            Ok(Job::Dispense(id, items)) => {
                match session.submit(Kind::Dispense, &id, &json!({ "items": items })) {
                    Ok(entry) => {
                        match entry
                            .response
                            .and_then(|v| serde_json::from_value::<PrescriptionView>(v).ok())
                            .map(|p| session.verify_for(p, &id))
                        {
                            Some(Ok(verified)) => {
                                let text = format!(
                                    "Dispense of {id} recorded: {}.",
                                    render::label(&verified.prescription.status)
                                );
                                let _ = updates.send(Update::Shown(Box::new(verified), text));
                            }
                            Some(Err(error)) => say(
                                Level::Bad,
                                format!("Dispense of {id} recorded, but {error}"),
                            ),
                            None => say(Level::Good, format!("Dispense of {id} recorded.")),
                        }
                    }
                    Err(error @ Error::Queued(_)) => say(Level::Warn, error.to_string()),
                    Err(error) => say(Level::Bad, error.to_string()),
                }
                last_beat = Instant::now() - HEARTBEAT;
            }
            Ok(Job::Sync) => {
                match session.sync(Due::All) {
                    Ok(report) => say(
                        if report.failed.is_empty() && report.offline.is_none() {
                            Level::Good
                        } else {
                            Level::Warn
                        },
                        format!(
                            "Outbox: sent {}, refused {}, still queued {}{}",
                            report.sent.len(),
                            report.failed.len(),
                            report.still_queued.len(),
                            if report.offline.is_some() {
                                " (centre unreachable)"
                            } else {
                                ""
                            }
                        ),
                    ),
                    Err(error) => say(Level::Bad, error.to_string()),
                }
                last_beat = Instant::now() - HEARTBEAT;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if last_beat.elapsed() >= HEARTBEAT {
            last_beat = Instant::now();
            heartbeat(&mut session, updates);
        }
        for notice in session.take_notices() {
            say(Level::Warn, notice);
        }
    }
}

/// Whether a scan is a medicine pack: a GS1 symbol by its AIM identifier, or the human-readable
/// `(01)…` form (the one classification of scanned text decides the rest).
fn is_pack(code: &ScannedCode) -> bool {
    code.aim
        .as_deref()
        .is_some_and(|aim| prescrypt_barcode::gs1::Symbology::from_aim(aim).is_some())
        || code.text.starts_with("(01)")
}

/// Shows the prescription as the centre answered a change, verified, or why not.
fn after_change(
    session: &mut Session,
    id: &PrescriptionId,
    result: Result<crate::outbox::Entry>,
    what: &str,
    updates: &Sender<Update>,
) {
    let say = |level, text: String| {
        let _ = updates.send(Update::Message(level, text));
    };
    match result {
        Ok(entry) => match entry
            .response
            .and_then(|v| serde_json::from_value::<PrescriptionView>(v).ok())
            .map(|p| session.verify_for(p, id))
        {
            Some(Ok(verified)) => {
                let text = format!(
                    "{what} of {id} recorded: {}.",
                    render::label(&verified.prescription.status)
                );
                let _ = updates.send(Update::Shown(Box::new(verified), text));
            }
            Some(Err(error)) => say(Level::Bad, format!("{what} of {id} recorded, but {error}")),
            None => say(Level::Good, format!("{what} of {id} recorded.")),
        },
        Err(error @ Error::Queued(_)) => say(Level::Warn, error.to_string()),
        Err(error) => say(Level::Bad, error.to_string()),
    }
}

fn heartbeat(session: &mut Session, updates: &Sender<Update>) {
    let online = session.api.is_reachable();
    if online {
        session.refresh_keys_if_stale();
        if let Ok(report) = session.sync(Due::Now) {
            for entry in report.sent {
                let _ = updates.send(Update::Message(
                    Level::Good,
                    format!(
                        "Outbox: {} of {} delivered.",
                        entry.kind.as_str(),
                        entry.prescription_id
                    ),
                ));
            }
            for entry in report.failed {
                let _ = updates.send(Update::Message(
                    Level::Bad,
                    format!(
                        "Outbox: {} of {} refused: {}",
                        entry.kind.as_str(),
                        entry.prescription_id,
                        entry.last_error.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    if let Ok(outbox) = session.outbox().and_then(|mut o| o.counts()) {
        let _ = updates.send(Update::Status { online, outbox });
    }
}

/// The newest messages that fit `height` lines of `width` characters, long ones broken into
/// several lines, so the latest message is always visible however long the ones before it were.
fn message_lines(messages: &[(Level, String)], width: usize, height: usize) -> Vec<Line<'_>> {
    let mut lines: Vec<Line<'_>> = messages
        .iter()
        .flat_map(|(level, text)| {
            let chars: Vec<char> = text.chars().collect();
            chars
                .chunks(width.max(1))
                .map(|chunk| Line::styled(chunk.iter().collect::<String>(), level.style()))
                .collect::<Vec<_>>()
        })
        .collect();
    lines.split_off(lines.len().saturating_sub(height))
}

fn draw(frame: &mut Frame<'_>, screen: &Screen) {
    let [status, body, log, input, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(7),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let (connectivity, colour) = match screen.online {
        Some(true) => ("CENTRE ONLINE", Color::Green),
        Some(false) => (
            "CENTRE UNREACHABLE — scans verify offline, releases wait",
            Color::Red,
        ),
        None => ("checking the centre…", Color::Yellow),
    };
    let Counts {
        queued,
        sent,
        failed,
    } = screen.outbox;
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                connectivity,
                Style::default().fg(colour).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(
                "  │ outbox: {queued} queued, {sent} sent, {failed} refused  │ {}",
                screen.source
            )),
        ])),
        status,
    );

    match &screen.prescription {
        None => frame.render_widget(
            Paragraph::new("No prescription. Scan a token (or a nominated prescription's ID).")
                .block(Block::bordered().title("Prescription")),
            body,
        ),
        Some(p) => {
            let [head, items] =
                Layout::vertical([Constraint::Length(6), Constraint::Min(3)]).areas(body);
            let nhs = render::nhs_number(&p.patient.nhs_number);
            let mut lines = vec![
                Line::from(vec![
                    Span::styled(
                        safe(&p.patient.name).into_owned(),
                        Style::default().add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(format!("  NHS {nhs}  born {}", safe(&p.patient.birth_date))),
                ]),
                Line::from(format!(
                    "Status: {}   Prescriber {} ({})   Expires {}",
                    render::label(&p.status),
                    safe(&p.prescriber.id),
                    safe(&p.prescriber.org),
                    render::time(&p.expires_at)
                )),
                Line::styled(
                    render::prescriber_signature(screen.prescriber_signature.as_ref()),
                    Style::default().fg(if screen.prescriber_signature.is_some() {
                        Color::Green
                    } else {
                        Color::Yellow
                    }),
                ),
            ];
            if p.pending_cancellation {
                lines.push(Line::styled(
                    "CANCELLATION REQUESTED BY THE PRESCRIBER — do not dispense",
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                ));
            }
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .block(Block::bordered().title(format!("Prescription {}", safe(&p.id)))),
                head,
            );
            let rows: Vec<ListItem<'_>> = p
                .items
                .iter()
                .zip(&screen.marks)
                .map(|(item, mark)| {
                    let plan = if is_settled(item) {
                        "—".to_owned()
                    } else {
                        mark.label()
                    };
                    ListItem::new(format!(
                        "{}. {} — {} {} — {}  [{}]  → {plan}{}",
                        item.line,
                        safe(&item.display),
                        number(item.quantity),
                        safe(&item.unit),
                        safe(&item.dosage),
                        safe(&item.status.display),
                        extras(screen, item)
                    ))
                })
                .collect();
            let mut state = ListState::default().with_selected(Some(screen.selected));
            frame.render_stateful_widget(
                List::new(rows)
                    .block(Block::bordered().title("Items (Space: outcome, F5: dispense)"))
                    .highlight_style(Style::default().add_modifier(Modifier::REVERSED))
                    .highlight_symbol("> "),
                items,
                &mut state,
            );
        }
    }

    frame.render_widget(
        Paragraph::new(message_lines(
            &screen.messages,
            usize::from(log.width.saturating_sub(2)),
            usize::from(log.height.saturating_sub(2)),
        ))
        .block(Block::bordered().title("Messages")),
        log,
    );
    frame.render_widget(
        Paragraph::new(screen.input.as_str()).block(Block::bordered().title("Scan")),
        input,
    );
    frame.render_widget(Paragraph::new(HELP), help);
    if let Some(overlay) = &screen.overlay {
        draw_overlay(frame, overlay, screen);
    }
}

/// A line's scanned pack and claim endorsement, when it has them.
fn extras(screen: &Screen, item: &ItemView) -> String {
    let index = screen
        .prescription
        .iter()
        .flat_map(|p| p.items.iter())
        .position(|i| i.line == item.line)
        .unwrap_or(usize::MAX);
    let mut text = String::new();
    if let Some(Some(pack)) = screen.packs.get(index) {
        text.push_str(&format!("  pack {}", pack.describe()));
    }
    if let Some(Some((code, name))) = screen.substitutes.get(index) {
        text.push_str(&format!("  instead: {} ({})", safe(name), safe(code)));
    }
    if let Some(&endorsement) = screen.endorsements.get(index)
        && endorsement != 0
    {
        text.push_str(&format!("  endorse {}", ENDORSEMENTS[endorsement].code()));
    }
    text
}

fn draw_overlay(frame: &mut Frame<'_>, overlay: &Overlay, screen: &Screen) {
    let (title, lines): (&str, Vec<Line<'_>>) = match overlay {
        Overlay::Help => (
            "Keys (any key closes)",
            KEYS.iter()
                .map(|(key, what)| {
                    Line::from(vec![
                        Span::styled(
                            format!("{key:<20}"),
                            Style::default().add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(*what),
                    ])
                })
                .collect(),
        ),
        Overlay::Substitute { text } => (
            "Another product",
            vec![
                Line::from(format!("Product handed over: {}_", safe(text))),
                Line::from(
                    "Type DMD_CODE:NAME, Enter records it for the selected item, Esc cancels.",
                ),
            ],
        ),
        Overlay::Withdraw => (
            "Withdraw",
            vec![Line::from(
                "Withdraw the last dispense notification? Enter confirms, Esc cancels.",
            )],
        ),
        Overlay::Return { reason } => (
            "Return to the centre",
            vec![
                Line::from(format!("Reason: {}", ReturnReason::ALL[*reason])),
                Line::from("← → choose the reason, Enter returns, Esc cancels."),
            ],
        ),
        Overlay::Claim {
            exemption,
            evidence_seen,
        } => {
            let supplied = screen
                .prescription
                .iter()
                .flat_map(|p| p.items.iter())
                .filter(|item| !item.dispensed_quantity.is_zero())
                .count();
            (
                "Claim",
                vec![
                    Line::from(format!("Exemption: {}", ChargeExemption::ALL[*exemption])),
                    Line::from(format!(
                        "Evidence seen: {}",
                        if *evidence_seen { "yes" } else { "no" }
                    )),
                    Line::from(format!(
                        "{supplied} supplied item(s), each with its endorsement (/ on the item list)."
                    )),
                    Line::from("← → exemption, Space evidence, Enter claims, Esc cancels."),
                ],
            )
        }
    };
    let area = frame.area();
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = area.width.saturating_sub(8).max(20).min(area.width);
    let popup = ratatui::layout::Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(ratatui::widgets::Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(title)),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    #[test]
    fn the_newest_message_stays_visible_after_long_ones() {
        let messages = vec![
            (Level::Info, "Ready.".to_owned()),
            (Level::Warn, "k".repeat(250)),
            (Level::Good, "Released D7AC09-A99968-4BA59C.".to_owned()),
            (
                Level::Good,
                "Dispense of D7AC09-A99968-4BA59C recorded.".to_owned(),
            ),
        ];
        let lines = message_lines(&messages, 100, 4);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[3].to_string(),
            "Dispense of D7AC09-A99968-4BA59C recorded."
        );
        assert_eq!(lines[1].to_string(), "k".repeat(50));
    }

    #[test]
    fn the_counter_screen_shows_outside_text_inert() {
        let mut screen = Screen::new("keyboard wedge".to_owned(), Some(true));
        let hostile = render::hostile_view();
        screen.show(Verified {
            prescriber_signature: Some(PrescriberSignature {
                sub: hostile.prescriber.id.clone(),
                org: hostile.prescriber.org.clone(),
                kid: "kid\u{202E}".to_owned(),
                accepted_at: hostile.created_at,
            }),
            prescription: hostile,
            signed_by: "k".to_owned(),
        });
        screen.say(Level::Bad, "refused: \u{1b}[2J\u{202E}detcelloc".to_owned());
        let mut terminal = Terminal::new(TestBackend::new(200, 30)).unwrap();
        terminal.draw(|frame| draw(frame, &screen)).unwrap();
        let shown: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|cell| cell.symbol())
            .collect();
        assert!(!render::acts_on_a_terminal(&shown), "{shown:?}");
        assert!(shown.contains("\\u{202e}htimS"), "{shown}");
        assert!(shown.contains("\\u{1b}[2J"), "{shown}");
        // Who signed is on the screen, inert too.
        assert!(
            shown.contains("Signed by \\u{1b}[2J\\u{1b}[32mSignature verified"),
            "{shown}"
        );
        assert!(shown.contains("key kid\\u{202e}"), "{shown}");
    }

    #[test]
    fn a_paid_claim_with_nothing_supplied_is_not_sent() {
        let mut screen = Screen::new("keyboard wedge".to_owned(), Some(true));
        let mut view = render::hostile_view();
        view.id = "D7AC09-A99968-4BA59C".to_owned();
        screen.show(Verified {
            prescription: view,
            signed_by: "k".to_owned(),
            prescriber_signature: None,
        });
        let index = |wanted: ChargeExemption| {
            ChargeExemption::ALL
                .iter()
                .position(|e| *e == wanted)
                .unwrap()
        };
        let (jobs, queued) = mpsc::channel();
        let enter = KeyEvent::from(KeyCode::Enter);
        // Nothing supplied: "the patient paid" stays open with the reason, nothing is queued.
        let paid = Overlay::Claim {
            exemption: index(ChargeExemption::PaidCharges),
            evidence_seen: false,
        };
        let still = overlay_key(enter, paid, &mut screen, &jobs);
        assert!(matches!(still, Some(Overlay::Claim { .. })), "{still:?}");
        assert!(queued.try_recv().is_err(), "a refused claim was queued");
        let (level, said) = screen.messages.last().unwrap();
        assert!(matches!(level, Level::Bad), "{said}");
        assert!(said.contains("no charge was paid"), "{said}");
        // An exemption is claimed as it is.
        let under16 = Overlay::Claim {
            exemption: index(ChargeExemption::Under16),
            evidence_seen: true,
        };
        assert!(overlay_key(enter, under16, &mut screen, &jobs).is_none());
        match queued.try_recv() {
            Ok(Job::Claim(_, body)) => {
                assert_eq!(body["exemption"], "0002", "{body}");
                assert!(body.get("charges_paid").is_none(), "{body}");
            }
            _ => panic!("the claim was not queued"),
        }
    }

    #[test]
    fn a_prescription_without_prescriber_signature_says_so_on_screen() {
        let mut screen = Screen::new("keyboard wedge".to_owned(), Some(true));
        screen.show(Verified {
            prescription: render::hostile_view(),
            signed_by: "k".to_owned(),
            prescriber_signature: None,
        });
        let mut terminal = Terminal::new(TestBackend::new(200, 30)).unwrap();
        terminal.draw(|frame| draw(frame, &screen)).unwrap();
        let shown: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|cell| cell.symbol())
            .collect();
        assert!(shown.contains("No prescriber signature"), "{shown}");
        assert!(!shown.contains("Signed by"), "{shown}");
    }
}
