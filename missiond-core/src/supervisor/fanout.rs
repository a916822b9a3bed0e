//! The broadcast from a run's pump to its viewers: one ring of messages, bounded in bytes and
//! shared by every viewer, each reading at its own pace through its own cursor.
//!
//! Not tokio's broadcast channel, because that one bounds the number of messages: a flood read
//! in small pieces filled it with a fraction of a megabyte, and a reading viewer that lost the
//! CPU for a moment was resynchronised. Here the bound is [`RING_BYTES`] of output whatever the
//! read sizes, the pump never waits, and a viewer further behind than the ring is told it
//! lagged (it then gets a fresh screen instead of the lost bytes). Messages every viewer has
//! read are dropped at the next push, so a slot nobody watches holds no output at all.

use super::run::ViewerMsg;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// How far (in output bytes) a viewer may fall behind before it is resynchronised. Shared by
/// all the viewers of a run, so this is also the most output a run keeps in memory.
pub const RING_BYTES: usize = 4 * 1024 * 1024;
/// What a message costs the ring besides its output bytes, so that a flood of tiny reads or
/// state changes is bounded too.
const ENTRY_COST: usize = 64;

/// Why [`FanoutReceiver::recv`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Messages this receiver had not read were dropped; it will not see them.
    Lagged,
    /// Every sender is gone and everything sent has been read.
    Closed,
}

/// Why [`FanoutReceiver::try_recv`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    Lagged,
    Closed,
}

struct Ring {
    entries: VecDeque<ViewerMsg>,
    /// Sequence number of `entries[0]`.
    first_seq: u64,
    /// What the entries cost, in bytes (see [`ENTRY_COST`]).
    cost: usize,
    /// The next sequence number each receiver will read, by receiver id.
    cursors: HashMap<u64, u64>,
    next_receiver: u64,
    closed: bool,
}

impl Ring {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    fn pop_front(&mut self) {
        if let Some(msg) = self.entries.pop_front() {
            self.cost -= cost(&msg);
            self.first_seq += 1;
        }
    }

    /// Drops what every receiver has read, then the oldest entries beyond the byte bound.
    fn trim(&mut self) {
        let read_by_all = self.cursors.values().copied().min().unwrap_or(u64::MAX);
        while self.first_seq < read_by_all && !self.entries.is_empty() {
            self.pop_front();
        }
        while self.cost > RING_BYTES && self.entries.len() > 1 {
            self.pop_front();
        }
    }
}

fn cost(msg: &ViewerMsg) -> usize {
    match msg {
        ViewerMsg::Output(chunk) => chunk.bytes.len() + ENTRY_COST,
        _ => ENTRY_COST,
    }
}

struct Shared {
    ring: Mutex<Ring>,
    /// Bumped after every push and on close: receivers wait on it.
    pushed: watch::Sender<u64>,
    senders: AtomicUsize,
}

/// The pump's end. Cloning it adds a sender; the channel closes when the last one is dropped.
pub struct FanoutSender {
    shared: Arc<Shared>,
}

impl FanoutSender {
    pub fn new() -> FanoutSender {
        let ring = Ring {
            entries: VecDeque::new(),
            first_seq: 0,
            cost: 0,
            cursors: HashMap::new(),
            next_receiver: 0,
            closed: false,
        };
        FanoutSender {
            shared: Arc::new(Shared {
                ring: Mutex::new(ring),
                pushed: watch::channel(0).0,
                senders: AtomicUsize::new(1),
            }),
        }
    }

    /// Appends `msg` for every receiver; never waits for one.
    pub fn send(&self, msg: ViewerMsg) {
        let end = {
            let mut ring = super::run::lock(&self.shared.ring);
            if ring.cursors.is_empty() {
                // Nobody is watching: keep nothing, only count.
                ring.entries.clear();
                ring.cost = 0;
                ring.first_seq += 1;
                return;
            }
            ring.cost += cost(&msg);
            ring.entries.push_back(msg);
            ring.trim();
            ring.end_seq()
        };
        self.shared.pushed.send_replace(end);
    }

    /// A receiver that gets every message sent from now on.
    pub fn subscribe(&self) -> FanoutReceiver {
        let mut ring = super::run::lock(&self.shared.ring);
        let id = ring.next_receiver;
        ring.next_receiver += 1;
        let next = ring.end_seq();
        ring.cursors.insert(id, next);
        FanoutReceiver {
            shared: self.shared.clone(),
            pushed: self.shared.pushed.subscribe(),
            id,
            next,
        }
    }
}

impl Default for FanoutSender {
    fn default() -> Self {
        FanoutSender::new()
    }
}

impl Clone for FanoutSender {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        FanoutSender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for FanoutSender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            super::run::lock(&self.shared.ring).closed = true;
            self.shared.pushed.send_modify(|_| {});
        }
    }
}

