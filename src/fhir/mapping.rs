//! Between EPS resources and the contract's types: a prescription-order Bundle as a create
//! request ([`read_order`]), a prescription as the prescription-order Bundle a pharmacy is
//! released ([`prescription_bundle`]) and as the tracker's Task ([`tracker_task`]).

use std::collections::HashMap;

use prescrypt_contract::quantity::QuantityText;
use prescrypt_contract::views::{NewItem, NewPatient, NewPrescription, PrescriptionView};
use serde_json::{Value, json};

use super::codes;
use super::message::Message;
use super::read::Node;
use crate::error::AppError;

/// EPS course of therapy ↔ Prescrypt treatment type.
const COURSES: [(&str, &str, &str); 3] = [
    ("acute", "0001", codes::COURSE_OF_THERAPY_HL7),
    ("continuous", "0002", codes::COURSE_OF_THERAPY_HL7),
    (
        "continuous-repeat-dispensing",
        "0003",
        codes::COURSE_OF_THERAPY_NHS,
    ),
];

/// EPS MedicationRequest.intent of each treatment type.
fn intent(treatment_type: &str) -> &'static str {
    match treatment_type {
        "0002" => "instance-order",
        "0003" => "original-order",
        _ => "order",
    }
}

/// A prescription-order Bundle read as a create request.
#[derive(Debug)]
pub struct Order<'a> {
    pub new: NewPrescription,
    /// Where each member of `new` came from: the `/api/v1` field name → its FHIRPath, so a
    /// refusal by the one validation ([`crate::prescriptions::validate_new`]) names the element.
    pub locations: HashMap<String, String>,
    /// The prescriber key that signs (`Practitioner.identifier`, system [`codes::PRESCRIBER_KEY`]).
    pub kid: Option<Node<'a>>,
    /// `groupIdentifier`: the short-form ID, and the UUID of its PrescriptionId extension.
    pub short_id: Option<Node<'a>>,
    pub uuid: Option<Node<'a>>,
}

impl Order<'_> {
    /// An error of the shared validation, with its field put as the FHIRPath it came from.
    pub fn relocate(&self, error: AppError) -> AppError {
        let locate = |field: &str| -> Option<String> {
            if let Some(path) = self.locations.get(field) {
                return Some(path.clone());
            }
            // `items[2]`, `items: …`: the item, or the entries.
            let head = field.split([':', '.']).next().unwrap_or(field);
            self.locations
                .get(head)
                .cloned()
                .or_else(|| self.locations.get("items").cloned())
        };
        error.rename_field(|field| locate(&field).unwrap_or(field))
    }
}

/// One value every MedicationRequest of the order must agree on.
fn agree<'a, T: PartialEq + Clone>(
    seen: &mut Option<(T, String)>,
    value: T,
    at: &Node<'a>,
    what: &str,
) -> Result<(), AppError> {
    match seen {
        Some((first, path)) if *first != value => Err(at.refused(
            "inconsistent-line-items",
            format!("every MedicationRequest of a prescription has the same {what} (see {path})"),
        )),
        Some(_) => Ok(()),
        None => {
            *seen = Some((value, at.path.clone()));
            Ok(())
        }
    }
}

fn patient_of(
    message: &Message<'_>,
    reference: &Node<'_>,
    locations: &mut HashMap<String, String>,
) -> Result<NewPatient, AppError> {
    let entry = message.resolve(reference)?;
    if entry.resource_type != "Patient" {
        return Err(reference.invalid("a reference to the Patient"));
    }
    let patient = &entry.resource;
    let nhs_number =
        patient.req_identifier("identifier", codes::NHS_NUMBER, "the patient's NHS number")?;
    locations.insert("patient.nhs_number".into(), nhs_number.path.clone());
    let names = patient.list("name")?;
    let name = names.first().ok_or_else(|| {
        AppError::invalid(
            "missing-field",
            format!("{}.name", patient.path),
            "the patient's name",
        )
    })?;
    locations.insert("patient.name".into(), name.path.clone());
    let text = match name.opt_str("text")? {
        Some(text) => text.to_owned(),
        None => {
            let mut parts = Vec::new();
            for given in name.list("given")? {
                parts.push(given.str()?.to_owned());
            }
            if let Some(family) = name.opt_str("family")? {
                parts.push(family.to_owned());
            }
            parts.join(" ")
        }
    };
    let birth_date = patient.req("birthDate")?;
    locations.insert("patient.birth_date".into(), birth_date.path.clone());
    locations.insert("patient".into(), patient.path.clone());
    Ok(NewPatient {
        nhs_number: nhs_number.str()?.to_owned(),
        name: text,
        birth_date: birth_date.str()?.to_owned(),
    })
}

