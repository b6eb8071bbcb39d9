-- Signed checkpoints of the audit log (src/audit/checkpoint.rs), published at
-- GET /api/v1/audit/checkpoints. Each row is the signed line also appended to the checkpoint
-- file outside the database; kept in step with the SQLite migration of the same name.
CREATE TABLE audit_checkpoint (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    signed TEXT NOT NULL
);