/// One viewer's end: its own cursor into the shared ring.
pub struct FanoutReceiver {
    shared: Arc<Shared>,
    pushed: watch::Receiver<u64>,
    id: u64,
    next: u64,
}

impl FanoutReceiver {
    pub fn try_recv(&mut self) -> Result<ViewerMsg, TryRecvError> {
        let mut ring = super::run::lock(&self.shared.ring);
        if self.next < ring.first_seq {
            return Err(TryRecvError::Lagged);
        }
        if let Some(msg) = ring.entries.get((self.next - ring.first_seq) as usize) {
            let msg = msg.clone();
            self.next += 1;
            ring.cursors.insert(self.id, self.next);
            return Ok(msg);
        }
        if ring.closed {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// The next message, waiting for one if need be.
    pub async fn recv(&mut self) -> Result<ViewerMsg, RecvError> {
        loop {
            // Mark the current push as seen before looking, so a push after the look wakes us.
            self.pushed.borrow_and_update();
            match self.try_recv() {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Lagged) => return Err(RecvError::Lagged),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    if self.pushed.changed().await.is_err() {
                        // Cannot happen while `shared` holds the sender; treat it as closed.
                        return Err(RecvError::Closed);
                    }
                }
            }
        }
    }
}

impl Drop for FanoutReceiver {
    fn drop(&mut self) {
        super::run::lock(&self.shared.ring).cursors.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::run::Chunk;
    use bytes::Bytes;

    fn output(start: u64, len: usize) -> ViewerMsg {
        ViewerMsg::Output(Arc::new(Chunk::new(start, Bytes::from(vec![b'x'; len]))))
    }

    fn start_of(msg: ViewerMsg) -> u64 {
        match msg {
            ViewerMsg::Output(chunk) => chunk.start,
            other => panic!("not output: {other:?}"),
        }
    }

    #[test]
    fn every_receiver_gets_every_message_in_order() {
        let tx = FanoutSender::new();
        let mut a = tx.subscribe();
        let mut b = tx.subscribe();
        for i in 0..10 {
            tx.send(output(i * 100, 100));
        }
        for rx in [&mut a, &mut b] {
            let starts: Vec<u64> = (0..10).map(|_| start_of(rx.try_recv().unwrap())).collect();
            assert_eq!(starts, (0..10).map(|i| i * 100).collect::<Vec<_>>());
            assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
        }
    }

    #[test]
    fn read_messages_are_dropped_and_unwatched_output_is_not_kept() {
        let tx = FanoutSender::new();
        tx.send(output(0, 1000));
        assert_eq!(super::super::run::lock(&tx.shared.ring).entries.len(), 0);
        let mut rx = tx.subscribe();
        tx.send(output(1000, 1000));
        tx.send(output(2000, 1000));
        assert_eq!(start_of(rx.try_recv().unwrap()), 1000);
        tx.send(output(3000, 1000));
        let ring = super::super::run::lock(&tx.shared.ring);
        assert_eq!(ring.entries.len(), 2, "the message everyone read is gone");
    }

    #[test]
    fn a_receiver_that_falls_a_ring_behind_lags_and_the_rest_do_not() {
        let tx = FanoutSender::new();
        let mut slow = tx.subscribe();
        let mut fast = tx.subscribe();
        let chunk = 64 * 1024;
        let count = RING_BYTES / chunk + 4;
        for i in 0..count {
            tx.send(output((i * chunk) as u64, chunk));
            assert_eq!(start_of(fast.try_recv().unwrap()), (i * chunk) as u64);
        }
        assert_eq!(slow.try_recv().unwrap_err(), TryRecvError::Lagged);
        let ring = super::super::run::lock(&tx.shared.ring);
        assert!(ring.cost <= RING_BYTES, "bounded: {} bytes", ring.cost);
    }

    #[test]
    fn tiny_messages_are_bounded_too() {
        let tx = FanoutSender::new();
        let _never_reads = tx.subscribe();
        for i in 0..200_000u64 {
            tx.send(output(i, 1));
        }
        let ring = super::super::run::lock(&tx.shared.ring);
        assert!(ring.cost <= RING_BYTES && ring.entries.len() < 100_000);
    }

    #[tokio::test]
    async fn recv_waits_for_a_push_and_ends_when_the_senders_are_gone() {
        let tx = FanoutSender::new();
        let mut rx = tx.subscribe();
        let second = tx.clone();
        let pusher = tokio::spawn(async move {
            tokio::task::yield_now().await;
            second.send(output(0, 5));
        });
        assert_eq!(start_of(rx.recv().await.unwrap()), 0);
        pusher.await.unwrap();
        drop(tx);
        assert_eq!(rx.recv().await.unwrap_err(), RecvError::Closed);
    }
}
