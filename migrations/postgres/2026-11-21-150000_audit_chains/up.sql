-- Sixteen audit chains instead of one (src/audit.rs CHAINS): an append locks only its chain's
-- head row, so transactions about different prescriptions no longer queue on one row lock.
-- The existing chain becomes chain 1, unchanged (the chain number is not part of the hash:
-- moving an entry to another chain breaks the links of both).
ALTER TABLE audit_log ADD COLUMN chain INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (chain, seq);
INSERT INTO audit_head (id, seq, hash)
SELECT chain, 0, '0000000000000000000000000000000000000000000000000000000000000000' FROM generate_series(2, 16) AS chain;
