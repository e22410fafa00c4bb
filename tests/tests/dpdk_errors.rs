//! Bad arguments give errors (with DPDK's message where DPDK decided), never panics.

mod dpdk_common;

use dataplane::dpdk::{DpdkError, Eal, Mbuf, Mempool, Port, PortConfig, Ring};
use dpdk_common::{dpdk, eal_args};

#[test]
fn unknown_ports() {
    let _eal = dpdk();
    let err = Port::from_id(31).unwrap_err();
    assert_eq!(err, DpdkError::UnknownPort(format!("31 ({} ports available)", Port::count())));
    assert_eq!(Port::by_name("net_ring_nope").unwrap_err().to_string(), "unknown port net_ring_nope");
}

#[test]
fn too_many_queues_names_the_limit() {
    let _eal = dpdk();
    let pool = Mempool::new("q_pool", 255).unwrap();
    let mut port = Port::probe_vdev("net_ring_q", "").unwrap();
    let id = port.id();
    assert_eq!(port.info().unwrap().max_rx_queues, 16);

    let err = port.configure(&PortConfig { rx_queues: 17, ..PortConfig::default() }, &pool).unwrap_err();
    assert_eq!(err.to_string(), format!("port {id} (net_ring_q): 17 rx queues requested, device supports at most 16"));
    let err = port.configure(&PortConfig { tx_queues: 40, ..PortConfig::default() }, &pool).unwrap_err();
    assert_eq!(
        err,
        DpdkError::TooManyQueues { port: id, name: "net_ring_q".into(), dir: "tx", requested: 40, max: 16 }
    );
    let err = port.configure(&PortConfig { rx_queues: 0, ..PortConfig::default() }, &pool).unwrap_err();
    assert_eq!(err.to_string(), format!("invalid argument: port {id} (net_ring_q): 0 rx queues requested"));

    // Lifecycle misuse is refused too.
    assert!(matches!(port.start(), Err(DpdkError::InvalidState(_))));
    let (rx, tx) = port.configure(&PortConfig::default(), &pool).unwrap();
    port.start().unwrap();
    assert_eq!(
        port.stop().unwrap_err().to_string(),
        format!("port {id} (net_ring_q): cannot stop while 2 of its queues are in use")
    );
    assert_eq!(
        Port::by_name("net_ring_q").unwrap_err().to_string(),
        format!("port {id} (net_ring_q) is already held by another Port")
    );
    drop((rx, tx));
    port.stop().unwrap();
    port.close().unwrap();
    // The name is free again once the port is closed.
    Port::probe_vdev("net_ring_q", "").unwrap().close().unwrap();
}

#[test]
fn bad_devices_and_names() {
    let _eal = dpdk();
    let port = Port::probe_vdev("net_ring_dup", "").unwrap();
    let err = Port::probe_vdev("net_ring_dup", "").unwrap_err();
    assert_eq!(err.errno(), Some(17));
    assert_eq!(err.to_string(), "rte_vdev_init(net_ring_dup, \"\"): File exists (errno 17)");
    drop(port);

    let err = Port::probe_vdev("net_nosuchdriver0", "").unwrap_err();
    assert!(matches!(err, DpdkError::Call { .. }), "{err}");
    let err = Port::probe_vdev("net_pcap_bad", "rx_pcap=/nonexistent/in.pcap").unwrap_err();
    assert_eq!(
        err.to_string(),
        "rte_vdev_init(net_pcap_bad, \"rx_pcap=/nonexistent/in.pcap\"): \
         the driver rejected the device (its reason is in the DPDK log) (errno 1)"
    );
    assert!(matches!(Port::probe_vdev("nul\0name", ""), Err(DpdkError::InvalidArgument(_))));

    let pool = Mempool::new("dup_pool", 63).unwrap();
    let err = Mempool::new("dup_pool", 63).unwrap_err();
    assert_eq!(err.to_string(), "rte_pktmbuf_pool_create(dup_pool): File exists (errno 17)");
    let ring = Ring::<Mbuf>::spsc("dup_ring", 16).unwrap();
    let err = Ring::<Mbuf>::spsc("dup_ring", 16).err().unwrap();
    assert_eq!(err.to_string(), "rte_ring_create(dup_ring): File exists (errno 17)");
    drop(ring);

    // Appending past the tailroom is an error and leaves the packet as it was.
    let mut m = Mbuf::from_bytes(&pool, &[1, 2, 3]).unwrap();
    let tailroom = m.tailroom();
    assert_eq!(tailroom, 2048 - 3);
    let err = m.append(&vec![0; tailroom + 1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("invalid argument: cannot append {} bytes to an mbuf with {tailroom} bytes of tailroom", tailroom + 1)
    );
    assert_eq!(m.data(), &[1, 2, 3]);
    drop(m);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn second_eal_init_is_an_error() {
    let _eal = dpdk();
    let err = Eal::init(eal_args()).unwrap_err();
    assert_eq!(err, DpdkError::EalAlreadyInitialized);
    assert_eq!(err.to_string(), "EAL is already initialised in this process (it can be initialised once)");
    assert!(Eal::is_initialized());
}
