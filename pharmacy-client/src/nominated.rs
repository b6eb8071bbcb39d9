//! `pharmacy nominated`: downloads every prescription nominated to this pharmacy, a batch per request,
//! until the centre says there are no more, with a progress bar. Each batch carries an
//! `Idempotency-Key` and is retried with it; prescriptions the centre says this pharmacy holds but
//! this counter has no copy of (a batch whose answer was lost) are recovered first.

use indicatif::{ProgressBar, ProgressStyle};
use prescrypt_contract::limits::NOMINATED_BATCH;
use prescrypt_contract::views::PrescriptionView;
use serde_json::json;

use crate::error::{Error, Result};
use crate::output::Out;
use crate::session::Session;
use crate::terminal::safe;

/// The centre's batch size for nominated release.
const BATCH: u64 = NOMINATED_BATCH as u64;

/// How often one batch is sent (with the same key) before giving up.
const BATCH_ATTEMPTS: u32 = 3;

/// One nominated batch, sent again with the same `Idempotency-Key` while the centre is
/// unreachable or busy, so a lost answer is answered again rather than releasing another batch.
fn release_batch(
    session: &Session,
) -> std::result::Result<prescrypt_contract::views::NominatedRelease, crate::api::ApiError> {
    let key = uuid::Uuid::new_v4().to_string();
    let mut attempt = 1;
    loop {
        match session.api.release_nominated(&key) {
            Err(error) if error.is_transient() && attempt < BATCH_ATTEMPTS => {
                std::thread::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)));
                attempt += 1;
            }
            answer => return answer,
        }
    }
}

/// What a download brought.
#[derive(Debug, Default)]
pub struct Download {
    pub released: Vec<crate::session::Verified>,
    pub rejected: Vec<serde_json::Value>,
    /// Held here at the centre without a copy at this counter (a lost answer), taken again.
    pub recovered: usize,
}

/// How far a download has come: `done` of at least `expected` prescriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub expected: u64,
}

/// Downloads everything nominated to this pharmacy (first what an earlier run lost), verifying
/// each prescription, and tells `progress` after each one.
pub fn download(session: &mut Session, progress: &mut dyn FnMut(Progress)) -> Result<Download> {
    let mut download = Download::default();
    let stranded = session.stranded()?;
    download.recovered = stranded.len();
    let mut expected = BATCH + download.recovered as u64;
    let mut done = 0;
    progress(Progress { done, expected });
    fn take(session: &mut Session, download: &mut Download, prescription: PrescriptionView) {
        let id = prescription.id.clone();
        match session.verify(prescription) {
            Ok(verified) => download.released.push(verified),
            Err(error) => download
                .rejected
                .push(json!({"id": id, "error": error.to_string()})),
        }
    }
    for prescription in stranded {
        take(session, &mut download, prescription);
        done += 1;
        progress(Progress { done, expected });
    }
    loop {
        let batch = release_batch(session).map_err(Error::from)?;
        let count = batch.prescriptions.len() as u64;
        expected = done + count + if batch.more { BATCH } else { 0 };
        for prescription in batch.prescriptions {
            take(session, &mut download, prescription);
            done += 1;
            progress(Progress { done, expected });
        }
        if !batch.more || count == 0 {
            return Ok(download);
        }
    }
}

pub fn run(out: Out, session: &mut Session) -> Result<()> {
    let bar = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(BATCH)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} released")
            .map_err(|e| Error::Other(e.to_string()))?
            .progress_chars("=> "),
    );
    bar.set_message("downloading nominated prescriptions");
    let outcome = download(session, &mut |progress| {
        bar.set_length(progress.expected);
        bar.set_position(progress.done);
    });
    let Download {
        released,
        rejected,
        recovered,
    } = match outcome {
        Ok(download) => download,
        Err(error) => {
            bar.abandon_with_message(format!("stopped after {} taken", bar.position()));
            return Err(error);
        }
    };
    bar.finish_with_message("done");
    out.emit(
        || {
            let mut text = format!("Released {} nominated prescription(s).\n", released.len());
            if recovered > 0 {
                text.push_str(&format!(
                    "  of which {recovered} held here already without a copy at this counter \
                     (an earlier download's answer was lost)\n"
                ));
            }
            for v in &released {
                let p = &v.prescription;
                text.push_str(&format!(
                    "  {}  {}  {} item(s)  {}\n",
                    safe(&p.id),
                    safe(&p.patient.name),
                    p.items.len(),
                    crate::render::prescriber_signature(v.prescriber_signature.as_ref())
                ));
            }
            for r in &rejected {
                text.push_str(&format!(
                    "  REJECTED {}: {}\n",
                    safe(&r["id"].to_string()),
                    safe(r["error"].as_str().unwrap_or_default())
                ));
            }
            text
        },
        || {
            json!({"ok": rejected.is_empty(), "recovered": recovered, "released": released.iter().map(|v| &v.prescription).collect::<Vec<_>>(),
                   "prescriber_signatures": released.iter().map(|v| &v.prescriber_signature).collect::<Vec<_>>(),
                   "rejected": rejected})
        },
    );
    if rejected.is_empty() {
        Ok(())
    } else {
        Err(Error::BadSignature(format!(
            "{} prescription(s) failed signature verification",
            rejected.len()
        )))
    }
}
