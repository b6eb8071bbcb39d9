-- Prescrypt schema (PostgreSQL). Kept in step with migrations/sqlite: only types diesel's
-- MultiConnection shares (TEXT UUIDs, naive UTC TIMESTAMP, DOUBLE, BIGINT, BOOLEAN).
CREATE TABLE org_sequences (
    org TEXT PRIMARY KEY NOT NULL,
    next_value BIGINT NOT NULL
);

CREATE TABLE prescriptions (
    uuid TEXT PRIMARY KEY NOT NULL,
    short_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    pending_cancellation BOOLEAN NOT NULL DEFAULT FALSE,
    cancellation_requested_by TEXT,
    cancel_reason TEXT,
    treatment_type TEXT NOT NULL,
    issue_number INTEGER NOT NULL,
    issue_count INTEGER NOT NULL,
    prescriber_id TEXT NOT NULL,
    prescriber_org TEXT NOT NULL,
    patient_nhs_number TEXT NOT NULL,
    patient_name TEXT NOT NULL,
    patient_birth_date DATE NOT NULL,
    nominated_pharmacy TEXT,
    controlled_drug_schedule INTEGER,
    dispenser TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    jws TEXT NOT NULL,
    token TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX prescriptions_nominated ON prescriptions (nominated_pharmacy, status, created_at);
CREATE INDEX prescriptions_expiry ON prescriptions (expires_at);

CREATE TABLE items (
    uuid TEXT PRIMARY KEY NOT NULL,
    prescription_uuid TEXT NOT NULL REFERENCES prescriptions (uuid),
    line INTEGER NOT NULL,
    code TEXT NOT NULL,
    display TEXT NOT NULL,
    quantity DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    dosage TEXT NOT NULL,
    status TEXT NOT NULL,
    dispensed_quantity DOUBLE PRECISION NOT NULL,
    not_dispensed_reason TEXT,
    UNIQUE (prescription_uuid, line)
);

CREATE TABLE dispense_notifications (
    uuid TEXT PRIMARY KEY NOT NULL,
    prescription_uuid TEXT NOT NULL REFERENCES prescriptions (uuid),
    org TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    withdrawn BOOLEAN NOT NULL DEFAULT FALSE,
    prior_status TEXT NOT NULL,
    prior_items TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX dispense_notifications_prescription ON dispense_notifications (prescription_uuid, created_at);

CREATE TABLE idempotency_keys (
    org TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org, key)
);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    org TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    prescription_uuid TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_prescription ON audit_log (prescription_uuid, seq);

-- The chain head: the write that appends an entry updates this single row, which serialises
-- appends (row lock on PostgreSQL, the one writer on SQLite) and pins the chain's end.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
