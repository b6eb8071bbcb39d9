-- The whole EPS lifecycle (docs/service.md "Lifecycle"): every issue of a repeat-dispensing
-- prescription is its own row. `prescription_id` is the short-form ID all issues share (EPS keeps
-- one ID and numbers the instances); `short_id` stays the row's unique key: the ID itself for
-- issue 1, `ID/n` for issue n. Kept in step with the migration of the same name for the other
-- backend.
ALTER TABLE prescriptions ADD COLUMN prescription_id TEXT NOT NULL DEFAULT '';
UPDATE prescriptions SET prescription_id = short_id;
-- The dispensing interval of a repeat-dispensing prescription (EPS daysSupply).
ALTER TABLE prescriptions ADD COLUMN days_supply INTEGER;
-- Not releasable before this day (EPS dispenseWindowLow / a future-dated prescription).
ALTER TABLE prescriptions ADD COLUMN start_date DATE;
-- When a waiting issue (0000, 9001) becomes To Be Dispensed (EPS nominatedDownloadDate).
ALTER TABLE prescriptions ADD COLUMN ready_at TIMESTAMP;
-- Repeat prescribing (0002): the ID of the issue that authorised the repeats.
ALTER TABLE prescriptions ADD COLUMN authorisation TEXT;
CREATE INDEX prescriptions_by_issue ON prescriptions (prescription_id, issue_number);
CREATE INDEX prescriptions_by_status_ready ON prescriptions (status, ready_at);
CREATE INDEX prescriptions_by_status_updated ON prescriptions (status, updated_at);
