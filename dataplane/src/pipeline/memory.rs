//! What one worker's pipeline holds in memory, by part: all of it is allocated when the
//! pipeline is made and never again, so the sizes are known before the first packet
//! (`dataplane run` prints them; `scripts/memory.sh` sets them beside the process's own).

use std::fmt;

use super::burst::StageArrays;
use super::Pipeline;

/// Bytes per part of one pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineMemory {
    /// Signatures, entries and their ClientHello reassembly states.
    pub flow_table: usize,
    /// The ClientHello buffers (16 KB each) and their bookkeeping.
    pub hello_buffers: usize,
    /// QUIC decryption scratch and the pieces of each buffer.
    pub quic_scratch: usize,
    pub fragment_table: usize,
    /// The per-source buckets of the connection limits (`[limits] slots`).
    pub limit_table: usize,
    /// The pipeline's own struct, the arrays a chunk's steps hand each other and the top
    /// talkers' sketches.
    pub other: usize,
}

impl PipelineMemory {
    pub fn total(&self) -> usize {
        self.flow_table + self.hello_buffers + self.quic_scratch + self.fragment_table + self.limit_table + self.other
    }
}

/// Bytes as MiB with one decimal.
pub struct Mib(pub usize);

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} MiB", self.0 as f64 / (1024.0 * 1024.0))
    }
}

impl fmt::Display for PipelineMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (flow table {}, hello buffers {}, quic scratch {}, fragment table {}, limit table {}, other {})",
            Mib(self.total()),
            Mib(self.flow_table),
            Mib(self.hello_buffers),
            Mib(self.quic_scratch),
            Mib(self.fragment_table),
            Mib(self.limit_table),
            Mib(self.other)
        )
    }
}

impl Pipeline {
    /// What this pipeline holds, by part.
    pub fn memory(&self) -> PipelineMemory {
        PipelineMemory {
            flow_table: self.flows.memory_bytes(),
            hello_buffers: self.hellos.memory_bytes(),
            quic_scratch: self.quic.memory_bytes(),
            fragment_table: self.fragments.memory_bytes(),
            limit_table: self.limits.memory(),
            other: size_of::<Pipeline>()
                + self.arrays.as_ref().map_or(0, |_| size_of::<StageArrays>())
                + self.talkers.memory_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::flow::{FlowEntry, WAYS};
    use crate::pipeline::PipelineConfig;

    #[test]
    fn the_parts_grow_with_what_the_config_asks_for() {
        let small = Pipeline::new(PipelineConfig { flow_capacity: 1 << 12, hello_buffers: 4, ..Default::default() });
        let large = Pipeline::new(PipelineConfig { flow_capacity: 1 << 16, hello_buffers: 64, ..Default::default() });
        let (s, l) = (small.memory(), large.memory());
        // 16 times the entries: each takes at least its 64-byte line and its 2-byte signature
        // (a large table's arrays also carry up to 2 MB of alignment padding each).
        let per_flow = size_of::<FlowEntry>() + 32 / WAYS;
        assert!(s.flow_table >= (1 << 12) * per_flow, "{s:?}");
        assert!(l.flow_table >= (1 << 16) * per_flow, "{l:?}");
        assert!(l.flow_table - s.flow_table >= ((1 << 16) - (1 << 12)) * per_flow, "{s:?} {l:?}");
        // 60 more buffers of 16 KB.
        assert!(l.hello_buffers - s.hello_buffers >= 60 * 16 * 1024, "{s:?} {l:?}");
        assert!(l.hello_buffers - s.hello_buffers < 61 * 16 * 1024, "{s:?} {l:?}");
        assert_eq!(s.fragment_table, l.fragment_table);
        assert_eq!(s.other, l.other);
        // 48 bytes a bucket.
        assert_eq!(s.limit_table, crate::pipeline::limits::DEFAULT_SLOTS * 48);
        let few = Pipeline::new(PipelineConfig { limit_slots: 1024, ..Default::default() });
        assert_eq!(few.memory().limit_table, 1024 * 48);
        assert_eq!(
            l.total(),
            l.flow_table + l.hello_buffers + l.quic_scratch + l.fragment_table + l.limit_table + l.other
        );
    }

    #[test]
    fn mebibytes_print_with_one_decimal() {
        assert_eq!(Mib(3 * 1024 * 1024 + 512 * 1024).to_string(), "3.5 MiB");
        assert_eq!(Mib(0).to_string(), "0.0 MiB");
    }
}
