DROP INDEX prescriptions_by_status_updated;
DROP INDEX prescriptions_by_status_ready;
DROP INDEX prescriptions_by_issue;
ALTER TABLE prescriptions DROP COLUMN authorisation;
ALTER TABLE prescriptions DROP COLUMN ready_at;
ALTER TABLE prescriptions DROP COLUMN start_date;
ALTER TABLE prescriptions DROP COLUMN days_supply;
ALTER TABLE prescriptions DROP COLUMN prescription_id;
