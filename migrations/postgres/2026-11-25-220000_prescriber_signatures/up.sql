-- Prescriber signatures (docs/signatures.md): enrolled public keys, prepared prescriptions
-- awaiting their signature, and the prescriber's JWS on each prescription (NULL on those issued
-- without one). Kept in step with the SQLite migration of the same name.
ALTER TABLE prescriptions ADD COLUMN prescriber_jws TEXT;

CREATE TABLE prescriber_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL,
    org TEXT NOT NULL,
    x TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);

CREATE TABLE prepared_prescriptions (
    prepared_id TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL,
    org TEXT NOT NULL,
    kid TEXT NOT NULL,
    signing_input TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    signature TEXT,
    prescription_uuid TEXT
);
CREATE INDEX prepared_prescriptions_by_expiry ON prepared_prescriptions (expires_at);
