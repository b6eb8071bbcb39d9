//! `pharmacy counter`: the interactive counter screen (ratatui).
//!
//! A worker thread owns the [`Session`] and does every network and database call, so the screen
//! never freezes while the centre is slow or gone; it also probes connectivity and retries the
//! outbox every few seconds. Scans come from the configured scanner: a keyboard wedge types into
//! the screen (letters, digits, `-`, Enter), a serial scanner is read on its own thread.
//! Commands therefore use keys a wedge never types: arrows, Space, `+`/`-` … see [`HELP`].

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::NotDispensedReason;
use prescrypt_contract::quantity::Decimal;
use prescrypt_contract::views::{ItemView, PrescriptionView};
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
use crate::render::{self, is_settled, number};
use crate::scan::{ScanKind, ScannedCode, Source};
use crate::session::{PrescriberSignature, Session, Verified};
use crate::terminal::safe;

pub const HELP: &str = "scan or type a code + Enter │ ↑↓ item │ Space outcome │ +/- quantity │ * reason │ \
                        F5 dispense │ F6 sync outbox │ Esc clear │ F10 quit";

/// How often the worker probes the centre and retries due outbox entries.
const HEARTBEAT: Duration = Duration::from_secs(3);

/// Not-dispensed reasons offered by `*`, with the screen's short label for each.
const REASONS: [(NotDispensedReason, &str); 4] = [
    (NotDispensedReason::NotRequired, "not required (patient)"),
    (
        NotDispensedReason::ClinicallyUnsuitable,
        "clinically unsuitable",
    ),
    (
        NotDispensedReason::PatientDidNotCollect,
        "patient did not collect",
    ),
    (
        NotDispensedReason::PurchasedOverTheCounter,
        "bought over the counter",
    ),
];

#[derive(Debug, Clone, PartialEq)]
enum Mark {
    Complete,
    Partial(Decimal),
    NotDispensed(usize),
}

impl Mark {
    fn label(&self) -> String {
        match self {
            Self::Complete => "complete".to_owned(),
            Self::Partial(q) => format!("partial {q}"),
            Self::NotDispensed(r) => {
                format!("not dispensed: {} {}", REASONS[*r].0.code(), REASONS[*r].1)
            }
        }
    }

    fn body(&self, line: i32) -> Value {
        match self {
            Self::Complete => json!({"line": line, "outcome": "complete"}),
            Self::Partial(q) => {
                json!({"line": line, "outcome": "partial", "quantity": render::quantity_json(*q)})
            }
            Self::NotDispensed(r) => {
                json!({"line": line, "outcome": "not_dispensed", "reason": REASONS[*r].0.code()})
            }
        }
    }
}

enum Job {
    Scan(ScannedCode),
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
    Status { online: bool, outbox: Counts },
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
    selected: usize,
    input: String,
    messages: Vec<(Level, String)>,
    source: String,
}

impl Screen {
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
        self.selected = 0;
        self.prescription = Some(prescription);
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
    let mut screen = Screen {
        online: None,
        outbox: Counts::default(),
        prescription: None,
        prescriber_signature: None,
        marks: Vec::new(),
        selected: 0,
        input: String::new(),
        messages: cleartext_warning(&server)
            .map(|warning| (Level::Warn, safe(&warning).into_owned()))
            .into_iter()
            .chain([(
                Level::Info,
                format!("Ready: waiting for scans ({source_label})."),
            )])
            .collect(),
        source: source_label,
    };
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
    match key.code {
        KeyCode::F(10) => return false,
        KeyCode::Char('c' | 'q') if ctrl => return false,
        KeyCode::Char('-') if screen.input.is_empty() => adjust_quantity(screen, -Decimal::ONE),
        KeyCode::Char(c) if !ctrl && (c.is_ascii_alphanumeric() || c == '-') => {
            screen.input.push(c.to_ascii_uppercase());
        }
        KeyCode::Backspace => {
            screen.input.pop();
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
            screen.prescription = None;
            screen.marks.clear();
        }
        KeyCode::Up => screen.selected = screen.selected.saturating_sub(1),
        KeyCode::Down => {
            let count = screen.prescription.as_ref().map_or(0, |p| p.items.len());
            screen.selected = (screen.selected + 1).min(count.saturating_sub(1));
        }
        KeyCode::Char(' ') => cycle_mark(screen),
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
        Mark::Partial(_) => Mark::NotDispensed(0),
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
        .filter_map(|(index, item)| screen.marks.get(index).map(|m| m.body(item.line)))
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
                        "{}. {} — {} {} — {}  [{}]  → {plan}",
                        item.line,
                        safe(&item.display),
                        number(item.quantity),
                        safe(&item.unit),
                        safe(&item.dosage),
                        safe(&item.status.display)
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
        let mut screen = Screen {
            online: Some(true),
            outbox: Counts::default(),
            prescription: None,
            prescriber_signature: None,
            marks: Vec::new(),
            selected: 0,
            input: String::new(),
            messages: Vec::new(),
            source: "keyboard wedge".to_owned(),
        };
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
    fn a_prescription_without_prescriber_signature_says_so_on_screen() {
        let mut screen = Screen {
            online: Some(true),
            outbox: Counts::default(),
            prescription: None,
            prescriber_signature: None,
            marks: Vec::new(),
            selected: 0,
            input: String::new(),
            messages: Vec::new(),
            source: "keyboard wedge".to_owned(),
        };
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
