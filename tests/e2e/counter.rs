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

#[test]
fn counter_screen_scans_marks_and_dispenses() {
    let mut service = Service::start(prescrypt_bin!());
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    let pharmacy = Pharmacy::login(&service, PHARMACY);

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
    let mut child = pty.slave.spawn_command(command).expect("spawn counter");
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
