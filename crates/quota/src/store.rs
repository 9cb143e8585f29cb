//! The keyed store: per-key state in an open-addressing hash table of cache-line-aligned
//! entries, each tagged with the fingerprint of the limits its state was built for.
//!
//! Why not a `HashMap<K, KeyState>`: with a million keys the table is far larger than the
//! caches, so a decision costs a cache miss, and its speed is how many misses the CPU can
//! overlap. A compact entry keyed by a `u64` is exactly one aligned cache line (a map's
//! `(K, V)` buckets straddle two), and the entry holds no pointer the hot path must follow.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::key_state::LimitStorage;
use crate::limits::Limits;

/// One key's state, aligned to a cache line so that a small entry never straddles two.
#[derive(Debug, Clone)]
#[repr(align(64))]
pub(crate) struct Slot<K, State> {
    key: K,
    /// [`Limits::fingerprint`] of the limits `state` was built for.
    fingerprint: u64,
    state: State,
}

/// The hash of a key, computed once per lookup and shared by both stores.
#[inline(always)]
pub(crate) fn key_hash<K: Hash>(key: &K) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Per-key state of one layout.
#[derive(Debug, Clone)]
pub(crate) struct Store<K, State> {
    table: HashTable<Slot<K, State>>,
}

impl<K: Hash + Eq + Clone, State: LimitStorage> Store<K, State> {
    pub(crate) fn new() -> Store<K, State> {
        Store {
            table: HashTable::new(),
        }
    }

    /// The state of `key` if it was built for limits with this fingerprint.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, hash: u64, key: &K, limits: &Limits) -> Option<&mut State> {
        let slot = self.table.find_mut(hash, |slot| slot.key == *key)?;
        (slot.fingerprint == limits.fingerprint && slot.state.holds(&limits.rules))
            .then_some(&mut slot.state)
    }

    /// Where `key` holds state here, built for any limits: an index for [`Store::state_at`],
    /// which reaches the entry again without probing.
    #[inline]
    pub(crate) fn find_index(&self, hash: u64, key: &K) -> Option<usize> {
        self.table.find_bucket_index(hash, |slot| slot.key == *key)
    }

    /// The state at `index` (from [`Store::find_index`]), made fresh when it was built for
    /// other limits. Records the limits of a fresh state in `limit_sets`, so a sweep can find
    /// them by fingerprint.
    pub(crate) fn state_at(
        &mut self,
        index: usize,
        limits: &Limits,
        limit_sets: &mut FxHashMap<u64, Limits>,
    ) -> &mut State {
        let slot = self
            .table
            .get_bucket_mut(index)
            .expect("the index was found just before");
        if slot.fingerprint != limits.fingerprint || !slot.state.holds(&limits.rules) {
            slot.fingerprint = limits.fingerprint;
            slot.state = State::fresh(&limits.rules);
            record(limits, limit_sets);
        }
        &mut slot.state
    }

    /// Inserts fresh state for `key`, which holds none here.
    pub(crate) fn insert_fresh(
        &mut self,
        hash: u64,
        key: &K,
        limits: &Limits,
        limit_sets: &mut FxHashMap<u64, Limits>,
    ) -> &mut State {
        record(limits, limit_sets);
        let slot = Slot {
            key: key.clone(),
            fingerprint: limits.fingerprint,
            state: State::fresh(&limits.rules),
        };
        &mut self
            .table
            .insert_unique(hash, slot, |slot| key_hash(&slot.key))
            .into_mut()
            .state
    }

    /// Forgets `key`; returns whether it held state.
    pub(crate) fn remove(&mut self, hash: u64, key: &K) -> bool {
        match self.table.find_entry(hash, |slot| slot.key == *key) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps the entries for which `keep(fingerprint, state)` holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64, &State) -> bool) {
        self.table
            .retain(|slot| keep(slot.fingerprint, &slot.state));
    }

    /// The fingerprint of every entry.
    pub(crate) fn fingerprints(&self) -> impl Iterator<Item = u64> + '_ {
        self.table.iter().map(|slot| slot.fingerprint)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }
}

/// Remembers the limits behind a fingerprint.
fn record(limits: &Limits, limit_sets: &mut FxHashMap<u64, Limits>) {
    limit_sets
        .entry(limits.fingerprint)
        .or_insert_with(|| limits.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_state::CompactStates;

    #[test]
    fn a_compact_entry_keyed_by_u64_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot<u64, CompactStates>>(), 64);
        assert_eq!(std::mem::align_of::<Slot<u64, CompactStates>>(), 64);
    }
}
