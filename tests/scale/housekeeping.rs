//! On PostgreSQL one instance at a time runs a housekeeping job: the transaction-scoped advisory
//! lock is taken by one transaction, refused to a second while the first is open, and free again
//! once it ends.

use diesel::Connection;
use prescrypt::prescriptions::{Housekeeping, HousekeepingJob, HousekeepingReport};
use prescrypt::store::{self, DbConnection};

use crate::pg::{Cluster, require_postgres};

#[test]
fn only_one_transaction_at_a_time_runs_housekeeping() {
    let Some(bin) = require_postgres("housekeeping lock") else {
        return;
    };
    let cluster = Cluster::start_primary(&bin);
    let url = cluster.create_database("prescrypt");
    let mut first = store::connect(&url).unwrap();
    store::migrate(&mut first).unwrap();
    let mut second = store::connect(&url).unwrap();
    let policy = Housekeeping {
        claim_window: chrono::Duration::days(180),
        retention: chrono::Duration::days(730),
        idempotency_retention: chrono::Duration::hours(24),
        batch: 10,
    };
    let at = chrono::Utc::now().naive_utc();
    first
        .transaction(|first: &mut DbConnection| {
            assert!(store::try_housekeeping_lock(first)?);
            for job in HousekeepingJob::ALL {
                let other = second.transaction(|second: &mut DbConnection| {
                    prescrypt::prescriptions::housekeeping(second, job, &policy, at)
                })?;
                assert_eq!(other, HousekeepingReport::Skipped, "{job:?}");
            }
            Ok::<_, prescrypt::AppError>(())
        })
        .unwrap();
    let after = second
        .transaction(|second: &mut DbConnection| {
            prescrypt::prescriptions::housekeeping(second, HousekeepingJob::Expire, &policy, at)
        })
        .unwrap();
    assert_eq!(after, HousekeepingReport::Done(0));
}
