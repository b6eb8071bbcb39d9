//! The counter screen on a real pty, driven with key events; the screen is read back through a
//! terminal emulator (vt100).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use prescrypt_testkit::pharmacy::pharmacy_bin;
use prescrypt_testkit::{PHARMACY, Pharmacy, Service, prescrypt_bin};

const F5: &str = "\x1b[15~";
const F10: &str = "\x1b[21~";
const DOWN: &str = "\x1b[B";

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().expect("lock").screen().contents()
    }

    fn wait_for(&self, needle: &str) -> String {
        // Generous: the machine running the tests may be busy compiling.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {needle:?}; screen:\n{text}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &str) {
        let mut writer = self.writer.lock().expect("lock");
        writer.write_all(keys.as_bytes()).expect("type");
        writer.flush().expect("flush");
    }
}

/// `pharmacy counter` of `pharmacy` on a 40×140 pty, read through vt100.
fn start_counter(pharmacy: &Pharmacy) -> (Screen, Box<dyn portable_pty::Child + Send + Sync>) {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 140,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut command = CommandBuilder::new(pharmacy_bin());
    command.arg("counter");
    let config = pharmacy.dir.path().join("config");
    let data = pharmacy.dir.path().join("data");
    command.env("PHARMACY_CONFIG_DIR", config.as_os_str());
    command.env("PHARMACY_DATA_DIR", data.as_os_str());
    command.env("PHARMACY_SERVER", &pharmacy.server);
    command.env("PHARMACY_SCANNER", "stdin");
    command.env("TERM", "xterm-256color");
    let child = pty.slave.spawn_command(command).expect("spawn counter");
    drop(pty.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(40, 140, 0)));
    let writer = Arc::new(Mutex::new(pty.master.take_writer().expect("writer")));
    let mut reader = pty.master.try_clone_reader().expect("reader");
    {
        let parser = Arc::clone(&parser);
        let writer = Arc::clone(&writer);
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // Answer cursor-position queries like a terminal would.
                if buf[..n].windows(4).any(|w| w == b"\x1b[6n") {
                    let mut w = writer.lock().expect("lock");
                    let _ = w.write_all(b"\x1b[1;1R");
                    let _ = w.flush();
                }
                parser.lock().expect("lock").process(&buf[..n]);
            }
        });
    }
    let screen = Screen { parser, writer };
    (screen, child)
}

#[test]
fn counter_screen_scans_marks_and_dispenses() {
    let mut service = Service::start(prescrypt_bin!());
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    let pharmacy = Pharmacy::login(&service, PHARMACY);

    let (screen, mut child) = start_counter(&pharmacy);

    screen.wait_for("waiting for scans");
    screen.wait_for("CENTRE ONLINE");
    // The wedge types the token and Enter.
    screen.keys(&format!("{token}\r"));
    let shown = screen.wait_for("Jane Smith");
    assert!(shown.contains("943 476 5919"), "{shown}");
    assert!(shown.contains("token verified offline"), "{shown}");
    screen.wait_for("With Dispenser");
    // Item 2: Space → partial (one less than prescribed); item 1 stays complete. F5 dispenses.
    screen.keys(DOWN);
    screen.keys(" ");
    screen.wait_for("partial 20");
    screen.keys(F5);
    screen.wait_for(&format!("Dispense of {id} recorded"));
    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0003", "{central}");
    assert_eq!(
        central["items"][1]["dispensed_quantity"].as_f64(),
        Some(20.0)
    );
    screen.wait_for("1 sent");

    // The centre goes away: the screen says so.
    service.kill();
    screen.wait_for("CENTRE UNREACHABLE");
    screen.keys(F10);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "counter did not quit");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

const F1: &str = "\x1bOP";
const F3: &str = "\x1bOR";
const F4: &str = "\x1bOS";
const F8: &str = "\x1b[19~";
const F9: &str = "\x1b[20~";
const RIGHT: &str = "\x1b[C";
const UP: &str = "\x1b[A";
const F7: &str = "\x1b[18~";

