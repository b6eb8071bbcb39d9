-- What was handed over for each item (issue 18): every supply as a JSON array of the contract's
-- `Supply` (time, quantity, unit, product, substitution, GTIN, batch, expiry, serial).
ALTER TABLE items ADD COLUMN supplies TEXT NOT NULL DEFAULT '[]';
