ALTER TABLE items DROP COLUMN supplies;
