//! Numbers the service enforces and its clients plan around.

/// Most prescriptions one nominated release hands out (EPS: 25); the answer's `more` says
/// whether another request would find more.
pub const NOMINATED_BATCH: usize = 25;

/// Tracker search (`GET /api/v1/prescriptions`): prescriptions per page by default, and at most.
pub const SEARCH_PAGE_DEFAULT: usize = 50;
pub const SEARCH_PAGE_MAX: usize = 100;

/// Most items on one prescription (FP10).
pub const MAX_ITEMS: usize = 4;

/// Largest accepted JSON request body, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The header that makes a write idempotent, and its length bounds (visible ASCII).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 128;

/// Set to `true` on a response replayed for a repeated `Idempotency-Key`.
pub const IDEMPOTENCY_REPLAYED_HEADER: &str = "Idempotency-Replayed";
