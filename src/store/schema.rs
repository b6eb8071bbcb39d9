// The tables of migrations/{sqlite,postgres}, written by hand to the MultiConnection subset.

diesel::table! {
    org_sequences (org) {
        org -> Text,
        next_value -> BigInt,
    }
}

diesel::table! {
    prescriptions (uuid) {
        uuid -> Text,
        short_id -> Text,
        status -> Text,
        pending_cancellation -> Bool,
        cancellation_requested_by -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        treatment_type -> Text,
        issue_number -> Integer,
        issue_count -> Integer,
        prescriber_id -> Text,
        prescriber_org -> Text,
        patient_nhs_number -> Text,
        patient_name -> Text,
        patient_birth_date -> Date,
        nominated_pharmacy -> Nullable<Text>,
        controlled_drug_schedule -> Nullable<Integer>,
        dispenser -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        jws -> Text,
        prescriber_jws -> Nullable<Text>,
        token -> Text,
        version -> BigInt,
        updated_at -> Timestamp,
        prescription_id -> Text,
        days_supply -> Nullable<Integer>,
        start_date -> Nullable<Date>,
        ready_at -> Nullable<Timestamp>,
        authorisation -> Nullable<Text>,
    }
}

diesel::table! {
    items (uuid) {
        uuid -> Text,
        prescription_uuid -> Text,
        line -> Integer,
        code -> Text,
        display -> Text,
        quantity_milli -> BigInt,
        unit -> Text,
        dosage -> Text,
        status -> Text,
        dispensed_quantity_milli -> BigInt,
        not_dispensed_reason -> Nullable<Text>,
        supplies -> Text,
    }
}

diesel::table! {
    dispense_notifications (uuid) {
        uuid -> Text,
        prescription_uuid -> Text,
        org -> Text,
        actor -> Text,
        created_at -> Timestamp,
        withdrawn -> Bool,
        prior_status -> Text,
        prior_items -> Text,
        body -> Text,
    }
}

diesel::table! {
    prescription_holders (org, prescription_uuid) {
        org -> Text,
        prescription_uuid -> Text,
    }
}

diesel::table! {
    idempotency_keys (org, key) {
        org -> Text,
        key -> Text,
        request_hash -> Text,
        response_status -> Integer,
        response_body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (chain, seq) {
        chain -> Integer,
        seq -> BigInt,
        at -> Timestamp,
        actor -> Text,
        org -> Text,
        role -> Text,
        action -> Text,
        prescription_uuid -> Nullable<Text>,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_checkpoint (id) {
        id -> BigInt,
        at -> Timestamp,
        signed -> Text,
    }
}

diesel::table! {
    prescriber_keys (kid) {
        kid -> Text,
        sub -> Text,
        org -> Text,
        x -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    prepared_prescriptions (prepared_id) {
        prepared_id -> Text,
        sub -> Text,
        org -> Text,
        kid -> Text,
        signing_input -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        signature -> Nullable<Text>,
        prescription_uuid -> Nullable<Text>,
    }
}

diesel::joinable!(items -> prescriptions (prescription_uuid));
diesel::joinable!(dispense_notifications -> prescriptions (prescription_uuid));
diesel::joinable!(prescription_holders -> prescriptions (prescription_uuid));
diesel::table! {
    claims (prescription_uuid) {
        prescription_uuid -> Text,
        org -> Text,
        claimed_at -> Timestamp,
        amended_at -> Nullable<Timestamp>,
        body -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    org_sequences,
    prescriptions,
    items,
    dispense_notifications,
    prescription_holders,
    idempotency_keys,
    audit_log,
    audit_head,
    audit_checkpoint,
    prescriber_keys,
    prepared_prescriptions,
    claims,
);
