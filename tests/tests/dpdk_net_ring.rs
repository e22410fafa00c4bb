//! Packets through `net_ring` ports: byte-for-byte delivery, counters, bursts that end in
//! transmit / drop / bulk free (the pool's in-use count returns to 0), typed rings, and a
//! forwarding loop on a worker lcore.

mod dpdk_common;

use std::time::Duration;

use dataplane::dpdk::{cycles, lcore, Mbuf, MbufBurst, Mempool, Port, PortConfig, Ring};
use dpdk_common::{dpdk, packet};

/// Sizes from a bare Ethernet header up to a full 2048-byte data room.
const SIZES: [usize; 9] = [14, 60, 64, 65, 128, 511, 1000, 1514, 2048];

/// A started `net_ring` port (loopback: what its TX queue sends, its RX queue receives).
fn ring_port(name: &str, pool: &Mempool) -> (Port, dataplane::dpdk::RxQueue, dataplane::dpdk::TxQueue) {
    let mut port = Port::probe_vdev(name, "").expect("create net_ring vdev");
    let (mut rx, mut tx) = port.configure(&PortConfig::default(), pool).expect("configure");
    port.start().expect("start");
    (port, rx.remove(0), tx.remove(0))
}

#[test]
fn packets_cross_net_ring_byte_for_byte() {
    let _eal = dpdk();
    let pool = Mempool::new("rt_pool", 1023).unwrap();
    let (port, mut rx, mut tx) = ring_port("net_ring_rt", &pool);
    let link = port.link().unwrap();
    assert_eq!(link, dataplane::dpdk::Link { up: true, speed_mbps: 10_000, full_duplex: true, autoneg: false });

    let sent: Vec<Vec<u8>> = SIZES.iter().enumerate().map(|(i, &n)| packet(n, i as u8)).collect();
    let mut out = MbufBurst::<32>::new();
    for p in &sent {
        out.push(Mbuf::from_bytes(&pool, p).unwrap()).unwrap();
    }
    assert_eq!(pool.in_use(), SIZES.len() as u32);
    assert_eq!(tx.burst(&mut out), SIZES.len());
    assert!(out.is_empty());

    let mut got = MbufBurst::<32>::new();
    assert_eq!(rx.burst(&mut got), SIZES.len());
    let received: Vec<Vec<u8>> = got.packets().map(<[u8]>::to_vec).collect();
    assert_eq!(received, sent);
    for (m, &n) in got.iter().zip(&SIZES) {
        assert_eq!(m.len(), n);
        assert_eq!(m.pkt_len(), n);
        assert!(m.is_contiguous());
    }
    got.free_all();
    assert_eq!(pool.in_use(), 0);

    let stats = port.stats().unwrap();
    assert_eq!(stats.ipackets, SIZES.len() as u64);
    assert_eq!(stats.opackets, SIZES.len() as u64);
    assert_eq!((stats.imissed, stats.ierrors, stats.oerrors, stats.rx_nombuf), (0, 0, 0, 0));
    assert_eq!(port.xstat("rx_good_packets").unwrap(), SIZES.len() as u64);
    assert_eq!(port.xstat("tx_good_packets").unwrap(), SIZES.len() as u64);
    let all = port.xstats().unwrap();
    assert!(all.contains(&("rx_good_packets".to_string(), SIZES.len() as u64)), "{all:?}");

    drop((rx, tx));
    port.close().unwrap();
}

#[test]
fn forward_drop_and_bulk_free_return_every_buffer() {
    let _eal = dpdk();
    let pool = Mempool::new("bulk_pool", 511).unwrap();
    let (port, mut rx, mut tx) = ring_port("net_ring_bulk", &pool);

    // 32 packets out and back in.
    let mut burst = MbufBurst::<32>::new();
    for i in 0..32 {
        burst.push(Mbuf::from_bytes(&pool, &packet(64 + i, i as u8)).unwrap()).unwrap();
    }
    assert!(burst.is_full());
    assert_eq!(tx.burst(&mut burst), 32);
    assert_eq!(pool.in_use(), 32); // now in the ring
    assert_eq!(rx.burst(&mut burst), 32);

    // Even packets are forwarded, odd ones dropped with one bulk free.
    let mut fwd = MbufBurst::<32>::new();
    assert_eq!(burst.move_to(&mut fwd, |i, _| i % 2 == 0), 16);
    assert_eq!(burst.len(), 16);
    let odd_lens: Vec<usize> = burst.iter().map(Mbuf::len).collect();
    assert_eq!(odd_lens, (0..32).filter(|i| i % 2 == 1).map(|i| 64 + i).collect::<Vec<_>>());
    burst.clear();
    assert_eq!(pool.in_use(), 16);
    assert_eq!(tx.burst(&mut fwd), 16);
    assert!(fwd.is_empty());

    // Back in: keep the packets longer than 80 bytes, drop the rest in bulk.
    assert_eq!(rx.burst(&mut burst), 16);
    let dropped = burst.retain(|_, m| m.len() > 80);
    assert_eq!(dropped, 9); // 64, 66, ..., 80
    assert_eq!(burst.len(), 7);
    assert_eq!(burst.packet(0).len(), 82);
    assert_eq!(pool.in_use(), 7);
    // A burst that is dropped frees what it holds.
    drop(burst);
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.available(), 511);

    // A TX burst that does not fit a destination keeps the rest.
    let mut big = MbufBurst::<8>::new();
    let mut small = MbufBurst::<4>::new();
    for i in 0..8 {
        big.push(Mbuf::from_bytes(&pool, &packet(60, i)).unwrap()).unwrap();
    }
    assert_eq!(big.move_to(&mut small, |_, _| true), 4);
    assert_eq!((big.len(), small.len()), (4, 4));
    assert_eq!(big.packet(0), &packet(60, 4)[..]);
    drop((big, small));
    assert_eq!(pool.in_use(), 0);

    drop((rx, tx));
    port.close().unwrap();
}