/// The number of a Quantity's `value` as written (a JSON number; its text is the quantity).
fn quantity_text(value: &Node<'_>) -> Result<QuantityText, AppError> {
    match value.value {
        Value::Number(number) => number
            .to_string()
            .parse()
            .map_err(|_| value.invalid("a decimal quantity")),
        _ => Err(value.invalid("a number")),
    }
}

/// Reads a prescription-order Bundle (already known to be one).
pub fn read_order<'a>(message: &Message<'a>) -> Result<Order<'a>, AppError> {
    let mut locations = HashMap::new();
    let requests = message.of_type("MedicationRequest");
    if requests.is_empty() {
        return Err(message
            .bundle
            .invalid("a prescription-order has MedicationRequest entries"));
    }
    locations.insert("items".to_owned(), format!("{}.entry", message.bundle.path));
    let mut patient: Option<(String, String)> = None; // (reference, where first seen)
    let mut course = None;
    let mut repeats = None;
    let mut nominated = None;
    let mut schedule = None;
    // Repeat dispensing's interval and a future start date, from the first request that has them.
    let mut days_supply: Option<i32> = None;
    let mut start_date: Option<String> = None;
    let mut short_id: Option<(String, String)> = None;
    let mut uuid: Option<(Option<String>, String)> = None;
    let (mut short_id_node, mut uuid_node) = (None, None);
    let mut new_patient = None;
    let mut items = Vec::new();
    for (index, entry) in requests.iter().enumerate() {
        let request = &entry.resource;
        let at = |name: &str| format!("items[{index}].{name}");
        locations.insert(format!("items[{index}]"), request.path.clone());
        let status = request.req("status")?;
        if status.str()? != "active" {
            return Err(status.invalid("a new prescription's MedicationRequest is active"));
        }
        let intent_node = request.req("intent")?;
        if !["order", "instance-order", "original-order"].contains(&intent_node.str()?) {
            return Err(intent_node.invalid("order, instance-order or original-order"));
        }
        // The medicine (dm+d).
        let medication = request.req("medicationCodeableConcept")?;
        let mut medicine = None;
        for coding in medication.list("coding")? {
            if matches!(coding.opt_str("system")?, Some(codes::SNOMED | codes::DM_D)) {
                medicine = Some(coding);
                break;
            }
        }
        let medicine = medicine.ok_or_else(|| {
            medication.invalid(format!(
                "a dm+d coding ({} or {})",
                codes::SNOMED,
                codes::DM_D
            ))
        })?;
        let code = medicine.req("code")?;
        let display = medicine.req("display")?;
        locations.insert(at("code"), code.path.clone());
        locations.insert(at("display"), display.path.clone());
        // Quantity and dosage.
        let dispense_request = request.req("dispenseRequest")?;
        if let Some(period) = dispense_request.get("validityPeriod")
            && let Some(start) = period.opt_str("start")?
            && start_date.is_none()
        {
            locations.insert("start_date".into(), format!("{}.start", period.path));
            start_date = Some(start.get(..10).unwrap_or(start).to_owned());
        }
        if let Some(duration) = dispense_request.get("expectedSupplyDuration")
            && days_supply.is_none()
        {
            let value = duration.req("value")?;
            locations.insert("days_supply".into(), value.path.clone());
            days_supply = Some(
                value
                    .value
                    .as_i64()
                    .and_then(|days| i32::try_from(days).ok())
                    .ok_or_else(|| value.invalid("whole days"))?,
            );
        }
        let quantity = dispense_request.req("quantity")?;
        let value = quantity.req("value")?;
        let unit = quantity.req("unit")?;
        locations.insert(at("quantity"), value.path.clone());
        locations.insert(at("unit"), unit.path.clone());
        let dosages = request.list("dosageInstruction")?;
        let first_dosage = dosages.first().ok_or_else(|| {
            AppError::invalid(
                "missing-field",
                format!("{}.dosageInstruction", request.path),
                "the dosage instructions",
            )
        })?;
        let mut texts = Vec::new();
        for dosage in &dosages {
            texts.push(dosage.req_str("text")?);
        }
        locations.insert(at("dosage"), format!("{}.text", first_dosage.path));
        // The patient, one for all items.
        let subject = request.req("subject")?;
        let reference = subject.req_str("reference")?.to_owned();
        agree(&mut patient, reference, &subject, "subject")?;
        if new_patient.is_none() {
            new_patient = Some(patient_of(message, &subject, &mut locations)?);
        }
        // Course of therapy → treatment type; repeats → issue count.
        let course_node = request
            .req("courseOfTherapyType")?
            .req_code_in(&[codes::COURSE_OF_THERAPY_HL7, codes::COURSE_OF_THERAPY_NHS])?;
        let treatment_type = COURSES
            .iter()
            .find(|(code, ..)| *code == course_node.str().unwrap_or_default())
            .map(|(_, treatment_type, _)| *treatment_type)
            .ok_or_else(|| {
                course_node.invalid("acute, continuous or continuous-repeat-dispensing")
            })?;
        locations.insert("treatment_type".into(), course_node.path.clone());
        agree(
            &mut course,
            treatment_type,
            &course_node,
            "course of therapy",
        )?;
        if let Some(node) = dispense_request.get("numberOfRepeatsAllowed") {
            locations.insert("issue_count".into(), node.path.clone());
            let count = node
                .value
                .as_u64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| node.invalid("a count of repeats"))?;
            agree(&mut repeats, count, &node, "numberOfRepeatsAllowed")?;
        }
        // Nomination: the performer with site type P1.
        let performer = match dispense_request.get("performer") {
            Some(node) => {
                let ods = node
                    .identifier("identifier", codes::ODS_CODE)?
                    .ok_or_else(|| {
                        node.invalid(format!("an identifier of system {}", codes::ODS_CODE))
                    })?;
                locations.insert("nominated_pharmacy".into(), ods.path.clone());
                Some(ods.str()?.to_owned())
            }
            None => None,
        };
        if let Some(site) = dispense_request.extension(codes::EXT_PERFORMER_SITE_TYPE)? {
            let code = site
                .req("valueCoding")?
                .req_code_in(&[codes::PERFORMER_SITE_TYPE])?;
            if code.str()? == "P1" && performer.is_none() {
                return Err(AppError::invalid(
                    "missing-field",
                    format!("{}.performer", dispense_request.path),
                    "a P1 (nominated) prescription names the pharmacy",
                ));
            }
        }
        agree(
            &mut nominated,
            performer.clone(),
            &dispense_request,
            "performer",
        )?;
        // Controlled drug schedule.
        let cd = match request.extension(codes::EXT_CONTROLLED_DRUG)? {
            Some(extension) => {
                let mut found = None;
                for sub in extension.list("extension")? {
                    if sub.opt_str("url")? == Some("schedule") {
                        let code = sub
                            .req("valueCoding")?
                            .req_code_in(&[codes::CONTROLLED_DRUG])?;
                        locations.insert("controlled_drug_schedule".into(), code.path.clone());
                        let number = code
                            .str()?
                            .strip_prefix("CD")
                            .and_then(|rest| rest.chars().next())
                            .and_then(|c| c.to_digit(10))
                            .and_then(|d| u8::try_from(d).ok())
                            .ok_or_else(|| code.invalid("CD2 to CD5"))?;
                        found = Some(number);
                    }
                }
                found
            }
            None => None,
        };
        agree(&mut schedule, cd, request, "controlled drug schedule")?;
        // The prescription's IDs, when the sender carries them.
        if let Some(group) = request.get("groupIdentifier") {
            let value = group.req("value")?;
            if group.opt_str("system")? != Some(codes::SHORT_FORM_ID) {
                return Err(group.invalid(format!("system {}", codes::SHORT_FORM_ID)));
            }
            agree(
                &mut short_id,
                value.str()?.to_owned(),
                &value,
                "groupIdentifier",
            )?;
            short_id_node.get_or_insert(value);
            let long = match group.extension(codes::EXT_PRESCRIPTION_ID)? {
                Some(extension) => {
                    let node = extension.req("valueIdentifier")?.req("value")?;
                    let text = node.str()?.to_owned();
                    uuid_node.get_or_insert(node);
                    Some(text)
                }
                None => None,
            };
            agree(&mut uuid, long, &group, "prescription UUID")?;
        }
        items.push(NewItem {
            code: code.str()?.to_owned(),
            display: display.str()?.to_owned(),
            quantity: quantity_text(&value)?,
            unit: unit.str()?.to_owned(),
            dosage: texts.join("\n"),
        });
    }
    let treatment_type = course.map(|(t, _)| t).unwrap_or("0001");
    let issue_count = repeats
        .map(|(allowed, _)| allowed + 1)
        .filter(|_| treatment_type != "0001");
    let mut kid = None;
    for practitioner in message.of_type("Practitioner") {
        if let Some(node) = practitioner
            .resource
            .identifier("identifier", codes::PRESCRIBER_KEY)?
        {
            kid = Some(node);
        }
    }
    let new = NewPrescription {
        patient: new_patient.ok_or_else(|| message.bundle.invalid("a Patient"))?,
        items,
        nominated_pharmacy: nominated.and_then(|(n, _)| n),
        treatment_type: Some(treatment_type.to_owned()),
        issue_count,
        controlled_drug_schedule: schedule.and_then(|(s, _)| s),
        days_supply: days_supply.filter(|_| treatment_type == "0003"),
        start_date,
        authorisation: None,
    };
    Ok(Order {
        new,
        locations,
        kid,
        short_id: short_id_node,
        uuid: uuid_node,
    })
}

