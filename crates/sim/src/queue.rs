//! The event queue: events in virtual time, popped in (time, sequence) order.
//!
//! Every event (an open-loop arrival, a closed-loop worker's next request, an attempt's answer,
//! a retry, a paced send) waits in one calendar queue ([`Calendar`]) keyed by (virtual time,
//! sequence number), so the order, and with it every result, is exactly a single heap's. Arrivals
//! once waited in a heap of their own (one per client): in the calendar they cost fewer
//! instructions and less time on the benches, since a heap's pop walks its depth.

use std::cell::Cell;

/// Everything that can happen, closed: the loop matches on it exhaustively.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// The next open-loop arrival of a client.
    Arrival { client: u32 },
    /// A closed-loop worker starts its next request.
    WorkerReady { client: u32, worker: u32 },
    /// A retry delay elapsed: ask the strategy before the next attempt.
    BeforeAttempt { request: u32 },
    /// A paced attempt leaves the client.
    Send { request: u32 },
    /// An attempt's outcome (or its timeout) reaches the client.
    Outcome { request: u32 },
}

/// An event with its place in time: `key` packs (virtual time, sequence) into one integer, so
/// the heap compares a single `u128`.
#[derive(Debug, Clone, Copy)]
struct Scheduled {
    key: u128,
    event: Event,
}

/// A binary min-heap of events by key. It does what `std`'s `BinaryHeap` does, but moves an
/// entry only between its own slots and a local: `std` writes a pushed entry to memory and
/// reads it straight back, which stalls the CPU's store forwarding on every push (the hottest
/// instructions of the event loop in `perf annotate`).
#[derive(Debug, Default)]
struct MinHeap {
    entries: Vec<Scheduled>,
}

impl MinHeap {
    #[inline]
    fn peek_key(&self) -> Option<u128> {
        self.entries.first().map(|entry| entry.key)
    }

    #[inline]
    fn push(&mut self, entry: Scheduled) {
        let hole = self.entries.len();
        self.entries.push(entry);
        self.rise(hole, entry);
    }

    /// Moves parents of the free slot `hole` down until `entry` fits there, and writes it.
    #[inline]
    fn rise(&mut self, mut hole: usize, entry: Scheduled) {
        while hole > 0 {
            let parent = (hole - 1) / 2;
            let above = self.entries[parent];
            if above.key < entry.key {
                break;
            }
            self.entries[hole] = above;
            hole = parent;
        }
        self.entries[hole] = entry;
    }

    #[inline]
    fn pop(&mut self) -> Option<Scheduled> {
        let last = self.entries.pop()?;
        let Some(&top) = self.entries.first() else {
            return Some(last);
        };
        // Floyd's pop, as `std` does it: the hole walks down along the smaller children to the
        // bottom, then the last entry rises from there to its place (it usually belongs low).
        // The entries are walked as cells: the hole is the child chosen one level up, a
        // reference that needs no second bounds check, so a level costs one check (of both
        // children at once) instead of three.
        let entries = Cell::from_mut(self.entries.as_mut_slice()).as_slice_of_cells();
        let len = entries.len();
        let mut hole = 0;
        let mut hole_cell = &entries[0];
        let mut child = 1;
        while let Some(children) = entries.get(child..child + 2) {
            let pick = usize::from(children[1].get().key < children[0].get().key);
            let chosen = &children[pick];
            hole_cell.set(chosen.get());
            hole_cell = chosen;
            hole = child + pick;
            child = 2 * hole + 1;
        }
        if child + 1 == len {
            hole_cell.set(entries[child].get());
            hole = child;
        }
        self.rise(hole, last);
        Some(top)
    }
}

impl MinHeap {
    #[inline]
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Makes unordered entries a heap, each rising into place in turn (a bucket holds a few).
    #[inline]
    fn heapify(&mut self) {
        for hole in 1..self.entries.len() {
            let entry = self.entries[hole];
            self.rise(hole, entry);
        }
    }
}

/// Buckets of a [`Calendar`]: its window is this many bucket widths long.
const BUCKETS: usize = 4096;

