//! THE prescription status machine: every legal transition is in [`next`]; everything else is illegal.

use prescrypt_contract::codes::{CancelResponse, ItemStatus, Status};

/// Something that happens to a prescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A pharmacy downloads it (scanned token or nominated bulk release).
    Release,
    /// The holding pharmacy hands it back to the central store.
    Return,
    /// The holding pharmacy sends a dispense notification; the outcome follows from the items.
    Dispense(DispenseOutcome),
    /// The holding pharmacy withdraws its latest notification; `restored` is the status before it.
    Withdraw { restored: Status },
    /// The dispenser claims reimbursement.
    Claim,
    /// The prescriber cancels (outright; with a dispenser see [`cancel`]).
    Cancel,
    /// The validity period ended.
    Expire,
    /// The previous issue of a repeat-dispensing prescription completed: this future instance
    /// (9000) becomes To Be Dispensed when `due` (its nominated download date has passed), else
    /// Awaiting Release Ready until that date ([`crate::domain::repeat`]).
    Activate { due: bool },
    /// A waiting issue's day came: the nominated download date (0000) or the start date of a
    /// future-dated prescription (9001).
    Ready,
    /// The claim window passed without a claim.
    NoClaim,
    /// The completion of the previous issue was withdrawn before this issue was released: it is
    /// a future instance again.
    Recall,
}

/// What a dispense notification leaves the prescription as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispenseOutcome {
    /// Some items are still to be supplied: 0003.
    Partial,
    /// Every item is done and at least one was supplied: 0006.
    Complete,
    /// Nothing was supplied and nothing is left: 0007.
    NotDispensed,
}

impl DispenseOutcome {
    /// The outcome of a notification from the item statuses after it.
    pub fn of(items: &[ItemStatus]) -> Self {
        let open = items.iter().any(|status| {
            matches!(
                status,
                ItemStatus::ToBeDispensed
                    | ItemStatus::WithDispenser
                    | ItemStatus::PartiallyDispensed
                    | ItemStatus::NotDispensedOwing
            )
        });
        if open {
            Self::Partial
        } else if items.contains(&ItemStatus::FullyDispensed) {
            Self::Complete
        } else {
            Self::NotDispensed
        }
    }
}

/// An event that the status machine does not allow from a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: Status,
    pub event: Event,
}

impl Event {
    /// A short verb for messages and the audit log.
    pub fn action(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Return => "return",
            Self::Dispense(_) => "dispense",
            Self::Withdraw { .. } => "withdraw",
            Self::Claim => "claim",
            Self::Cancel => "cancel",
            Self::Expire => "expire",
            Self::Activate { .. } => "activate",
            Self::Ready => "make ready",
            Self::NoClaim => "no-claim",
            Self::Recall => "recall",
        }
    }
}

/// The status after `event`, or why it is not allowed.
pub fn next(from: Status, event: Event) -> Result<Status, IllegalTransition> {
    use Status as S;
    let to = match (from, event) {
        (S::ToBeDispensed, Event::Release) => S::WithDispenser,
        (S::RepeatDispenseFutureInstance, Event::Activate { due: true }) => S::ToBeDispensed,
        (S::RepeatDispenseFutureInstance, Event::Activate { due: false }) => {
            S::AwaitingReleaseReady
        }
        (S::AwaitingReleaseReady | S::FutureDated, Event::Ready) => S::ToBeDispensed,
        (S::AwaitingReleaseReady | S::ToBeDispensed, Event::Recall) => {
            S::RepeatDispenseFutureInstance
        }
        (S::Dispensed | S::NotDispensed, Event::NoClaim) => S::NoClaimed,
        (S::WithDispenser, Event::Return) => S::ToBeDispensed,
        (S::WithDispenser | S::WithDispenserActive, Event::Dispense(outcome)) => match outcome {
            DispenseOutcome::Partial => S::WithDispenserActive,
            DispenseOutcome::Complete => S::Dispensed,
            DispenseOutcome::NotDispensed => S::NotDispensed,
        },
        (
            S::WithDispenserActive | S::Dispensed | S::NotDispensed,
            Event::Withdraw {
                restored: restored @ (S::WithDispenser | S::WithDispenserActive),
            },
        ) => restored,
        (S::Dispensed | S::NotDispensed, Event::Claim) => S::Claimed,
        (
            S::AwaitingReleaseReady
            | S::ToBeDispensed
            | S::RepeatDispenseFutureInstance
            | S::FutureDated,
            Event::Cancel,
        ) => S::Cancelled,
        (S::WithDispenserActive, Event::Expire) => S::Dispensed,
        (
            S::AwaitingReleaseReady
            | S::ToBeDispensed
            | S::WithDispenser
            | S::RepeatDispenseFutureInstance
            | S::FutureDated,
            Event::Expire,
        ) => S::Expired,
        _ => return Err(IllegalTransition { from, event }),
    };
    Ok(to)
}

