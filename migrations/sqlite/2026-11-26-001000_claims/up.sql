-- The pharmacy's claim on a prescription (issue 18): exemption, evidence, charges paid and the
-- endorsements of every supplied item, as the contract's ClaimView JSON; amended in place
-- within the claim window.
CREATE TABLE claims (
    prescription_uuid TEXT PRIMARY KEY NOT NULL REFERENCES prescriptions (uuid),
    org TEXT NOT NULL,
    claimed_at TIMESTAMP NOT NULL,
    amended_at TIMESTAMP,
    body TEXT NOT NULL
);
