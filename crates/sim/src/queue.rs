//! The event queue: events in virtual time, popped in (time, sequence) order.
//!
//! Events come in two families that are kept in two binary heaps: client-paced events (one
//! pending open-loop arrival per client, one per closed-loop worker), a small heap, and
//! request events (an attempt's answer, a retry, a paced send), a heap that grows with the
//! requests in flight. Every event carries a sequence number unique across both heaps, so the
//! earlier of the two heads is exactly the event a single heap would pop: the order, and with
//! it every result, is the same, while half the pops sift through a heap of a few entries.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

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
#[derive(Debug)]
struct Scheduled {
    key: u128,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so the max-heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// Pending events of one run, earliest (time, sequence) first.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    sequence: u64,
    client_paced: BinaryHeap<Scheduled>,
    requests: BinaryHeap<Scheduled>,
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
        let take_client_paced = match (self.client_paced.peek(), self.requests.peek()) {
            (Some(client_paced), Some(request)) => client_paced.key < request.key,
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
