//! RX and TX queues of a port, each owned by one lcore at a time (`Send`, not `Sync`).
//!
//! A queue holds its port's shared state, so the device cannot be stopped, reconfigured or
//! closed while a queue handle exists (see `port`).

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;

use super::burst::MbufBurst;
use super::mbuf::Mbuf;
use super::port::Shared;

/// A receive queue; owned by one lcore at a time (`Send`, not `Sync`).
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<Shared>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    pub(super) fn new(port: Arc<Shared>, queue: u16) -> Self {
        RxQueue { port, queue, _not_sync: PhantomData }
    }

    /// Receives into the free slots of `burst`; returns how many packets were added.
    #[inline]
    pub fn burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> usize {
        let (slots, spare) = burst.spare_raw();
        let spare = spare.min(usize::from(u16::MAX)) as u16;
        // SAFETY: the port is configured with this queue and not closed (we hold it); only
        // this handle polls the queue; `slots` has room for `spare` mbuf pointers, and the
        // received mbufs are owned by the burst from now on.
        unsafe {
            let n = dpdk_sys::rte_eth_rx_burst(self.port.id, self.queue, slots.cast(), spare);
            burst.add_len(usize::from(n));
            usize::from(n)
        }
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    /// The queue id.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

/// A transmit queue; owned by one lcore at a time (`Send`, not `Sync`).
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<Shared>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    pub(super) fn new(port: Arc<Shared>, queue: u16) -> Self {
        TxQueue { port, queue, _not_sync: PhantomData }
    }

    /// Sends packets from the front of `burst`; sent ones leave the burst (the driver frees
    /// them), unsent ones stay for the caller to retry or free. Returns how many were sent.
    #[inline]
    pub fn burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> usize {
        let len = burst.len().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the port is configured with this queue and not closed; only this handle
        // uses the queue; the burst's first `len` slots are owned mbufs, and the driver takes
        // ownership of the first `n`, which the burst then forgets.
        unsafe {
            let n = dpdk_sys::rte_eth_tx_burst(self.port.id, self.queue, burst.as_raw().cast(), len);
            burst.consumed_front(usize::from(n));
            usize::from(n)
        }
    }

    /// Sends one packet; gives it back when the queue is full.
    pub fn send(&mut self, m: Mbuf) -> std::result::Result<(), Mbuf> {
        let mut one = MbufBurst::<1>::new();
        one.push(m)?;
        if self.burst(&mut one) == 1 {
            Ok(())
        } else {
            one.pop().map_or(Ok(()), Err)
        }
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    /// The queue id.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}
