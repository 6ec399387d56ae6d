//! Recently verified API keys, so the hot path does not hit the database per request.

use crate::store::ApiKeyRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Recently verified keys by hash, so the hot path does not hit the database per request.
/// Entries expire after the cache TTL; revoking on this node evicts immediately.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Vec<u8>, CachedKey>>,
    /// Bumped on every eviction: a record read from the database before an eviction is
    /// not cached after it (it may be the revoked or demoted key the eviction removed).
    generation: std::sync::atomic::AtomicU64,
}

/// When a key was read from the database, and the record.
type CachedKey = (Instant, Arc<ApiKeyRecord>);

impl KeyCache {
    /// A key verified within `ttl`, by hash.
    pub fn get(&self, hash: &[u8], ttl: Duration) -> Option<Arc<ApiKeyRecord>> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, k)| k.clone())
    }

    /// The eviction generation; take it before reading a key from the database and hand it
    /// to [`KeyCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Remember a verified key read at `generation`, unless an eviction happened since.
    pub fn put(&self, record: Arc<ApiKeyRecord>, generation: u64) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation() != generation {
            return;
        }
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(record.hash.clone(), (Instant::now(), record));
    }

    /// Forget every key of a member (after their role changed).
    pub fn evict_member(&self, member_id: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        map.retain(|_, (_, k)| k.member_id.as_deref() != Some(member_id));
    }

    /// Forget one key (after it was revoked on this node).
    pub fn evict_id(&self, key_id: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        map.retain(|_, (_, k)| k.id != key_id);
    }
}