/// Everything the command line does, done from the counter screen: nominated download, pack
/// scanning (an expired pack refused), owing, dispense, withdraw, every not-dispensed reason,
/// return with a reason, claim with an endorsement and an exemption, the help overlay.
#[test]
fn the_counter_screen_does_everything_the_command_line_does() {
    let service = Service::start(prescrypt_bin!());
    let nominated = service.create(Some(PHARMACY));
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let (screen, mut child) = start_counter(&pharmacy);
    screen.wait_for("CENTRE ONLINE");

    screen.keys(F1);
    let help = screen.wait_for("Keys (any key closes)");
    for key in ["F3", "F4", "F8", "F9", "owing", "endorsement"] {
        assert!(help.contains(key), "{key} in the help:\n{help}");
    }
    // Any key closes the help (a lone Esc would merge with the next key's escape sequence).
    screen.keys(" ");

    screen.keys(F3);
    screen.wait_for("Nominated download: 1 released");
    let nominated_id = nominated["id"].as_str().expect("id");
    assert_eq!(service.central(nominated_id)["dispenser"], PHARMACY);

    screen.keys(&format!("{token}\r"));
    screen.wait_for("With Dispenser");
    // A pack on item 1 (typed in its human-readable form); an expired one is refused.
    screen.keys("(01)09501101530003(17)200100(10)OLD\r");
    screen.wait_for("EXPIRED PACK");
    screen.keys("(01)09501101530003(17)301231(10)AB12\r");
    screen.wait_for("Item 1: pack GTIN 09501101530003, batch AB12, expires 2030-12-31");
    // Item 2 owed: Space twice (partial, owing).
    screen.keys(DOWN);
    screen.keys("  ");
    screen.wait_for("→ owing");
    screen.keys(F5);
    screen.wait_for(&format!("Dispense of {id} recorded"));
    let central = service.central(&id);
    assert_eq!(
        central["items"][0]["supplies"][0]["batch"], "AB12",
        "{central}"
    );
    assert_eq!(central["items"][1]["status"]["code"], "0004", "{central}");

    screen.keys(F4);
    screen.wait_for("Withdraw the last dispense notification?");
    screen.keys("\r");
    screen.wait_for(&format!("Withdrawal of {id} recorded"));
    assert_eq!(service.central(&id)["status"]["code"], "0002");

    // Every not-dispensed reason is on offer: the eleventh is reachable (item 1, Space three
    // times: partial, owing, not dispensed).
    screen.keys("   ");
    screen.wait_for("not dispensed: 0001");
    screen.keys(&"*".repeat(10));
    screen.wait_for("not dispensed: 0011 Patient purchased");

    screen.keys(F8);
    screen.wait_for("Reason: 0001 Patient non-attendance");
    screen.keys(RIGHT);
    screen.wait_for("Reason: 0002 Unable to dispense");
    screen.keys("\r");
    screen.wait_for(&format!(
        "{id} returned to the centre (0002 Unable to dispense)"
    ));
    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0001", "{central}");
    assert!(central["dispenser"].is_null(), "{central}");

    // Again, all supplied, claimed with a broken-bulk endorsement and an exemption.
    screen.keys(&format!("{token}\r"));
    screen.wait_for("Status: With Dispenser (0002)");
    // Item 2 handed over as another product.
    screen.keys(DOWN);
    screen.keys(F7);
    screen.wait_for("Product handed over:");
    screen.keys("42222111000001100:Amoxicillin 500mg capsules (Brand X)\r");
    screen.wait_for(
        "Item 2: substituted by Amoxicillin 500mg capsules (Brand X) (42222111000001100)",
    );
    screen.wait_for("instead: Amoxicillin");
    screen.keys(UP);
    screen.keys(F5);
    screen.wait_for(&format!("Dispense of {id} recorded: Dispensed"));
    let central = service.central(&id);
    assert_eq!(
        central["items"][1]["supplies"][0]["substitution"], true,
        "{central}"
    );
    screen.keys("/");
    screen.wait_for("endorse BB");
    screen.keys(F9);
    screen.wait_for("Exemption: 0001 Patient has paid appropriate charges");
    screen.keys(RIGHT);
    screen.keys(" ");
    screen.wait_for("Evidence seen: yes");
    screen.wait_for("Exemption: 0002 is under 16 years of age");
    screen.keys("\r");
    screen.wait_for(&format!("Claim of {id} recorded: Claimed"));
    let claim = &service.central(&id)["claim"];
    assert_eq!(claim["exemption"]["code"], "0002", "{claim}");
    assert_eq!(claim["evidence_seen"], true);
    assert_eq!(claim["items"][0]["endorsements"][0]["code"]["code"], "BB");
    assert_eq!(claim["items"][1]["endorsements"][0]["code"]["code"], "NDEC");

    screen.keys(F10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "counter did not quit");
        thread::sleep(Duration::from_millis(50));
    }
}
