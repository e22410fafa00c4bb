//! Reading and writing pcap files (offline `classify`, traffic generation, tests).
//! A thin layer over the `pcap-file` crate: Ethernet link type only.

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::DataLink;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::time::Duration;

/// One captured frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub timestamp: Duration,
    pub data: Vec<u8>,
}

/// Streams the frames of a pcap file in batches, reusing the caller's buffers.
pub struct PcapFrames {
    reader: PcapReader<BufReader<File>>,
    path: String,
}

impl PcapFrames {
    pub fn open(path: &Path) -> Result<PcapFrames, String> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
        let reader = PcapReader::new(BufReader::new(file)).map_err(|e| format!("{name}: not a pcap file: {e}"))?;
        let link = reader.header().datalink;
        if link != DataLink::ETHERNET {
            return Err(format!("{name}: link type {link:?} is not Ethernet"));
        }
        Ok(PcapFrames { reader, path: name })
    }

    /// Fill `batch` with up to `max` frames (reusing its allocations); returns how many.
    /// 0 means the end of the file.
    pub fn next_batch(&mut self, batch: &mut Vec<Frame>, max: usize) -> Result<usize, String> {
        batch.resize_with(max, Frame::default);
        let mut n = 0;
        while n < max {
            match self.reader.next_packet() {
                None => break,
                Some(Err(e)) => return Err(format!("{}: {e}", self.path)),
                Some(Ok(p)) => {
                    if let Some(slot) = batch.get_mut(n) {
                        slot.timestamp = p.timestamp;
                        slot.data.clear();
                        slot.data.extend_from_slice(&p.data);
                    }
                    n += 1;
                }
            }
        }
        batch.truncate(n);
        Ok(n)
    }
}

/// Read a whole pcap file.
pub fn read_all(path: &Path) -> Result<Vec<Frame>, String> {
    let mut frames = PcapFrames::open(path)?;
    let mut all = Vec::new();
    let mut batch = Vec::new();
    while frames.next_batch(&mut batch, 256)? > 0 {
        all.append(&mut batch);
    }
    Ok(all)
}

/// Write frames to a new pcap file (microsecond timestamps, Ethernet).
pub fn write_all<'a>(path: &Path, frames: impl IntoIterator<Item = (Duration, &'a [u8])>) -> Result<(), String> {
    let name = path.display().to_string();
    let file = File::create(path).map_err(|e| format!("{name}: {e}"))?;
    let header = PcapHeader { datalink: DataLink::ETHERNET, snaplen: 65535, ..PcapHeader::default() };
    let mut writer = PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| format!("{name}: {e}"))?;
    for (ts, data) in frames {
        let packet = PcapPacket::new(ts, data.len() as u32, data);
        writer.write_packet(&packet).map_err(|e| format!("{name}: {e}"))?;
    }
    use std::io::Write;
    writer.into_writer().flush().map_err(|e| format!("{name}: {e}"))
}
