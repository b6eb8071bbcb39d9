ALTER TABLE items ADD COLUMN quantity DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN dispensed_quantity DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE items SET
    quantity = quantity_milli / 1000.0,
    dispensed_quantity = dispensed_quantity_milli / 1000.0;
ALTER TABLE items DROP COLUMN quantity_milli;
ALTER TABLE items DROP COLUMN dispensed_quantity_milli;
