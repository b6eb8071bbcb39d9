-- Quantities become exact decimals (issue 21): whole thousandths in a BIGINT instead of binary
-- floats; kept in step with the PostgreSQL migration of the same name. Existing floats are
-- rounded to the nearest thousandth (the service's scale).
ALTER TABLE items ADD COLUMN quantity_milli BIGINT NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN dispensed_quantity_milli BIGINT NOT NULL DEFAULT 0;
UPDATE items SET
    quantity_milli = CAST(ROUND(quantity * 1000) AS INTEGER),
    dispensed_quantity_milli = CAST(ROUND(dispensed_quantity * 1000) AS INTEGER);
ALTER TABLE items DROP COLUMN quantity;
ALTER TABLE items DROP COLUMN dispensed_quantity;
