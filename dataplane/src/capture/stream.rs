//! The pcap file a capture streams: nanosecond timestamps (magic `a1b23c4d`, little endian),
//! Ethernet, snap length [`SNAP_LEN`]. Records are written one by one as the rings are
//! drained, through `pcap-file`'s own record writer.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use byteorder_slice::LittleEndian;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::ring::{Record, SNAP_LEN};

/// TSC readings to wall-clock time: one (wall clock, TSC) pair read when the capture was
/// armed, and the TSC's rate. TSC ticks after that pair are added to its wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Since the Unix epoch, at `tsc`.
    wall: Duration,
    tsc: u64,
    hz: u64,
}

impl Clock {
    /// A clock from a TSC reading `tsc` taken now, at `hz` ticks a second.
    pub fn now(tsc: u64, hz: u64) -> Clock {
        Clock::at(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(), tsc, hz)
    }

    /// A clock whose TSC read `tsc` at `wall` (since the epoch).
    pub fn at(wall: Duration, tsc: u64, hz: u64) -> Clock {
        Clock { wall, tsc, hz: hz.max(1) }
    }

    /// The wall-clock time of TSC reading `tsc` (a reading before the pair counts back).
    pub fn wall(&self, tsc: u64) -> Duration {
        let ticks = tsc.wrapping_sub(self.tsc) as i64;
        let nanos = i128::from(ticks) * 1_000_000_000 / i128::from(self.hz);
        let wall = self.wall.as_nanos() as i128 + nanos;
        let wall = u128::try_from(wall).unwrap_or(0);
        Duration::new((wall / 1_000_000_000) as u64, (wall % 1_000_000_000) as u32)
    }
}

/// The file header.
pub fn header() -> Vec<u8> {
    let header = PcapHeader {
        snaplen: SNAP_LEN as u32,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let mut out = Vec::with_capacity(24);
    // Cannot fail: writing to a Vec.
    let _ = header.write_to(&mut out);
    out
}

/// Appends the record of `record` to `out`.
pub fn write_record(out: &mut Vec<u8>, clock: &Clock, record: &Record) {
    let packet = PcapPacket::new(clock.wall(record.tsc), record.len.max(record.caplen), record.data());
    // Cannot fail: a Vec, and a record within the snap length.
    let _ = packet.write_to::<_, LittleEndian>(out, TsResolution::NanoSecond, SNAP_LEN as u32);
}
