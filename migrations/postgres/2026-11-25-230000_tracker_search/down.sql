DROP INDEX prescriptions_by_prescriber_org;
DROP INDEX prescriptions_by_patient;
DROP INDEX prescriptions_by_created;
DROP TABLE prescription_holders;
