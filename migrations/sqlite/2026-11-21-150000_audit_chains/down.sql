-- Only possible while chains 2..16 are empty: the single chain cannot absorb their entries.
DELETE FROM audit_head WHERE id > 1 AND seq = 0;
CREATE TABLE audit_log_single (
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
INSERT INTO audit_log_single
SELECT seq, at, actor, org, role, action, prescription_uuid, detail, prev_hash, hash
FROM audit_log WHERE chain = 1;
DROP TABLE audit_log;
ALTER TABLE audit_log_single RENAME TO audit_log;
CREATE INDEX audit_log_prescription ON audit_log (prescription_uuid, seq);
