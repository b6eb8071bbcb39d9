// The local outbox table (migrations/2026-11-21-000000_outbox).

diesel::table! {
    outbox (id) {
        id -> Integer,
        idempotency_key -> Text,
        kind -> Text,
        prescription_id -> Text,
        body -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        response -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}
