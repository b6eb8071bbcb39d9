-- Sixteen audit chains instead of one (src/audit.rs CHAINS); kept in step with the PostgreSQL
-- migration of the same name. SQLite cannot change a primary key in place, so the table is
-- rebuilt; the existing chain becomes chain 1, unchanged.
CREATE TABLE audit_log_chained (
    chain INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    org TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    prescription_uuid TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
INSERT INTO audit_log_chained
SELECT 1, seq, at, actor, org, role, action, prescription_uuid, detail, prev_hash, hash
FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_chained RENAME TO audit_log;
CREATE INDEX audit_log_prescription ON audit_log (prescription_uuid, seq);
WITH RECURSIVE chains(chain) AS (SELECT 2 UNION ALL SELECT chain + 1 FROM chains WHERE chain < 16)
INSERT INTO audit_head (id, seq, hash) SELECT chain, 0, '0000000000000000000000000000000000000000000000000000000000000000' FROM chains;
