//! ID sequence values reserved ahead, in blocks: a create takes its organisation's next value
//! here, without a write transaction of its own, so it can be signed before it reaches the
//! writer. A block is reserved in one durable write ([`prescriptions::reserve_sequence`]) before
//! any of its values is handed out, so no value is ever given twice, across restarts and across
//! instances sharing a PostgreSQL database; values of a block left unused when the process stops
//! are skipped (the sequence is 20 bits, wrapping, and IDs also carry a random part).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Mutex, PoisonError};

use super::{Store, prescriptions};
use crate::error::AppError;

/// Values reserved per write.
pub const BLOCK: i64 = 64;

/// Most organisations with a partly used block kept; beyond that the blocks are dropped (their
/// values skipped), so memory stays bounded whatever the callers claim to be.
const MAX_ORGS: usize = 16_384;

/// Each organisation's values reserved and not yet handed out.
#[derive(Debug, Default)]
pub struct SequenceBlocks {
    free: Mutex<HashMap<String, RangeInclusive<i64>>>,
}

impl SequenceBlocks {
    fn take(&self, org: &str) -> Option<i64> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let block = free.get_mut(org)?;
        let value = block.next();
        if block.is_empty() {
            free.remove(org);
        }
        value
    }

    fn keep(&self, org: &str, rest: RangeInclusive<i64>) {
        if rest.is_empty() {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() >= MAX_ORGS && !free.contains_key(org) {
            free.clear();
        }
        // Two requests that both found no value reserve a block each; the later block wins and
        // the unused values of the other are skipped.
        free.insert(org.to_owned(), rest);
    }
}

impl Store {
    /// The organisation's next ID sequence value (from 1), durably reserved.
    pub async fn reserve_sequence(&self, org: &str) -> Result<i64, AppError> {
        if let Some(value) = self.sequences.take(org) {
            return Ok(value);
        }
        let owned = org.to_owned();
        let last = self
            .write(move |conn| prescriptions::reserve_sequence(conn, &owned, BLOCK))
            .await?;
        let first = last - BLOCK + 1;
        self.sequences.keep(org, first + 1..=last);
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn values_are_never_handed_out_twice_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db").display().to_string();
        let mut seen = std::collections::HashSet::new();
        let store = Store::open(&path).unwrap();
        for _ in 0..100 {
            assert!(seen.insert(store.reserve_sequence("A83008").await.unwrap()));
        }
        assert_eq!(store.reserve_sequence("B82005").await.unwrap(), 1);
        drop(store);
        let reopened = Store::open(&path).unwrap();
        let after = reopened.reserve_sequence("A83008").await.unwrap();
        assert!(seen.iter().all(|&v| v < after), "{after} reused a value");
        // The first block after the restart starts past everything reserved before it.
        assert_eq!(after, 2 * BLOCK + 1);
    }
}
