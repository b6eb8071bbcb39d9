#!/usr/bin/env python3
"""Verifies both signatures of a Prescrypt prescription offline (docs/signatures.md).

    pip install pyjwt cryptography
    python3 verify_prescription.py PRESCRIPTION.json PRESCRIBER-KEYS.json JWKS.json

PRESCRIPTION.json: a prescription as the API answers it (`GET /api/v1/prescriptions/{id}`);
PRESCRIBER-KEYS.json: `GET /api/v1/prescriber-keys.json`; JWKS.json: the service's keys
(`GET /.well-known/jwks.json`). Prints who signed and exits 0, or says what failed and exits 1.
"""

import base64
import hashlib
import json
import sys
from datetime import datetime

import jwt  # PyJWT, with `cryptography` for EdDSA


def fail(reason):
    sys.exit(f"NOT VERIFIED: {reason}")


def verify(compact, key_set, typ):
    """The payload of `compact`, a JWS of type `typ` signed (EdDSA) by a key of `key_set`."""
    header = jwt.get_unverified_header(compact)
    if header.get("alg") != "EdDSA" or header.get("typ") != typ:
        fail(f"a JWS of type {typ} expected, got {header}")
    key = next((k for k in key_set["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        fail(f"no key {header.get('kid')} for the {typ} JWS")
    try:
        return key, jwt.decode(compact, jwt.PyJWK(key, "EdDSA").key, algorithms=["EdDSA"])
    except jwt.InvalidTokenError as error:
        fail(f"the {typ} signature: {error}")


def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main(prescription_file, prescriber_keys_file, jwks_file):
    def load(path):
        with open(path, encoding="utf-8") as file:
            return json.load(file)

    rx, prescriber_keys, jwks = load(prescription_file), load(prescriber_keys_file), load(jwks_file)
    if not rx.get("prescriber_jws"):
        fail("the prescription carries no prescriber signature")
    service_key, counter = verify(rx["jws"], jwks, "prescrypt-countersignature+jws")
    key, signed = verify(rx["prescriber_jws"], prescriber_keys, "prescrypt-prescription+jws")

    # The service accepted exactly this prescriber JWS, for this prescription, with this key.
    digest = hashlib.sha256(rx["prescriber_jws"].encode("ascii")).digest()
    if counter["prescriber_jws_sha256"] != base64.urlsafe_b64encode(digest).rstrip(b"=").decode():
        fail("the countersignature covers another prescriber JWS")
    if not counter["id"] == signed["id"] == rx["id"] or not counter["uuid"] == signed["uuid"] == rx["uuid"]:
        fail("the signatures are for another prescription")
    if counter["prescriber_kid"] != key["kid"]:
        fail("the countersignature names another prescriber key")
    # The key is the prescriber's, and was not revoked when the service accepted the signature.
    if (key["sub"], key["org"]) != (signed["prescriber"]["id"], signed["prescriber"]["org"]):
        fail(f"key {key['kid']} belongs to {key['sub']} ({key['org']}), not the prescriber")
    if key["revoked_at"] is not None and instant(key["revoked_at"]) <= instant(counter["accepted_at"]):
        fail(f"key {key['kid']} was revoked at {key['revoked_at']}, before the signature")
    # What is shown is what was signed.
    if rx["patient"] != signed["patient"] or rx["prescriber"] != signed["prescriber"]:
        fail("the patient or prescriber shown is not the one signed")
    members = ("line", "uuid", "code", "display", "quantity", "unit", "dosage")
    shown_items = [{m: item[m] for m in members} for item in rx["items"]]
    if shown_items != [{m: item[m] for m in members} for item in signed["items"]]:
        fail("the items shown are not the ones signed")

    print(f"Signed by {key['sub']} ({key['org']}), key {key['kid']}; "
          f"countersigned by the service (key {service_key['kid']}) at {counter['accepted_at']}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
