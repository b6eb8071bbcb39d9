//! `pharmacy nominated`: downloads every prescription nominated to this pharmacy, a batch per request,
//! until the centre says there are no more, with a progress bar.

use indicatif::{ProgressBar, ProgressStyle};
use prescrypt_contract::limits::NOMINATED_BATCH;
use serde_json::json;

use crate::error::{Error, Result};
use crate::output::Out;
use crate::session::Session;
use crate::terminal::safe;

/// The centre's batch size for nominated release.
const BATCH: u64 = NOMINATED_BATCH as u64;

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
    let mut released = Vec::new();
    let mut rejected = Vec::new();
    loop {
        let batch = match session.api.release_nominated() {
            Ok(batch) => batch,
            Err(error) => {
                bar.abandon_with_message(format!("stopped after {} released", released.len()));
                return Err(error.into());
            }
        };
        let count = batch.prescriptions.len() as u64;
        if batch.more {
            bar.set_length(bar.position() + count + BATCH);
        } else {
            bar.set_length(bar.position() + count);
        }
        for prescription in batch.prescriptions {
            let id = prescription.id.clone();
            match session.verify(prescription) {
                Ok(verified) => released.push(verified),
                Err(error) => rejected.push(json!({"id": id, "error": error.to_string()})),
            }
            bar.inc(1);
        }
        if !batch.more || count == 0 {
            break;
        }
    }
    bar.finish_with_message("done");
    out.emit(
        || {
            let mut text = format!("Released {} nominated prescription(s).\n", released.len());
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
            json!({"ok": rejected.is_empty(), "released": released.iter().map(|v| &v.prescription).collect::<Vec<_>>(),
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