/// A quantity as a FHIR decimal (a JSON number, as `/api/v1` writes it).
fn number(quantity: prescrypt_contract::quantity::Decimal) -> Value {
    let text = quantity.normalize().to_string();
    text.parse::<i64>()
        .map(Value::from)
        .or_else(|_| text.parse::<f64>().map(Value::from))
        .unwrap_or(Value::Null)
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn ods(code: &str) -> Value {
    json!({"identifier": {"system": codes::ODS_CODE, "value": code}})
}

fn group_identifier(view: &PrescriptionView) -> Value {
    json!({
        "system": codes::SHORT_FORM_ID,
        "value": view.id,
        "extension": [{
            "url": codes::EXT_PRESCRIPTION_ID,
            "valueIdentifier": {"system": codes::PRESCRIPTION_UUID, "value": view.uuid},
        }],
    })
}

/// FHIR `dateTime` of a UTC time (seconds precision, `Z`).
fn date_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A prescription as the signed prescription-order Bundle EPS releases: MessageHeader, one
/// MedicationRequest per item, Patient, the prescriber (PractitionerRole, Practitioner,
/// Organization) and the Provenance carrying the prescriber's signature and the service's
/// countersignature (each the compact JWS, base64 in `signature.data`).
pub fn prescription_bundle(view: &PrescriptionView) -> Value {
    let urn = || format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let (patient, role, practitioner, organization, provenance, header) =
        (urn(), urn(), urn(), urn(), urn(), urn());
    let (course_code, _, course_system) = COURSES
        .iter()
        .find(|(_, treatment_type, _)| *treatment_type == view.treatment_type.code)
        .copied()
        .unwrap_or(COURSES[0]);
    let mut entries = Vec::new();
    let mut focus = Vec::new();
    let mut requests = Vec::new();
    for item in &view.items {
        let full_url = format!("urn:uuid:{}", item.uuid);
        focus.push(json!({"reference": full_url}));
        let mut extension = vec![json!({
            "url": codes::EXT_PRESCRIPTION_TYPE,
            "valueCoding": coding(codes::PRESCRIPTION_TYPE, codes::PRIMARY_CARE_MEDICAL.0, codes::PRIMARY_CARE_MEDICAL.1),
        })];
        if let Some(schedule) = view.controlled_drug_schedule {
            extension.push(json!({
                "url": codes::EXT_CONTROLLED_DRUG,
                "extension": [{"url": "schedule", "valueCoding": coding(codes::CONTROLLED_DRUG, &format!("CD{schedule}"), &format!("Schedule {schedule}"))}],
            }));
        }
        if view.treatment_type.code != "0001" {
            extension.push(json!({
                "url": codes::EXT_REPEAT_INFORMATION,
                "extension": [
                    {"url": "numberOfRepeatPrescriptionsAllowed", "valueUnsignedInt": view.issue_count - 1},
                    {"url": "numberOfRepeatPrescriptionsIssued", "valueUnsignedInt": view.issue_number - 1},
                ],
            }));
        }
        let mut dispense_request = json!({
            "extension": [{
                "url": codes::EXT_PERFORMER_SITE_TYPE,
                "valueCoding": {"system": codes::PERFORMER_SITE_TYPE, "code": if view.nominated_pharmacy.is_some() { "P1" } else { "0004" }},
            }],
            // A future-dated prescription is valid from its start date.
            "validityPeriod": {
                "start": view.start_date.clone().unwrap_or_else(|| date_time(view.created_at)),
                "end": date_time(view.expires_at),
            },
            "quantity": {"value": number(item.quantity), "unit": item.unit},
        });
        if let Some(days) = view.days_supply {
            dispense_request["expectedSupplyDuration"] = json!({
                "value": days, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d",
            });
        }
        if view.treatment_type.code != "0001" {
            dispense_request["numberOfRepeatsAllowed"] = json!(view.issue_count - 1);
        }
        if let Some(pharmacy) = &view.nominated_pharmacy {
            dispense_request["performer"] = ods(pharmacy);
        }
        let status = match view.status.code.as_str() {
            "0005" => "cancelled",
            "0006" | "0007" | "0008" | "0009" => "completed",
            "0004" => "stopped",
            _ => "active",
        };
        let request = json!({
            "resourceType": "MedicationRequest",
            "extension": extension,
            "identifier": [{"system": codes::LINE_ITEM, "value": item.uuid}],
            "status": status,
            "intent": intent(&view.treatment_type.code),
            "category": [{"coding": [coding(codes::CATEGORY, "community", "Community")]}],
            "medicationCodeableConcept": {"coding": [coding(codes::SNOMED, &item.code, &item.display)]},
            "subject": {"reference": patient},
            "authoredOn": date_time(view.created_at),
            "requester": {"reference": role},
            "groupIdentifier": group_identifier(view),
            "courseOfTherapyType": {"coding": [{"system": course_system, "code": course_code}]},
            "dosageInstruction": [{"text": item.dosage}],
            "dispenseRequest": dispense_request,
        });
        requests.push(json!({"fullUrl": full_url, "resource": request}));
    }
    let mut header_resource = json!({
        "resourceType": "MessageHeader",
        "eventCoding": {"system": codes::MESSAGE_EVENT, "code": codes::PRESCRIPTION_ORDER, "display": "Prescription Order"},
        "sender": ods(&view.prescriber.org),
        "source": {"endpoint": format!("urn:nhs-uk:addressing:ods:{}", view.prescriber.org)},
        "focus": focus,
    });
    if let Some(pharmacy) = &view.nominated_pharmacy {
        header_resource["destination"] = json!([{"endpoint": format!("urn:nhs-uk:addressing:ods:{pharmacy}"), "receiver": ods(pharmacy)}]);
    }
    entries.push(json!({"fullUrl": header, "resource": header_resource}));
    entries.extend(requests);
    entries.push(json!({"fullUrl": patient, "resource": {
        "resourceType": "Patient",
        "identifier": [{"system": codes::NHS_NUMBER, "value": view.patient.nhs_number}],
        "name": [{"text": view.patient.name}],
        "birthDate": view.patient.birth_date,
    }}));
    entries.push(json!({"fullUrl": role, "resource": {
        "resourceType": "PractitionerRole",
        "practitioner": {"reference": practitioner},
        "organization": {"reference": organization},
    }}));
    entries.push(json!({"fullUrl": practitioner, "resource": {
        "resourceType": "Practitioner",
        "identifier": [{"system": codes::PROFESSIONAL_ID, "value": view.prescriber.id}],
    }}));
    entries.push(json!({"fullUrl": organization, "resource": {
        "resourceType": "Organization",
        "identifier": [{"system": codes::ODS_CODE, "value": view.prescriber.org}],
    }}));
    let mut signatures = Vec::new();
    let signature_type =
        json!([{"system": codes::SIGNATURE_TYPE, "code": codes::SIGNATURE_TYPE_AUTHOR}]);
    let base64 = |jws: &str| data_encoding::BASE64.encode(jws.as_bytes());
    if let Some(jws) = &view.prescriber_jws {
        signatures.push(json!({
            "type": signature_type,
            "when": date_time(view.created_at),
            "who": {"reference": role},
            "sigFormat": "application/jose",
            "data": base64(jws),
        }));
    }
    signatures.push(json!({
        "type": [{"system": codes::SIGNATURE_TYPE, "code": "1.2.840.10065.1.12.1.5", "display": "Verification Signature"}],
        "when": date_time(view.created_at),
        "who": {"identifier": {"system": codes::ODS_CODE, "value": crate::auth::SYSTEM_ORG}, "display": "Prescrypt"},
        "sigFormat": "application/jose",
        "data": base64(&view.jws),
    }));
    entries.push(json!({"fullUrl": provenance, "resource": {
        "resourceType": "Provenance",
        "target": view.items.iter().map(|item| json!({"reference": format!("urn:uuid:{}", item.uuid)})).collect::<Vec<_>>(),
        "recorded": date_time(view.created_at),
        "agent": [{"who": {"reference": role}}],
        "signature": signatures,
    }}));
    json!({
        "resourceType": "Bundle",
        "id": view.uuid,
        "identifier": {"system": codes::MESSAGE_ID, "value": view.uuid},
        "type": "message",
        "timestamp": date_time(view.created_at),
        "entry": entries,
    })
}

/// The EPS Task of a prescription as the tracker shows it: `businessStatus` the prescription
/// status, one `output` per line item with its item status.
pub fn tracker_task(view: &PrescriptionView) -> Value {
    let status = match view.status.code.as_str() {
        "0000" | "0001" | "9000" | "9001" => "requested",
        "0002" | "0003" => "in-progress",
        "0005" => "cancelled",
        "0004" => "failed",
        _ => "completed",
    };
    let mut task = json!({
        "resourceType": "Task",
        "id": view.uuid,
        "identifier": [{"system": codes::MESSAGE_ID, "value": view.uuid}],
        "groupIdentifier": {"system": codes::SHORT_FORM_ID, "value": view.id},
        "status": status,
        "businessStatus": {"coding": [coding(codes::TASK_BUSINESS_STATUS, &view.status.code, &view.status.display)]},
        "intent": "order",
        "focus": {"identifier": {"system": codes::PRESCRIPTION_UUID, "value": view.uuid}},
        "for": {"identifier": {"system": codes::NHS_NUMBER, "value": view.patient.nhs_number}},
        "authoredOn": date_time(view.created_at),
        "requester": ods(&view.prescriber.org),
        "output": view.items.iter().map(|item| json!({
            "type": {"coding": [coding(codes::DISPENSE_TYPE, &item.status.code, &item.status.display)]},
            "valueReference": {"identifier": {"system": codes::LINE_ITEM, "value": item.uuid}, "display": item.display},
        })).collect::<Vec<_>>(),
    });
    if let Some(dispenser) = &view.dispenser {
        task["owner"] = ods(dispenser);
    }
    task
}
