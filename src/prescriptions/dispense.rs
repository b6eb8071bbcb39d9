//! `POST /api/v1/prescriptions/{id}/dispense` (an item-level dispense notification) and
//! `…/dispense/withdraw` (undo the latest one).

use std::collections::HashSet;

use chrono::NaiveDateTime;
use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::quantity::Decimal;
use prescrypt_contract::views::{DispenseRequest, Outcome, PrescriptionView};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::create::quantity_field;
use super::{held, issues, save, system, transition};
use crate::audit;
use crate::auth::Principal;
use crate::domain::machine::{self, DispenseOutcome, Event, ItemSupply};
use crate::domain::{ItemStatus, NotDispensedReason, Status};
use crate::error::AppError;
use crate::store::DbConnection;
use crate::store::codes::Code;
use crate::store::prescriptions::{self as rows, ItemRow, Notification};
use crate::store::quantity::Thousandths;

/// An item as it was before a notification (stored as JSON with the notification).
#[derive(Debug, Serialize, Deserialize)]
struct ItemSnapshot {
    uuid: String,
    status: String,
    #[serde(with = "prescrypt_contract::quantity::as_number")]
    dispensed_quantity: Decimal,
    not_dispensed_reason: Option<String>,
}

impl ItemSnapshot {
    fn of(item: &ItemRow) -> Self {
        Self {
            uuid: item.uuid.clone(),
            status: item.status.0.code().to_owned(),
            dispensed_quantity: item.dispensed_quantity.get(),
            not_dispensed_reason: item
                .not_dispensed_reason
                .map(|reason| reason.0.code().to_owned()),
        }
    }

    fn restore(&self, item: &mut ItemRow) -> Result<(), AppError> {
        let stored = |what: &str, code: &str| AppError::Internal(format!("stored {what} {code:?}"));
        item.status = Code(
            ItemStatus::parse(&self.status).ok_or_else(|| stored("item status", &self.status))?,
        );
        item.dispensed_quantity = Thousandths::new(self.dispensed_quantity);
        item.not_dispensed_reason = self
            .not_dispensed_reason
            .as_deref()
            .map(|code| {
                NotDispensedReason::parse(code)
                    .map(Code)
                    .ok_or_else(|| stored("not-dispensed reason", code))
            })
            .transpose()?;
        Ok(())
    }
}

fn supply(outcome: Outcome) -> ItemSupply {
    match outcome {
        Outcome::Complete => ItemSupply::Complete,
        Outcome::Partial => ItemSupply::Partial,
        Outcome::NotDispensed => ItemSupply::NotDispensed,
    }
}