/// A calendar queue: pending events by time, popped in exact (time, sequence) order, at a
/// cost per event that does not grow with the number pending as a heap's does.
///
/// Time is cut into buckets of `1 << shift` nanoseconds. The bucket being drained is a small
/// binary heap (`current`, every event before `current_end`); the next `BUCKETS - 1` buckets
/// (up to the window's end) are unsorted vectors, with a bitmap of the occupied ones so empty
/// stretches are skipped a word at a time; events past the window wait in a heap (`far`) and
/// move into their bucket as the window reaches them. Each of those steps keeps the invariant
/// that every event in `current` is earlier than every event in a bucket, and those than every
/// event in `far`, so the head of `current` is the queue's earliest event.
#[derive(Debug)]
struct Calendar {
    shift: u32,
    current: MinHeap,
    /// The end of the bucket being drained (exclusive): the buckets cover
    /// `[current_end, current_end + (BUCKETS - 1) << shift)`.
    current_end: u64,
    buckets: Vec<Vec<Scheduled>>,
    occupied: [u64; BUCKETS / 64],
    in_buckets: usize,
    far: MinHeap,
}

impl Calendar {
    fn new(shift: u32) -> Calendar {
        Calendar {
            shift,
            current: MinHeap::default(),
            current_end: 1 << shift,
            buckets: vec![Vec::new(); BUCKETS],
            occupied: [0; BUCKETS / 64],
            in_buckets: 0,
            far: MinHeap::default(),
        }
    }

    #[inline]
    fn window_end(&self) -> u64 {
        self.current_end
            .saturating_add(((BUCKETS - 1) as u64) << self.shift)
    }

