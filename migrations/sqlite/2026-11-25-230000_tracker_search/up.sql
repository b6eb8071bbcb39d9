-- Tracker search (GET /api/v1/prescriptions): every organisation that ever held a prescription
-- (written at each release), and the indexes of the keyset pages (created_at, uuid), newest first.
CREATE TABLE prescription_holders (
    org TEXT NOT NULL,
    prescription_uuid TEXT NOT NULL REFERENCES prescriptions (uuid),
    PRIMARY KEY (org, prescription_uuid)
);
INSERT INTO prescription_holders (org, prescription_uuid)
    SELECT DISTINCT org, prescription_uuid FROM audit_log
    WHERE action = 'released' AND prescription_uuid IS NOT NULL;
CREATE INDEX prescriptions_by_created ON prescriptions (created_at, uuid);
CREATE INDEX prescriptions_by_patient ON prescriptions (patient_nhs_number, created_at, uuid);
CREATE INDEX prescriptions_by_prescriber_org ON prescriptions (prescriber_org, created_at, uuid);
