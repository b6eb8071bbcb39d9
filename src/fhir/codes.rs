//! The identifier systems, code systems and extension URLs of the EPS FHIR API, as EPS spells
//! them. Every FHIR file names them from here.

pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SHORT_FORM_ID: &str = "https://fhir.nhs.uk/Id/prescription-order-number";
pub const PRESCRIPTION_UUID: &str = "https://fhir.nhs.uk/Id/prescription";
pub const LINE_ITEM: &str = "https://fhir.nhs.uk/Id/prescription-order-item-number";
pub const PROFESSIONAL_ID: &str = "https://fhir.nhs.uk/Id/sds-user-id";
pub const MESSAGE_ID: &str = "https://tools.ietf.org/html/rfc4122";

/// dm+d codes are SNOMED CT codes; EPS messages use the SNOMED system, the dm+d URI is accepted.
pub const SNOMED: &str = "http://snomed.info/sct";
pub const DM_D: &str = "https://dm-d.nhs.uk";

pub const MESSAGE_EVENT: &str = "https://fhir.nhs.uk/CodeSystem/message-event";
pub const PRESCRIPTION_TYPE: &str = "https://fhir.nhs.uk/CodeSystem/prescription-type";
pub const COURSE_OF_THERAPY_HL7: &str =
    "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy";
pub const COURSE_OF_THERAPY_NHS: &str =
    "https://fhir.nhs.uk/CodeSystem/medicationrequest-course-of-therapy";
pub const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/medicationrequest-category";
pub const PERFORMER_SITE_TYPE: &str = "https://fhir.nhs.uk/CodeSystem/dispensing-site-preference";
pub const CONTROLLED_DRUG: &str =
    "https://fhir.nhs.uk/CodeSystem/medicationrequest-controlled-drug";
pub const CANCEL_REASON: &str = "https://fhir.nhs.uk/CodeSystem/medicationrequest-status-reason";
pub const STATUS_HISTORY: &str = "https://fhir.nhs.uk/CodeSystem/medicationrequest-status-history";
pub const DISPENSE_TYPE: &str = "https://fhir.nhs.uk/CodeSystem/medicationdispense-type";
pub const NOT_DISPENSED_REASON: &str =
    "https://fhir.nhs.uk/CodeSystem/medicationdispense-status-reason";
pub const TASK_BUSINESS_STATUS: &str = "https://fhir.nhs.uk/CodeSystem/EPS-task-business-status";
pub const RETURN_REASON: &str =
    "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-return-status-reason";
pub const WITHDRAW_REASON: &str =
    "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-withdraw-reason";
pub const DISPENSER_ENDORSEMENT: &str =
    "https://fhir.nhs.uk/CodeSystem/medicationdispense-endorsement";
pub const CHARGE_EXEMPTION: &str = "https://fhir.nhs.uk/CodeSystem/prescription-charge-exemption";
pub const EXEMPTION_EVIDENCE: &str = "https://fhir.nhs.uk/CodeSystem/DM-exemption-evidence";
pub const PRESCRIPTION_CHARGE: &str = "https://fhir.nhs.uk/CodeSystem/DM-prescription-charge";
pub const EXT_CLAIM_MEDICATION_REQUEST: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ClaimMedicationRequestReference";
pub const ISSUE_CODE: &str = "https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode";
pub const EPS_ISSUE_CODE: &str = "https://fhir.nhs.uk/CodeSystem/EPS-IssueCode";
/// Prescrypt's own problem codes (the `code` of `/api/v1`'s problem+json).
pub const PROBLEM_CODE: &str = "https://prescrypt.example/problems";

pub const SIGNATURE_TYPE: &str = "urn:iso-astm:E1762-95:2013";
pub const SIGNATURE_TYPE_AUTHOR: &str = "1.2.840.10065.1.12.1.1";
/// Prescrypt's: the prepared prescription a prescriber's signature completes
/// (`Provenance.entity.what.identifier`), and the prescriber key that signs
/// (`Practitioner.identifier`, the key's `kid`).
pub const PREPARED_ID: &str = "https://prescrypt.example/fhir/Id/prepared-prescription";
pub const PRESCRIBER_KEY: &str = "https://prescrypt.example/fhir/Id/prescriber-key";

pub const EXT_PRESCRIPTION_ID: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionId";
pub const EXT_PRESCRIPTION_TYPE: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionType";
pub const EXT_PERFORMER_SITE_TYPE: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PerformerSiteType";
pub const EXT_CONTROLLED_DRUG: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-ControlledDrug";
pub const EXT_REPEAT_INFORMATION: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-EPS-RepeatInformation";
pub const EXT_STATUS_HISTORY: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionStatusHistory";
pub const EXT_GROUP_IDENTIFIER: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-GroupIdentifier";
pub const EXT_TASK_BUSINESS_STATUS: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-EPS-TaskBusinessStatus";

/// The message events of `MessageHeader.eventCoding`.
pub const PRESCRIPTION_ORDER: &str = "prescription-order";
pub const PRESCRIPTION_ORDER_UPDATE: &str = "prescription-order-update";
pub const DISPENSE_NOTIFICATION: &str = "dispense-notification";
pub const PRESCRIPTION_ORDER_RESPONSE: &str = "prescription-order-response";

/// The one prescription type Prescrypt issues as: primary care, medical prescriber.
pub const PRIMARY_CARE_MEDICAL: (&str, &str) =
    ("0101", "Primary Care Prescriber - Medical Prescriber");