#[test]
fn typed_rings_carry_mbufs_and_boxes() {
    let _eal = dpdk();
    let pool = Mempool::new("tring_pool", 255).unwrap();

    let (prod, cons) = Ring::<Mbuf>::spsc("tring_mbufs", 64).unwrap();
    assert_eq!(prod.capacity(), 64);
    let mut burst = MbufBurst::<32>::new();
    for i in 0..32 {
        burst.push(Mbuf::from_bytes(&pool, &packet(100, i)).unwrap()).unwrap();
    }
    assert_eq!(prod.enqueue_burst(&mut burst), 32);
    assert_eq!(cons.len(), 32);
    let first = cons.dequeue().unwrap();
    assert_eq!(first.data(), &packet(100, 0)[..]);
    assert_eq!(cons.dequeue_burst(&mut burst), 31);
    assert_eq!(burst.packet(30), &packet(100, 31)[..]);
    drop((first, burst));
    assert_eq!(pool.in_use(), 0);

    // Items still queued when both ends are gone are freed with the ring.
    for i in 0..5 {
        prod.enqueue(Mbuf::from_bytes(&pool, &packet(60, i)).unwrap()).unwrap();
    }
    assert_eq!(pool.in_use(), 5);
    drop((prod, cons));
    assert_eq!(pool.in_use(), 0);

    // Multi-producer rings of boxed values; a full ring gives the item back.
    let (p1, c) = Ring::<Box<u64>>::mpsc("tring_boxes", 2).unwrap();
    let p2 = p1.clone();
    p1.enqueue(Box::new(1)).unwrap();
    p2.enqueue(Box::new(2)).unwrap();
    assert_eq!(p1.enqueue(Box::new(3)), Err(Box::new(3)));
    assert_eq!(c.dequeue(), Some(Box::new(1)));
    assert_eq!(c.dequeue(), Some(Box::new(2)));
    assert_eq!(c.dequeue(), None);
}

#[test]
fn worker_lcore_forwards_between_ports() {
    let _eal = dpdk();
    let workers: Vec<u32> = lcore::worker_lcores().collect();
    assert_eq!(workers, vec![1]);
    assert!(cycles::tsc_hz() > 0);

    let pool = Mempool::new("fwd_pool", 1023).unwrap();
    let (port_a, rx_a, mut tx_a) = ring_port("net_ring_fa", &pool);
    let (port_b, mut rx_b, tx_b) = ring_port("net_ring_fb", &pool);

    // The worker owns A's RX queue and B's TX queue: l3fwd-style loop, even packets
    // forwarded, odd ones dropped, until 64 packets were seen (or 5 seconds passed).
    let deadline = cycles::tsc() + 5 * cycles::tsc_hz();
    let worker = lcore::launch(1, move || {
        let (mut rx, mut tx) = (rx_a, tx_b);
        let mut seen = 0usize;
        let mut index = 0usize;
        let mut burst = MbufBurst::<32>::new();
        let mut fwd = MbufBurst::<32>::new();
        while seen < 64 && cycles::tsc() < deadline {
            let n = rx.burst(&mut burst);
            for i in 0..n {
                burst.prefetch(i);
            }
            let base = index;
            burst.move_to(&mut fwd, |i, _| (base + i).is_multiple_of(2));
            burst.clear();
            tx.burst(&mut fwd);
            fwd.clear();
            seen += n;
            index += n;
        }
        (lcore::lcore_id(), seen)
    })
    .unwrap();

    for chunk in 0..2u8 {
        let mut out = MbufBurst::<32>::new();
        for i in 0..32u8 {
            out.push(Mbuf::from_bytes(&pool, &packet(200, chunk * 32 + i)).unwrap()).unwrap();
        }
        assert_eq!(tx_a.burst(&mut out), 32);
    }
    let (worker_lcore, seen) = worker.join().unwrap();
    assert_eq!(worker_lcore, Some(1));
    assert_eq!(seen, 64);

    let mut got = MbufBurst::<64>::new();
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(rx_b.burst(&mut got), 32);
    let expected: Vec<Vec<u8>> = (0..64u8).filter(|i| i % 2 == 0).map(|i| packet(200, i)).collect();
    assert_eq!(got.packets().map(<[u8]>::to_vec).collect::<Vec<_>>(), expected);
    drop(got);
    assert_eq!(pool.in_use(), 0);

    // Launch errors: the main lcore and unknown lcores are refused; a panic is reported.
    assert!(lcore::launch(lcore::main_lcore(), || ()).is_err());
    assert_eq!(
        lcore::launch(7, || ()).unwrap_err().to_string(),
        "invalid argument: lcore 7 is not an enabled worker lcore (workers: [1])"
    );
    let panicked = lcore::launch(1, || panic!("worker panic (expected by the test)")).unwrap();
    assert_eq!(panicked.join().unwrap_err(), dataplane::dpdk::DpdkError::WorkerPanicked(1));
    assert_eq!(lcore::launch(1, || 41 + 1).unwrap().join().unwrap(), 42);

    drop((tx_a, rx_b));
    port_a.close().unwrap();
    port_b.close().unwrap();
}
