//! One worker's bounded ring of frame copies: preallocated slots passed between a free queue
//! and a filled queue. The worker takes a free slot, copies a frame into it and hands it over
//! filled; the control side writes it out and gives it back. No free slot: the copy is
//! missed (counted), the packet itself goes on as decided.
//!
//! The queues are `crossbeam` `ArrayQueue`s, whose push and pop are atomic read-modify-write
//! operations: the fast path pays them only for the packets a capture keeps, while one is
//! armed.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_queue::ArrayQueue;

/// Bytes kept of each frame: a whole frame of a standard mbuf (2048 bytes of data room);
/// longer (multi-segment or jumbo) frames are cut here, their length kept.
pub const SNAP_LEN: usize = 2048;

/// Slots per worker: about 2 MiB each while a capture runs, nothing otherwise.
pub const DEFAULT_SLOTS: usize = 1024;

/// One copied frame.
pub struct Record {
    /// The TSC when the worker received the frame's burst.
    pub tsc: u64,
    /// The frame's length on the wire.
    pub len: u32,
    /// Bytes copied (at most [`SNAP_LEN`]).
    pub caplen: u32,
    data: [u8; SNAP_LEN],
}

impl Record {
    /// The bytes copied.
    pub fn data(&self) -> &[u8] {
        self.data.get(..self.caplen as usize).unwrap_or(&self.data)
    }
}

/// A worker's ring of copies. One writer (the worker), one reader (the control side).
pub struct Ring {
    free: ArrayQueue<Box<Record>>,
    filled: ArrayQueue<Box<Record>>,
    /// Frames copied and frames that matched with no free slot, written by the worker alone
    /// (a load and a store, no read-modify-write).
    copied: AtomicU64,
    missed: AtomicU64,
}

impl Ring {
    /// A ring of `slots` slots (at least one), allocated here, on the caller's thread.
    pub fn new(slots: usize) -> Ring {
        let slots = slots.max(1);
        let free = ArrayQueue::new(slots);
        for _ in 0..slots {
            let record = Box::new(Record { tsc: 0, len: 0, caplen: 0, data: [0; SNAP_LEN] });
            // Cannot fail: as many slots as the queue holds.
            let _ = free.push(record);
        }
        Ring { free, filled: ArrayQueue::new(slots), copied: AtomicU64::new(0), missed: AtomicU64::new(0) }
    }

    /// The worker copies `frame`, received at `tsc`; false when no slot was free (the copy
    /// is missed and counted).
    #[inline]
    pub fn copy(&self, frame: &[u8], tsc: u64) -> bool {
        let Some(mut record) = self.free.pop() else {
            bump(&self.missed);
            return false;
        };
        let caplen = frame.len().min(SNAP_LEN);
        if let (Some(to), Some(from)) = (record.data.get_mut(..caplen), frame.get(..caplen)) {
            to.copy_from_slice(from);
        }
        record.tsc = tsc;
        record.len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        record.caplen = caplen as u32;
        // Cannot fail: a slot is either free, filled, or in one side's hands.
        let _ = self.filled.push(record);
        bump(&self.copied);
        true
    }

    /// The control side hands each filled slot, oldest first, to `f` and frees it again;
    /// returns how many. `f` returning false stops the drain (the rest stay filled).
    pub fn drain(&self, mut f: impl FnMut(&Record) -> bool) -> usize {
        let mut n = 0;
        while let Some(record) = self.filled.pop() {
            let go_on = f(&record);
            let _ = self.free.push(record);
            n += 1;
            if !go_on {
                break;
            }
        }
        n
    }

    /// Frames copied so far.
    pub fn copied(&self) -> u64 {
        self.copied.load(Relaxed)
    }

    /// Frames that matched while every slot was taken.
    pub fn missed(&self) -> u64 {
        self.missed.load(Relaxed)
    }
}

/// Adds one to a counter that only the calling thread writes.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}