/// Statuses in which the prescription is still live (can expire).
pub fn is_active(status: Status) -> bool {
    next(status, Event::Expire).is_ok()
}

/// What a prescriber's cancellation request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelDecision {
    /// Cancelled now (status 0005).
    Cancel,
    /// With a dispenser: marked pending cancellation; the dispenser is told on its next interaction.
    MarkPending(CancelResponse),
    /// Nothing changes; the answer says why.
    Refuse(CancelResponse),
}

/// EPS cancellation semantics. `pending_by` is the prescriber who already asked, if any.
pub fn cancel(status: Status, pending_by: Option<&str>, requester: &str) -> CancelDecision {
    use Status as S;
    if next(status, Event::Cancel).is_ok() {
        return CancelDecision::Cancel;
    }
    match status {
        S::WithDispenser | S::WithDispenserActive => {
            if pending_by.is_some_and(|earlier| earlier != requester) {
                return CancelDecision::Refuse(CancelResponse::AnotherPrescriber);
            }
            CancelDecision::MarkPending(if status == S::WithDispenser {
                CancelResponse::WithDispenser
            } else {
                CancelResponse::WithDispenserActive
            })
        }
        S::Dispensed | S::Claimed | S::NoClaimed => {
            CancelDecision::Refuse(CancelResponse::AlreadyDispensed)
        }
        S::Expired => CancelDecision::Refuse(CancelResponse::Expired),
        S::Cancelled | S::PendingCancellation => {
            CancelDecision::Refuse(CancelResponse::AlreadyCancelled)
        }
        S::NotDispensed => CancelDecision::Refuse(CancelResponse::NotDispensed),
        _ => CancelDecision::Refuse(CancelResponse::CannotProcess),
    }
}

/// Item status on expiry: items not yet supplied expire, the rest keep their status.
pub fn expire_item(status: ItemStatus) -> ItemStatus {
    match status {
        ItemStatus::ToBeDispensed | ItemStatus::WithDispenser => ItemStatus::Expired,
        other => other,
    }
}

/// Item status on release: items waiting for a dispenser are now with the releasing one.
pub fn release_item(status: ItemStatus) -> ItemStatus {
    match status {
        ItemStatus::ToBeDispensed => ItemStatus::WithDispenser,
        other => other,
    }
}

/// Item status when the dispenser hands the prescription back: items it held wait again.
pub fn return_item(status: ItemStatus) -> ItemStatus {
    match status {
        ItemStatus::WithDispenser => ItemStatus::ToBeDispensed,
        other => other,
    }
}

/// Item status when the prescription is cancelled: every item is cancelled.
pub fn cancel_item(_status: ItemStatus) -> ItemStatus {
    ItemStatus::Cancelled
}

/// Whether a dispense notification may name an item in this status (held and not yet settled:
/// never touched, partly supplied, or owed).
pub fn is_dispensable_item(status: ItemStatus) -> bool {
    matches!(
        status,
        ItemStatus::WithDispenser | ItemStatus::PartiallyDispensed | ItemStatus::NotDispensedOwing
    )
}

/// What one line of a dispense notification makes of its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemSupply {
    Complete,
    Partial,
    NotDispensed,
    /// Nothing supplied now, owed to the patient (EPS item status 0004).
    Owing,
}

