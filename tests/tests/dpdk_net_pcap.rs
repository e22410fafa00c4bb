//! A pcap file read through `net_pcap` (`rx_pcap=`) and written back (`tx_pcap=`) is
//! identical, packet for packet and byte for byte.

mod dpdk_common;

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use dataplane::dpdk::{MbufBurst, Mempool, Port, PortConfig};
use dpdk_common::{dpdk, packet};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

fn write_pcap(path: &Path, packets: &[Vec<u8>]) {
    let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
    for (i, p) in packets.iter().enumerate() {
        let ts = Duration::from_micros(1_000_000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, p.len() as u32, p)).unwrap();
    }
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len());
        out.push(p.data.into_owned());
    }
    out
}

#[test]
fn pcap_in_equals_pcap_out() {
    let _eal = dpdk();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    let packets: Vec<Vec<u8>> = [60, 64, 100, 333, 1024, 1514, 60, 1500, 42, 128]
        .iter()
        .enumerate()
        .map(|(i, &n)| packet(n, i as u8))
        .collect();
    write_pcap(&input, &packets);

    let pool = Mempool::new("pcap_pool", 1023).unwrap();
    let args = format!("rx_pcap={},tx_pcap={}", input.display(), output.display());
    let mut port = Port::probe_vdev("net_pcap_rt", &args).unwrap();
    assert_eq!(port.info().unwrap().driver, "net_pcap");
    let (mut rxs, mut txs) = port.configure(&PortConfig::default(), &pool).unwrap();
    let (mut rx, mut tx) = (rxs.remove(0), txs.remove(0));
    port.start().unwrap();

    // Receive the whole file, transmit each burst as it comes.
    let mut burst = MbufBurst::<4>::new();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.len() < packets.len() && Instant::now() < deadline {
        rx.burst(&mut burst);
        received.extend(burst.packets().map(<[u8]>::to_vec));
        while !burst.is_empty() {
            tx.burst(&mut burst);
        }
    }
    assert_eq!(received, packets);
    // The file is exhausted: nothing more arrives.
    assert_eq!(rx.burst(&mut burst), 0);
    let stats = port.stats().unwrap();
    assert_eq!((stats.ipackets, stats.opackets), (10, 10));
    assert_eq!(stats.ibytes, packets.iter().map(|p| p.len() as u64).sum::<u64>());
    assert_eq!(pool.in_use(), 0);

    // net_pcap flushes and closes its dump file when the port stops.
    drop((rx, tx));
    port.stop().unwrap();
    port.close().unwrap();
    assert_eq!(read_pcap(&output), packets);
}
