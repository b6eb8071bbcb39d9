-- Deleting a prescription (retention) checks the holders' foreign key: without an index leading
-- with prescription_uuid, SQLite scanned the whole table once per deleted row.
CREATE INDEX prescription_holders_by_prescription ON prescription_holders (prescription_uuid);