/// Item status after a dispense line, or `None` when the item is not dispensable.
/// An item partly supplied stays partly supplied when the rest is owed (its status already says
/// more is to come); only an untouched item becomes "not dispensed – owing".
pub fn dispense_item(status: ItemStatus, supply: ItemSupply) -> Option<ItemStatus> {
    is_dispensable_item(status).then_some(match supply {
        ItemSupply::Complete => ItemStatus::FullyDispensed,
        ItemSupply::Partial => ItemStatus::PartiallyDispensed,
        ItemSupply::NotDispensed => ItemStatus::NotDispensed,
        ItemSupply::Owing if status == ItemStatus::PartiallyDispensed => {
            ItemStatus::PartiallyDispensed
        }
        ItemSupply::Owing => ItemStatus::NotDispensedOwing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status as S;
    use proptest::prelude::*;

    fn events() -> Vec<Event> {
        let mut all = vec![
            Event::Release,
            Event::Return,
            Event::Claim,
            Event::Cancel,
            Event::Expire,
            Event::Activate { due: true },
            Event::Activate { due: false },
            Event::Ready,
            Event::NoClaim,
            Event::Recall,
            Event::Dispense(DispenseOutcome::Partial),
            Event::Dispense(DispenseOutcome::Complete),
            Event::Dispense(DispenseOutcome::NotDispensed),
        ];
        all.extend(S::ALL.iter().map(|s| Event::Withdraw { restored: *s }));
        all
    }

    /// The whole table, written out once more as data: (from, event, to).
    fn legal() -> Vec<(Status, Event, Status)> {
        let mut table = vec![
            (S::ToBeDispensed, Event::Release, S::WithDispenser),
            (S::WithDispenser, Event::Return, S::ToBeDispensed),
            (S::Dispensed, Event::Claim, S::Claimed),
            (S::NotDispensed, Event::Claim, S::Claimed),
            (S::WithDispenserActive, Event::Expire, S::Dispensed),
            (
                S::RepeatDispenseFutureInstance,
                Event::Activate { due: true },
                S::ToBeDispensed,
            ),
            (
                S::RepeatDispenseFutureInstance,
                Event::Activate { due: false },
                S::AwaitingReleaseReady,
            ),
            (S::AwaitingReleaseReady, Event::Ready, S::ToBeDispensed),
            (S::FutureDated, Event::Ready, S::ToBeDispensed),
            (
                S::AwaitingReleaseReady,
                Event::Recall,
                S::RepeatDispenseFutureInstance,
            ),
            (
                S::ToBeDispensed,
                Event::Recall,
                S::RepeatDispenseFutureInstance,
            ),
            (S::Dispensed, Event::NoClaim, S::NoClaimed),
            (S::NotDispensed, Event::NoClaim, S::NoClaimed),
        ];
        for from in [S::WithDispenser, S::WithDispenserActive] {
            table.push((
                from,
                Event::Dispense(DispenseOutcome::Partial),
                S::WithDispenserActive,
            ));
            table.push((
                from,
                Event::Dispense(DispenseOutcome::Complete),
                S::Dispensed,
            ));
            table.push((
                from,
                Event::Dispense(DispenseOutcome::NotDispensed),
                S::NotDispensed,
            ));
        }
        for from in [S::WithDispenserActive, S::Dispensed, S::NotDispensed] {
            for restored in [S::WithDispenser, S::WithDispenserActive] {
                table.push((from, Event::Withdraw { restored }, restored));
            }
        }
        for from in [
            S::AwaitingReleaseReady,
            S::ToBeDispensed,
            S::RepeatDispenseFutureInstance,
            S::FutureDated,
        ] {
            table.push((from, Event::Cancel, S::Cancelled));
            table.push((from, Event::Expire, S::Expired));
        }
        table.push((S::WithDispenser, Event::Expire, S::Expired));
        table
    }

    #[test]
    fn every_pair_is_exactly_as_the_table_says() {
        let table = legal();
        let mut legal_count = 0;
        for from in S::ALL {
            for event in events() {
                let expected = table
                    .iter()
                    .find(|(f, e, _)| f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match (next(*from, event), expected) {
                    (Ok(to), Some(want)) => {
                        assert_eq!(to, want, "{from} {event:?}");
                        legal_count += 1;
                    }
                    (Err(err), None) => assert_eq!(err, IllegalTransition { from: *from, event }),
                    (got, want) => panic!("{from} {event:?}: got {got:?}, table says {want:?}"),
                }
            }
        }
        assert_eq!(legal_count, table.len());
    }

    #[test]
    fn finished_prescriptions_never_move_again_except_to_claimed() {
        for from in [
            S::Expired,
            S::Cancelled,
            S::Claimed,
            S::NoClaimed,
            S::PendingCancellation,
        ] {
            for event in events() {
                assert!(next(from, event).is_err(), "{from} {event:?}");
            }
        }
    }

    #[test]
    fn waiting_issues_cannot_be_released_until_the_machine_moves_them() {
        for waiting in [
            S::RepeatDispenseFutureInstance,
            S::AwaitingReleaseReady,
            S::FutureDated,
        ] {
            assert!(next(waiting, Event::Release).is_err(), "{waiting}");
            assert_eq!(next(waiting, Event::Cancel), Ok(S::Cancelled));
            assert_eq!(next(waiting, Event::Expire), Ok(S::Expired));
        }
        assert_eq!(
            next(
                S::RepeatDispenseFutureInstance,
                Event::Activate { due: false }
            ),
            Ok(S::AwaitingReleaseReady)
        );
        assert_eq!(
            next(S::AwaitingReleaseReady, Event::Ready),
            Ok(S::ToBeDispensed)
        );
        assert_eq!(next(S::FutureDated, Event::Ready), Ok(S::ToBeDispensed));
        assert!(next(S::FutureDated, Event::Activate { due: true }).is_err());
        assert!(next(S::ToBeDispensed, Event::Ready).is_err());
    }

    #[test]
    fn no_claim_settles_dispensed_and_not_dispensed_only() {
        assert_eq!(next(S::Dispensed, Event::NoClaim), Ok(S::NoClaimed));
        assert_eq!(next(S::NotDispensed, Event::NoClaim), Ok(S::NoClaimed));
        for from in S::ALL.iter().copied() {
            if !matches!(from, S::Dispensed | S::NotDispensed) {
                assert!(next(from, Event::NoClaim).is_err(), "{from}");
            }
        }
        assert!(next(S::NoClaimed, Event::Claim).is_err());
    }

    #[test]
    fn cancellation_follows_eps() {
        assert_eq!(cancel(S::ToBeDispensed, None, "G1"), CancelDecision::Cancel);
        assert_eq!(
            cancel(S::WithDispenser, None, "G1"),
            CancelDecision::MarkPending(CancelResponse::WithDispenser)
        );
        assert_eq!(
            cancel(S::WithDispenserActive, Some("G1"), "G1"),
            CancelDecision::MarkPending(CancelResponse::WithDispenserActive)
        );
        assert_eq!(
            cancel(S::WithDispenser, Some("G1"), "G2"),
            CancelDecision::Refuse(CancelResponse::AnotherPrescriber)
        );
        assert_eq!(
            cancel(S::Dispensed, None, "G1"),
            CancelDecision::Refuse(CancelResponse::AlreadyDispensed)
        );
        assert_eq!(
            cancel(S::Claimed, None, "G1"),
            CancelDecision::Refuse(CancelResponse::AlreadyDispensed)
        );
        assert_eq!(
            cancel(S::Expired, None, "G1"),
            CancelDecision::Refuse(CancelResponse::Expired)
        );
        assert_eq!(
            cancel(S::Cancelled, None, "G1"),
            CancelDecision::Refuse(CancelResponse::AlreadyCancelled)
        );
        assert_eq!(
            cancel(S::NotDispensed, None, "G1"),
            CancelDecision::Refuse(CancelResponse::NotDispensed)
        );
    }

    #[test]
    fn dispense_outcome_follows_the_items() {
        use ItemStatus as I;
        assert_eq!(
            DispenseOutcome::of(&[I::FullyDispensed, I::NotDispensed]),
            DispenseOutcome::Complete
        );
        assert_eq!(
            DispenseOutcome::of(&[I::NotDispensed]),
            DispenseOutcome::NotDispensed
        );
        assert_eq!(
            DispenseOutcome::of(&[I::FullyDispensed, I::PartiallyDispensed]),
            DispenseOutcome::Partial
        );
        assert_eq!(
            DispenseOutcome::of(&[I::NotDispensed, I::WithDispenser]),
            DispenseOutcome::Partial
        );
    }

    #[test]
    fn item_rules_move_only_the_items_they_name() {
        use ItemStatus as I;
        for item in ItemStatus::ALL.iter().copied() {
            let released = release_item(item);
            assert_eq!(
                released,
                if item == I::ToBeDispensed {
                    I::WithDispenser
                } else {
                    item
                }
            );
            let returned = return_item(item);
            assert_eq!(
                returned,
                if item == I::WithDispenser {
                    I::ToBeDispensed
                } else {
                    item
                }
            );
            assert_eq!(cancel_item(item), I::Cancelled);
            for supply in [
                ItemSupply::Complete,
                ItemSupply::Partial,
                ItemSupply::NotDispensed,
                ItemSupply::Owing,
            ] {
                assert_eq!(
                    dispense_item(item, supply).is_some(),
                    matches!(
                        item,
                        I::WithDispenser | I::PartiallyDispensed | I::NotDispensedOwing
                    ),
                    "{item:?} {supply:?}"
                );
            }
        }
        assert_eq!(
            dispense_item(I::PartiallyDispensed, ItemSupply::Complete),
            Some(I::FullyDispensed)
        );
    }

    #[test]
    fn an_owed_item_is_supplied_later_and_keeps_the_prescription_open() {
        use ItemStatus as I;
        assert_eq!(
            dispense_item(I::WithDispenser, ItemSupply::Owing),
            Some(I::NotDispensedOwing)
        );
        // A part supplied and the rest owed: still "partially dispensed".
        assert_eq!(
            dispense_item(I::PartiallyDispensed, ItemSupply::Owing),
            Some(I::PartiallyDispensed)
        );
        for later in [
            ItemSupply::Complete,
            ItemSupply::Partial,
            ItemSupply::NotDispensed,
        ] {
            assert!(dispense_item(I::NotDispensedOwing, later).is_some());
        }
        assert_eq!(
            DispenseOutcome::of(&[I::FullyDispensed, I::NotDispensedOwing]),
            DispenseOutcome::Partial
        );
    }

    fn any_status() -> impl Strategy<Value = Status> {
        proptest::sample::select(S::ALL.to_vec())
    }

    fn any_event() -> impl Strategy<Value = Event> {
        proptest::sample::select(events())
    }

    proptest! {
        /// Any sequence of events keeps the machine inside its rules: a release is only possible
        /// from To Be Dispensed, once a prescription is finished it only moves to Claimed, and
        /// Expire always lands in 0004 or 0006.
        #[test]
        fn random_walks_obey_the_invariants(start in any_status(), walk in proptest::collection::vec(any_event(), 0..40)) {
            let mut status = start;
            for event in walk {
                match next(status, event) {
                    Ok(to) => {
                        if event == Event::Release { prop_assert_eq!(status, S::ToBeDispensed); }
                        if event == Event::Expire { prop_assert!(matches!(to, S::Expired | S::Dispensed)); }
                        if matches!(status, S::Dispensed | S::NotDispensed) {
                            prop_assert!(matches!(to, S::Claimed | S::NoClaimed | S::WithDispenser | S::WithDispenserActive));
                        }
                        // Only the machine's own events leave the waiting states, never a release.
                        if matches!(status, S::RepeatDispenseFutureInstance | S::AwaitingReleaseReady | S::FutureDated) {
                            prop_assert_ne!(event, Event::Release);
                        }
                        prop_assert!(!matches!(status, S::Expired | S::Cancelled | S::Claimed | S::NoClaimed));
                        status = to;
                    }
                    Err(err) => prop_assert_eq!(err.from, status),
                }
            }
        }

        #[test]
        fn cancel_never_changes_a_finished_prescription(status in any_status(), who in "[A-Z][0-9]{3}") {
            if !is_active(status) && next(status, Event::Cancel).is_err() {
                prop_assert!(matches!(cancel(status, None, &who), CancelDecision::Refuse(_)));
            }
        }
    }
}