    #[inline]
    fn push(&mut self, entry: Scheduled) {
        let at = (entry.key >> 64) as u64;
        if at < self.current_end {
            self.current.push(entry);
        } else if at < self.window_end() {
            let index = ((at >> self.shift) as usize) & (BUCKETS - 1);
            self.buckets[index].push(entry);
            self.occupied[index / 64] |= 1 << (index % 64);
            self.in_buckets += 1;
        } else {
            self.far.push(entry);
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<Scheduled> {
        if self.current.is_empty() {
            self.refill();
        }
        self.current.pop()
    }

    /// Makes the earliest occupied bucket (or, with none, the bucket of the earliest far event)
    /// the current one, until `current` holds something or nothing is pending.
    fn refill(&mut self) {
        while self.current.is_empty() {
            let start = if self.in_buckets == 0 {
                let Some(key) = self.far.peek_key() else {
                    return;
                };
                ((key >> 64) as u64 >> self.shift) << self.shift
            } else {
                self.current_end + (self.next_occupied_distance() << self.shift)
            };
            self.current_end = start + (1 << self.shift);
            let index = ((start >> self.shift) as usize) & (BUCKETS - 1);
            if self.occupied[index / 64] & (1 << (index % 64)) != 0 {
                self.occupied[index / 64] &= !(1 << (index % 64));
                // `current` is empty: the bucket's vector becomes it, and the empty one (with
                // its capacity) goes back for the bucket's next turn.
                std::mem::swap(&mut self.current.entries, &mut self.buckets[index]);
                self.in_buckets -= self.current.entries.len();
                self.current.heapify();
            }
            // The window moved: far events it now reaches go to their buckets (or `current`).
            let window_end = self.window_end();
            while let Some(key) = self.far.peek_key() {
                if ((key >> 64) as u64) >= window_end {
                    break;
                }
                if let Some(entry) = self.far.pop() {
                    self.push(entry);
                }
            }
        }
    }

    /// How many buckets after the current one the next occupied bucket is (at least 0); only
    /// called with some bucket occupied.
    fn next_occupied_distance(&self) -> u64 {
        let first = ((self.current_end >> self.shift) as usize) & (BUCKETS - 1);
        let words = BUCKETS / 64;
        let (word, bit) = (first / 64, first % 64);
        // The first word from `bit` on, then the other words in order, then the first word's
        // bits below `bit` (the window wraps around the ring of buckets).
        let masked = self.occupied[word] & (u64::MAX << bit);
        let found = if masked != 0 {
            word * 64 + masked.trailing_zeros() as usize
        } else {
            (1..=words)
                .map(|step| (word + step) % words)
                .find_map(|candidate| {
                    let bits = if candidate == word {
                        self.occupied[word] & !(u64::MAX << bit)
                    } else {
                        self.occupied[candidate]
                    };
                    (bits != 0).then(|| candidate * 64 + bits.trailing_zeros() as usize)
                })
                .unwrap_or(first)
        };
        ((found + BUCKETS - first) % BUCKETS) as u64
    }
}

/// Pending events of one run, earliest (time, sequence) first.
#[derive(Debug)]
pub(crate) struct EventQueue {
    sequence: u64,
    calendar: Calendar,
}

impl Default for EventQueue {
    fn default() -> EventQueue {
        EventQueue::with_bucket_shift(DEFAULT_BUCKET_SHIFT)
    }
}

/// Buckets are 2^20 ns (about a millisecond) wide unless a run says otherwise.
pub(crate) const DEFAULT_BUCKET_SHIFT: u32 = 20;

impl EventQueue {
    /// A queue whose events are bucketed `1 << shift` nanoseconds wide.
    pub(crate) fn with_bucket_shift(shift: u32) -> EventQueue {
        EventQueue {
            sequence: 0,
            calendar: Calendar::new(shift.min(40)),
        }
    }

    /// Schedules `event` at `at` nanoseconds, after every event already scheduled for `at`.
    #[inline]
    pub(crate) fn push(&mut self, at: u64, event: Event) {
        self.sequence += 1;
        let scheduled = Scheduled {
            key: (u128::from(at) << 64) | u128::from(self.sequence),
            event,
        };
        self.calendar.push(scheduled);
    }

    /// The earliest event and its time, removed from the queue.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(u64, Event)> {
        let next = self.calendar.pop()?;
        Some(((next.key >> 64) as u64, next.event))
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, EventQueue};
    use std::collections::BTreeSet;

    /// Interleaved pushes and pops, against an ordered set of (time, sequence) as the model:
    /// the queue must pop exactly the model's minimum every time, whatever the event.
    /// Pushed times lie up to `spread` ns after the last popped one, and one in `far_one_in`
    /// lies `far` ns further (past the calendar's window when large).
    fn check_against_model(shift: u32, spread: u64, far_one_in: u64, far: u64) {
        let mut queue = EventQueue::with_bucket_shift(shift);
        let mut model = BTreeSet::new();
        let mut sequence = 0u64;
        // A fixed xorshift stream: deterministic, with many equal times to exercise ties.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut now = 0u64;
        for _ in 0..20_000 {
            let draw = next();
            if draw % 5 < 3 {
                let mut at = now + (draw >> 8) % spread;
                if (draw >> 20) % far_one_in == 0 {
                    at += far;
                }
                let id = (draw >> 40) as u32;
                let event = if draw % 2 == 0 {
                    Event::Arrival { client: id }
                } else {
                    Event::Outcome { request: id }
                };
                sequence += 1;
                queue.push(at, event);
                model.insert((at, sequence, id));
            } else {
                let expected = model.pop_first();
                let popped = queue.pop();
                match (expected, popped) {
                    (None, None) => {}
                    (Some((at, _, id)), Some((popped_at, event))) => {
                        assert_eq!(popped_at, at);
                        let popped_id = match event {
                            Event::Arrival { client } => client,
                            Event::Outcome { request } => request,
                            other => panic!("pushed no {other:?}"),
                        };
                        assert_eq!(popped_id, id, "at {at}");
                        now = at;
                    }
                    (expected, popped) => panic!("expected {expected:?}, popped {popped:?}"),
                }
            }
        }
        while let Some((at, _, id)) = model.pop_first() {
            let (popped_at, event) = queue.pop().expect("the queue holds what the model holds");
            assert_eq!(popped_at, at);
            assert!(matches!(
                event,
                Event::Arrival { client } | Event::Outcome { request: client } if client == id
            ));
        }
        assert!(queue.pop().is_none());
    }

    #[test]
    fn pops_in_time_then_sequence_order_within_one_bucket() {
        // Everything within 50 ns: one bucket, many ties.
        check_against_model(20, 50, 1_000_000, 0);
    }

    #[test]
    fn pops_in_order_across_buckets_gaps_and_the_far_heap() {
        // Events spread over many buckets, with empty stretches between them.
        check_against_model(20, 30_000_000, 1_000_000, 0);
        // One in 20 events far past the window (4096 buckets of ~1 ms), some much further.
        check_against_model(20, 5_000_000, 20, 10_000_000_000);
        check_against_model(20, 1_000, 7, 3_000_000_000_000);
        // Narrow buckets, so the window wraps around the ring often.
        check_against_model(4, 2_000, 50, 100_000);
        // Wide buckets: most events share one.
        check_against_model(34, 30_000_000, 10, 60_000_000_000);
    }
}
