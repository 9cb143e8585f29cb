//! The event queue: events in virtual time, popped in (time, sequence) order.
//!
//! Events come in two families that are kept in two binary heaps: client-paced events (one
//! pending open-loop arrival per client, one per closed-loop worker), a small heap, and
//! request events (an attempt's answer, a retry, a paced send), a heap that grows with the
//! requests in flight. Every event carries a sequence number unique across both heaps, so the
//! earlier of the two heads is exactly the event a single heap would pop: the order, and with
//! it every result, is the same, while half the pops sift through a heap of a few entries.

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

impl Event {
    /// Whether the event belongs to a client's pace rather than to a request in flight.
    fn is_client_paced(self) -> bool {
        matches!(self, Event::Arrival { .. } | Event::WorkerReady { .. })
    }
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

/// Pending events of one run, earliest (time, sequence) first.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    sequence: u64,
    client_paced: MinHeap,
    requests: MinHeap,
}

impl EventQueue {
    /// Schedules `event` at `at` nanoseconds, after every event already scheduled for `at`.
    #[inline]
    pub(crate) fn push(&mut self, at: u64, event: Event) {
        self.sequence += 1;
        let scheduled = Scheduled {
            key: (u128::from(at) << 64) | u128::from(self.sequence),
            event,
        };
        if event.is_client_paced() {
            self.client_paced.push(scheduled);
        } else {
            self.requests.push(scheduled);
        }
    }

    /// The earliest event and its time, removed from the queue.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(u64, Event)> {
        // Keys are unique, so at most one head is the earliest and ties cannot arise.
        let take_client_paced = match (self.client_paced.peek_key(), self.requests.peek_key()) {
            (Some(client_paced), Some(request)) => client_paced < request,
            (client_paced, _) => client_paced.is_some(),
        };
        let next = if take_client_paced {
            self.client_paced.pop()
        } else {
            self.requests.pop()
        }?;
        Some(((next.key >> 64) as u64, next.event))
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, EventQueue};
    use std::collections::BTreeSet;

    /// Interleaved pushes and pops, against an ordered set of (time, sequence) as the model:
    /// the queue must pop exactly the model's minimum every time, across both heaps.
    #[test]
    fn pops_in_time_then_sequence_order_across_both_heaps() {
        let mut queue = EventQueue::default();
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
                let at = now + (draw >> 8) % 50;
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
}
