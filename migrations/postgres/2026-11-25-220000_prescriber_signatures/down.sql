DROP TABLE prepared_prescriptions;
DROP TABLE prescriber_keys;
ALTER TABLE prescriptions DROP COLUMN prescriber_jws;
