DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE idempotency_keys;
DROP TABLE dispense_notifications;
DROP TABLE items;
DROP TABLE prescriptions;
DROP TABLE org_sequences;
