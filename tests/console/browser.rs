//! chromedriver as a child process, and a headless chromium session through it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long chromedriver may take to answer its status endpoint.
const DRIVER_START: Duration = Duration::from_secs(30);
/// How long a screen may take to show what a step waits for.
pub const STEP: Duration = Duration::from_secs(30);

/// `chromedriver` on a free loopback port; killed on drop.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver cannot start ({e}): install Debian's chromium and \
                     chromium-driver (apt-get install chromium chromium-driver)"
                )
            });
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        driver.wait_ready();
        driver
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + DRIVER_START;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            let port = self.url.rsplit(':').next().unwrap();
            if std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not listen within {DRIVER_START:?}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _already_gone = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// A headless chromium window of `width`×`height` through a fresh chromedriver.
pub struct Browser {
    pub client: Client,
    pub name: String,
    _driver: Driver,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromium at 1280×800 (the console's desktop size). `name` prefixes screenshots.
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, &[]).await
    }

    /// [`Browser::start`] with more chromium flags.
    pub async fn start_with(name: &str, flags: &[&str]) -> Self {
        remove_old_screenshots(name);
        let driver = Driver::start();
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            "--no-first-run",
            "--disable-extensions",
        ];
        args.extend_from_slice(flags);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": chromium(), "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("chromium cannot start through chromedriver: {e}"));
        Self {
            client,
            name: name.to_owned(),
            _driver: driver,
        }
    }

    /// Saves a screenshot of the window as `target/tmp/console-screenshots/NAME-STEP.png`.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{}-{step}.png", self.name));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` (its `arguments` are `args`) in the page; its return value.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns something truthy; that value.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let value = self.run(script, vec![]).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let status = self.text("#status").await;
                self.screenshot("timeout").await;
                panic!("timed out waiting for {what}; status line: {status:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The trimmed text of the first element `css` selects ("" when it has none).
    pub async fn text(&self, css: &str) -> String {
        self.run(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
            vec![json!(css)],
        )
        .await
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no element {css}"))
    }

    /// Replaces the value of a control by typing `text` into it (real key events).
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"));
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Chooses the option whose value is `value` in a select.
    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// The id of the focused element.
    pub async fn focused(&self) -> String {
        self.run(
            "return document.activeElement ? document.activeElement.id : '';",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Runs axe-core (from npm, `tests/console/node_modules`) on the page as it is now; fails on
    /// any serious or critical violation. `step` names the page in the failure.
    pub async fn assert_accessible(&self, step: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/console/node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is missing at {} ({e}): run `npm ci --prefix tests/console`",
                path.display()
            )
        });
        let script = format!(
            "{axe}\n;return axe.run(document, {{resultTypes: ['violations']}}).then(r => \
             r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
             .map(v => ({{id: v.id, impact: v.impact, help: v.help, \
             nodes: v.nodes.map(n => n.target.join(' '))}})));"
        );
        let violations = self.run(&script, vec![]).await;
        let violations = violations.as_array().expect("axe's violations");
        if !violations.is_empty() {
            self.screenshot(&format!("{step}-axe")).await;
            panic!(
                "{step}: serious or critical accessibility violations: {}",
                serde_json::to_string_pretty(violations).unwrap()
            );
        }
    }

    pub async fn close(self) {
        let _session_may_be_gone = self.client.close().await;
    }
}

/// Debian's chromium (`CHROMIUM` overrides).
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

pub fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// Screenshots an earlier run of the test `name` left behind, so the folder shows this run.
fn remove_old_screenshots(name: &str) {
    let Ok(entries) = std::fs::read_dir(screenshots_dir()) else {
        return;
    };
    let prefix = format!("{name}-");
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _gone_already = std::fs::remove_file(entry.path());
        }
    }
}
