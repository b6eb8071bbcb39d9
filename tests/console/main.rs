//! The prescriber console in a real browser: Debian's `chromium`, headless, driven through
//! `chromedriver` (WebDriver) against a real `prescrypt serve` on loopback. No mocks: the console
//! signs with the browser's WebCrypto, the service verifies. When chromium or chromedriver is
//! missing or cannot start, these tests fail (they never skip). Screenshots of every screen go to
//! `target/tmp/console-screenshots/` for review. Every screen is checked with axe-core (npm,
//! `npm ci --prefix tests/console`; `.ci/run` does it): no serious or critical violation.

// Test helpers outside #[test] functions may unwrap and panic like the tests themselves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod accessibility;
mod browser;
mod flow;
mod nhs;
mod serving;
