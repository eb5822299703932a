//! Answers kept a while: which organization owns a phone number and its settings change rarely
//! and are asked on every call, by the gateway's flows and by a ringing phone alike; which
//! callers were lately over their limit of calls.

use std::time::Duration;

use moka::sync::Cache;

/// Most answers one cache keeps.
const CAPACITY: u64 = 10_000;

/// A cache whose answers are kept for `keep` (`ORGANIZATION_CACHE_SECS`, say); none when `keep`
/// is zero, so every question is asked anew.
pub fn expiring<V: Clone + Send + Sync + 'static>(keep: Duration) -> Option<Cache<String, V>> {
    (!keep.is_zero()).then(|| {
        Cache::builder()
            .max_capacity(CAPACITY)
            .time_to_live(keep)
            .build()
    })
}
