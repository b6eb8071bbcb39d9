//! `POST /api/v1/prescriptions/{id}/dispense` (an item-level dispense notification) and
//! `…/dispense/withdraw` (undo the latest one).

use std::collections::HashSet;

use chrono::NaiveDateTime;
use prescrypt_barcode::PrescriptionId;
use prescrypt_barcode::gs1::ElementString;
use prescrypt_contract::quantity::Decimal;
use prescrypt_contract::views::{
    DispenseRequest, Outcome, PrescriptionView, SuppliedProduct, Supply,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::create::{quantity_field, text_field};
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
use crate::store::supplies::Supplies;

/// An item as it was before a notification (stored as JSON with the notification).
#[derive(Debug, Serialize, Deserialize)]
struct ItemSnapshot {
    uuid: String,
    status: String,
    #[serde(with = "prescrypt_contract::quantity::as_number")]
    dispensed_quantity: Decimal,
    not_dispensed_reason: Option<String>,
    #[serde(default)]
    supplies: Vec<Supply>,
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
            supplies: item.supplies.list().to_vec(),
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
        item.supplies = Supplies::new(self.supplies.clone());
        Ok(())
    }
}

fn supply(outcome: Outcome) -> ItemSupply {
    match outcome {
        Outcome::Complete => ItemSupply::Complete,
        Outcome::Partial => ItemSupply::Partial,
        Outcome::NotDispensed => ItemSupply::NotDispensed,
        Outcome::Owing => ItemSupply::Owing,
    }
}

/// A GS1 value (GTIN, batch, serial) checked by the one GS1 parser, as the element string
/// `AI value` would be.
fn gs1_value(ai: &str, value: &str, field: &str) -> Result<String, AppError> {
    let text = format!("{ai}{value}");
    let valid = ElementString::parse(&text)
        .map_err(|e| AppError::field(field, e.to_string()))?
        .elements()
        .count()
        == 1;
    if valid {
        Ok(value.to_owned())
    } else {
        Err(AppError::field(field, format!("one GS1 AI ({ai}) value")))
    }
}

/// The record of one supply of `item`: the prescribed product unless `supplied` names another
/// (then it is a substitution), with the pack's details when known.
fn supply_record(
    item: &ItemRow,
    quantity: Decimal,
    supplied: Option<&SuppliedProduct>,
    at: NaiveDateTime,
    field: &dyn Fn(&str) -> String,
) -> Result<Supply, AppError> {
    let product = supplied.cloned().unwrap_or(SuppliedProduct {
        code: None,
        display: None,
        gtin: None,
        batch: None,
        expiry: None,
        serial: None,
    });
    let (code, display) = match (&product.code, &product.display) {
        (None, None) => (item.code.clone(), item.display.clone()),
        (Some(code), Some(display)) => (
            text_field(code, &field("supplied.code"), 64)?,
            text_field(display, &field("supplied.display"), 256)?,
        ),
        (Some(_), None) => {
            return Err(AppError::field(
                field("supplied.display"),
                "a substituted product names its display",
            ));
        }
        (None, Some(_)) => {
            return Err(AppError::field(
                field("supplied.code"),
                "a product's display comes with its dm+d code",
            ));
        }
    };
    if let Some(expiry) = product.expiry
        && expiry < at.date()
    {
        return Err(AppError::field(
            field("supplied.expiry"),
            format!("the pack expired on {expiry}"),
        ));
    }
    Ok(Supply {
        at: at.and_utc(),
        quantity: quantity.normalize(),
        unit: item.unit.clone(),
        substitution: code != item.code,
        code,
        display,
        gtin: product
            .gtin
            .as_deref()
            .map(|gtin| gs1_value("01", gtin, &field("supplied.gtin")))
            .transpose()?,
        batch: product
            .batch
            .as_deref()
            .map(|batch| gs1_value("10", batch, &field("supplied.batch")))
            .transpose()?,
        expiry: product.expiry,
        serial: product
            .serial
            .as_deref()
            .map(|serial| gs1_value("21", serial, &field("supplied.serial")))
            .transpose()?,
    })
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
        let supplied_now = match line.outcome {
            Outcome::Complete => {
                let remaining = item.quantity.get() - item.dispensed_quantity.get();
                item.dispensed_quantity = item.quantity;
                Some(remaining)
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
                Some(supplied)
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
                None
            }
            Outcome::Owing => None,
        };
        match supplied_now {
            Some(quantity) => {
                let record = supply_record(item, quantity, line.supplied.as_ref(), at, &field)?;
                item.supplies.push(record);
            }
            None if line.supplied.is_some() => {
                return Err(AppError::field(
                    field("supplied"),
                    "only a complete or partial supply hands over a product",
                ));
            }
            None => {}
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
            uuid: crate::store::ordered_uuid(at),
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

/// The line number of each item (by its UUID) of a prescription the caller holds: EPS
/// notifications name items by UUID.
pub fn held_item_lines(
    conn: &mut DbConnection,
    who: &Principal,
    id: &PrescriptionId,
    at: NaiveDateTime,
) -> Result<Vec<(String, i32)>, AppError> {
    let loaded = held(conn, who, id, "dispense prescriptions", at)?;
    Ok(loaded
        .items
        .iter()
        .map(|item| (item.uuid.clone(), item.line))
        .collect())
}