pub fn dispense(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    body: &DispenseRequest,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let mut loaded = held(conn, who, id, "dispense prescriptions", at)?;
    if loaded.row.pending_cancellation {
        return Err(AppError::PendingCancellation);
    }
    if body.items.is_empty() {
        return Err(AppError::field(
            "items",
            "a notification names at least one item",
        ));
    }
    let prior_status = loaded.status();
    let prior_items: Vec<ItemSnapshot> = loaded.items.iter().map(ItemSnapshot::of).collect();
    let mut seen = HashSet::new();
    for (index, line) in body.items.iter().enumerate() {
        let field = |name: &str| format!("items[{index}].{name}");
        if !seen.insert(line.line) {
            return Err(AppError::field(field("line"), "each line at most once"));
        }
        let item = loaded
            .items
            .iter_mut()
            .find(|i| i.line == line.line)
            .ok_or_else(|| AppError::field(field("line"), format!("no line {}", line.line)))?;
        let current = item.status.0;
        let illegal =
            || AppError::illegal(format!("dispense line {}", line.line), current.to_string());
        let mut next = machine::dispense_item(current, supply(line.outcome)).ok_or_else(illegal)?;
        match line.outcome {
            Outcome::Complete => {
                item.dispensed_quantity = item.quantity;
            }
            Outcome::Partial => {
                let supplied = quantity_field(
                    line.quantity.as_ref().ok_or_else(|| {
                        AppError::field(field("quantity"), "a partial supply names its quantity")
                    })?,
                    &field("quantity"),
                )?;
                // Exact decimals: ten supplies of 0.1 of an item of 1 add up to exactly 1.
                let total = item.dispensed_quantity.get() + supplied;
                let remaining = item.quantity.get() - item.dispensed_quantity.get();
                if total > item.quantity.get() {
                    return Err(AppError::field(
                        field("quantity"),
                        format!("more than the {remaining} still to supply"),
                    ));
                }
                if total == item.quantity.get() {
                    next = machine::dispense_item(current, ItemSupply::Complete)
                        .ok_or_else(illegal)?;
                }
                item.dispensed_quantity = Thousandths::new(total);
            }
            Outcome::NotDispensed => {
                let reason = line
                    .reason
                    .as_deref()
                    .and_then(NotDispensedReason::parse)
                    .ok_or_else(|| {
                        AppError::field(field("reason"), "a not-dispensed reason 0001 to 0011")
                    })?;
                item.not_dispensed_reason = Some(Code(reason));
            }
        }
        item.status = Code(next);
        if line.outcome != Outcome::Partial && line.quantity.is_some() {
            return Err(AppError::field(
                field("quantity"),
                "only a partial supply names a quantity",
            ));
        }
        if line.outcome != Outcome::NotDispensed && line.reason.is_some() {
            return Err(AppError::field(
                field("reason"),
                "only not_dispensed takes a reason",
            ));
        }
    }
    let outcome = DispenseOutcome::of(&loaded.item_statuses());
    let to = transition(&loaded, Event::Dispense(outcome))?;
    save(conn, &mut loaded, to, at)?;
    let next_issue = if matches!(to, Status::Dispensed | Status::NotDispensed) {
        issues::activate_next(conn, &loaded, at)?
    } else {
        None
    };
    rows::insert_notification(
        conn,
        &Notification {
            uuid: uuid::Uuid::new_v4().to_string(),
            prescription_uuid: loaded.row.uuid.clone(),
            org: who.org.clone(),
            actor: who.sub.clone(),
            created_at: at,
            withdrawn: false,
            prior_status: Code(prior_status),
            prior_items: serde_json::to_string(&prior_items)?,
            body: serde_json::to_string(body)?,
        },
    )?;
    let mut entries = vec![audit::Pending {
        who: who.clone(),
        action: "dispensed",
        prescription_uuid: loaded.row.uuid.clone(),
        detail: dispensed_detail(to, body, next_issue.as_ref()),
    }];
    entries.extend(next_issue.map(|next| next.entry(&system(), "activated", json!({}))));
    audit::append_each(conn, entries, at)?;
    Ok(loaded.view())
}

/// The audit detail of a dispense notification, with the next issue it made available.
fn dispensed_detail(
    to: Status,
    body: &DispenseRequest,
    next_issue: Option<&issues::Moved>,
) -> serde_json::Value {
    let mut detail = json!({"status": to.code(), "items": body.items});
    if let Some(next) = next_issue {
        detail["next_issue"] = json!({"issue_number": next.issue_number, "status": next.to.code()});
    }
    detail
}

pub fn withdraw(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<PrescriptionView, AppError> {
    let mut loaded = held(conn, who, id, "withdraw dispense notifications", at)?;
    let Some((notification, Code(restored), prior_items)) =
        rows::latest_notification(conn, &loaded.row.uuid)?
    else {
        return Err(AppError::illegal(
            "withdraw (no dispense notification)",
            loaded.status().to_string(),
        ));
    };
    let to = transition(&loaded, Event::Withdraw { restored })?;
    let snapshot: Vec<ItemSnapshot> = serde_json::from_str(&prior_items)?;
    for item in &mut loaded.items {
        if let Some(before) = snapshot.iter().find(|s| s.uuid == item.uuid) {
            before.restore(item)?;
        }
    }
    let was_complete = matches!(loaded.status(), Status::Dispensed | Status::NotDispensed);
    save(conn, &mut loaded, to, at)?;
    let recalled = if was_complete {
        issues::recall_next(conn, &loaded, at)?
    } else {
        None
    };
    rows::mark_withdrawn(conn, &notification)?;
    let mut detail = json!({"status": to.code()});
    if let Some(recalled) = &recalled {
        detail["recalled_issue"] = json!(recalled.issue_number);
    }
    let mut entries = vec![audit::Pending {
        who: who.clone(),
        action: "withdrawn",
        prescription_uuid: loaded.row.uuid.clone(),
        detail,
    }];
    entries.extend(recalled.map(|recalled| recalled.entry(who, "recalled", json!({}))));
    audit::append_each(conn, entries, at)?;
    Ok(loaded.view())
}
