//! The fragment table through the pipeline: the `nmap -f` bypass closed, fragments following
//! their datagram's verdict, held ones released or dropped, overlaps, timeouts, bounds.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use super::super::{Pipeline, PipelineConfig, Verdict};
use super::*;
use crate::policy::{rule_set_from_str, CompiledPolicy};
use crate::wire::build::{tcp_segment_v4, tcp_segment_v6, udp_segment_v4};
use crate::wire::fragment_build::{even_pieces, ipv4_fragments, ipv6_fragments, Piece};
use crate::wire::{ip_proto, tcp_flags::SYN};

pub(crate) const CLIENT: [u8; 4] = [192, 168, 1, 10];
pub(crate) const SERVER: [u8; 4] = [10, 0, 0, 5];
pub(crate) const CLIENT6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
pub(crate) const SERVER6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];

/// DROP TCP 445 (any address), default ALLOW.
pub(crate) fn drop_445() -> CompiledPolicy {
    let yaml = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: no-smb}\nspec:\n  cidrBlocks: [\"0.0.0.0/0\", \"::/0\"]\n  direction: ingress\n  ports: [{protocol: TCP, port: 445}]\n  action: DROP\n";
    CompiledPolicy::compile(rule_set_from_str(yaml, "test").unwrap(), Action::Allow).unwrap()
}

/// A packet's final fate: its verdict, and the cause when a fragment was dropped for its own
/// sake; `None` while held.
pub(crate) type Fate = Option<(Verdict, Option<FragmentCause>)>;

/// A caller of the pipeline that keeps held packets (by number) as the worker keeps mbufs.
pub(crate) struct Caller {
    pub pipeline: Pipeline,
    pub fates: Vec<Fate>,
    held: Vec<Option<usize>>,
}

impl Caller {
    pub fn new(config: PipelineConfig) -> Caller {
        let pipeline = Pipeline::new(config);
        let held = vec![None; pipeline.fragments.held_capacity()];
        Caller { pipeline, fates: Vec::new(), held }
    }

    /// One burst of `frames` at `now_ms`.
    pub fn burst(&mut self, policy: &CompiledPolicy, frames: &[Vec<u8>], now_ms: u64) {
        let mut v = vec![Verdict::default(); frames.len()];
        self.pipeline.process_burst(policy, frames, now_ms, &mut v);
        let base = self.fates.len();
        self.fates.extend(v.iter().map(|v| Some((*v, None))));
        for e in self.pipeline.fragments.events() {
            match *e {
                FragmentEvent::Held { packet, id } => {
                    assert!(self.held[id.index()].replace(base + packet).is_none(), "id {id:?} reused");
                    self.fates[base + packet] = None;
                }
                FragmentEvent::Dropped { packet, cause } => {
                    let f = self.fates[base + packet].as_mut().unwrap();
                    assert_eq!(f.0, cause.verdict());
                    f.1 = Some(cause);
                }
            }
        }
        self.drain();
    }

    pub fn drain(&mut self) {
        let (held, fates) = (&mut self.held, &mut self.fates);
        self.pipeline.fragments.drain_released(|r| {
            let packet = held[r.id.index()].take().expect("released twice");
            fates[packet] = Some((r.verdict, r.cause));
        });
    }

    pub fn finish(&mut self) {
        self.pipeline.flush_fragments();
        self.drain();
        assert!(self.held.iter().all(Option::is_none), "held packets left");
        assert_eq!(self.pipeline.fragments.levels(), (0, 0));
    }

    pub fn actions(&self) -> Vec<Option<Action>> {
        self.fates.iter().map(|f| f.map(|(v, _)| v.action)).collect()
    }

    pub fn causes(&self) -> Vec<Option<FragmentCause>> {
        self.fates.iter().map(|f| f.and_then(|(_, c)| c)).collect()
    }
}

fn syn_v4(dport: u16) -> Vec<u8> {
    tcp_segment_v4(CLIENT, SERVER, 40000, dport, SYN, 1, &[0x55; 40])
}

fn frags_v4(dport: u16, ident: u16, pieces: &[Piece]) -> Vec<Vec<u8>> {
    ipv4_fragments(CLIENT, SERVER, ip_proto::TCP, ident, &syn_v4(dport), pieces)
}

const fn piece(start: usize, end: usize, more: bool) -> Piece {
    Piece { start, end, more }
}

use Action::{Allow, Drop};

#[test]
fn nmap_f_tiny_first_fragment_is_dropped_with_its_datagram() {
    let policy = drop_445();
    let mut c = Caller::new(PipelineConfig::default());
    // nmap -f: 8-byte pieces; the first carries the ports but not the flags.
    let frames = frags_v4(445, 1, &even_pieces(60, 8));
    c.burst(&policy, &frames, 0);
    assert!(c.actions().iter().all(|a| *a == Some(Drop)), "{:?}", c.actions());
    assert_eq!(c.causes()[0], Some(FragmentCause::Tiny));
    // The piece at offset 8 is refused on its own (RFC 1858), the rest with the datagram.
    assert!(c.causes()[1..].iter().all(|x| x.is_some()));
    // The same to port 80: tiny fragments are refused whatever the port.
    let mut c = Caller::new(PipelineConfig::default());
    c.burst(&policy, &frags_v4(80, 2, &even_pieces(60, 8)), 0);
    assert!(c.actions().iter().all(|a| *a == Some(Drop)));
    // Each fragment counts under its datagram's cause but the one at offset 8 (its own).
    assert_eq!(c.causes()[1], Some(FragmentCause::OffsetOne));
    assert_eq!(c.pipeline.counters.get(Counter::DropFragmentTiny), 7);
    assert_eq!(c.pipeline.counters.get(Counter::DropFragmentOffset), 1);
    c.finish();
}

#[test]
fn a_fragmented_syn_gets_its_connections_verdict_on_every_fragment() {
    let policy = drop_445();
    let mut c = Caller::new(PipelineConfig::default());
    let pieces = even_pieces(60, 24);
    c.burst(&policy, &frags_v4(445, 1, &pieces), 0);
    c.burst(&policy, &frags_v4(443, 2, &pieces), 0);
    let n = pieces.len();
    assert_eq!(c.actions()[..n], vec![Some(Drop); n][..]);
    assert_eq!(c.actions()[n..], vec![Some(Allow); n][..]);
    assert!(c.fates[..n].iter().all(|f| f.unwrap().0.rule() == Some(0)));
    assert!(c.causes().iter().all(Option::is_none));
    // Complete datagrams leave the table at once.
    assert_eq!(c.pipeline.fragments.levels(), (0, 0));
    assert_eq!(c.pipeline.counters.get(Counter::DropPolicy), n as u64);
    c.finish();
}

#[test]
fn ipv6_fragments_follow_their_first_fragment() {
    let policy = drop_445();
    let mut c = Caller::new(PipelineConfig::default());
    for (port, id) in [(445, 7u32), (22, 8)] {
        let seg = tcp_segment_v6(CLIENT6, SERVER6, 40000, port, SYN, 1, &[0; 40]);
        let mut frames = ipv6_fragments(CLIENT6, SERVER6, ip_proto::TCP, id, &seg, &even_pieces(seg.len(), 24));
        frames.reverse();
        c.burst(&policy, &frames, 0);
    }
    assert_eq!(c.actions(), [vec![Some(Drop); 3], vec![Some(Allow); 3]].concat());
    assert_eq!(c.pipeline.counters.get(Counter::FragmentsHeld), 4);
    c.finish();
}

#[test]
fn out_of_order_fragments_are_held_then_released_across_bursts() {
    let policy = drop_445();
    let mut c = Caller::new(PipelineConfig::default());
    let allowed = frags_v4(80, 1, &even_pieces(60, 24));
    let dropped = frags_v4(445, 2, &even_pieces(60, 24));
    // Later fragments first, in one burst; their first fragments in the next.
    c.burst(&policy, &[allowed[1].clone(), dropped[2].clone(), allowed[2].clone(), dropped[1].clone()], 0);
    assert_eq!(c.actions(), [None; 4]);
    assert_eq!(c.pipeline.fragments.levels(), (2, 4));
    c.burst(&policy, &[dropped[0].clone(), allowed[0].clone()], 10);
    assert_eq!(c.actions(), [Some(Allow), Some(Drop), Some(Allow), Some(Drop), Some(Drop), Some(Allow)].map(|a| a));
    assert_eq!(c.pipeline.fragments.levels(), (0, 0));
    c.finish();
}

#[test]
fn held_fragments_time_out() {
    let policy = drop_445();
    let config = PipelineConfig {
        fragments: FragmentConfig { timeout_ms: 100, ..FragmentConfig::default() },
        ..PipelineConfig::default()
    };
    let mut c = Caller::new(config);
    let frames = frags_v4(80, 1, &even_pieces(60, 24));
    c.burst(&policy, &frames[1..], 0);
    assert_eq!(c.actions(), [None, None]);
    c.pipeline.expire_fragments(99);
    c.drain();
    assert_eq!(c.actions(), [None, None]);
    c.pipeline.expire_fragments(100);
    c.drain();
    assert_eq!(c.causes(), [Some(FragmentCause::Timeout); 2]);
    assert_eq!(c.pipeline.counters.get(Counter::DropFragmentTimeout), 2);
    // The first fragment, late: a new datagram, decided by its connection; nothing is left.
    c.burst(&policy, &frames[..1], 200);
    assert_eq!(c.actions()[2], Some(Allow));
    c.finish();
}

#[test]
fn overlaps_drop_the_whole_datagram() {
    let policy = drop_445();
    let mut c = Caller::new(PipelineConfig::default());
    // A first fragment to port 80, then a rewrite of bytes 16..40 (flags, and the rest).
    let frames = frags_v4(80, 1, &[piece(0, 24, true), piece(16, 40, true), piece(40, 60, false)]);
    c.burst(&policy, &frames, 0);
    assert_eq!(c.actions(), [Some(Allow), Some(Drop), Some(Drop)]);
    assert_eq!(c.causes(), [None, Some(FragmentCause::Overlap), Some(FragmentCause::Overlap)]);
    // A duplicate first fragment is an overlap too; a disagreeing last fragment as well.
    let mut c = Caller::new(PipelineConfig::default());
    let frames = frags_v4(80, 2, &[piece(0, 24, true), piece(0, 24, true), piece(24, 60, false)]);
    c.burst(&policy, &frames, 0);
    assert_eq!(c.actions(), [Some(Allow), Some(Drop), Some(Drop)]);
    let mut c = Caller::new(PipelineConfig::default());
    let frames = frags_v4(80, 3, &[piece(48, 60, false), piece(24, 48, false), piece(0, 24, true)]);
    c.burst(&policy, &frames, 0);
    assert_eq!(c.actions(), [Some(Drop); 3]);
    assert_eq!(c.causes(), [Some(FragmentCause::Overlap); 3]);
    c.finish();
}

#[test]
fn held_bounds_drop_the_datagram() {
    let policy = drop_445();
    let config = PipelineConfig {
        fragments: FragmentConfig { held_per_datagram: 2, held_per_worker: 3, ..FragmentConfig::default() },
        ..PipelineConfig::default()
    };
    let mut c = Caller::new(config);
    let seg = udp_segment_v4(CLIENT, SERVER, 5000, 53, &[0; 72]);
    let frames = ipv4_fragments(CLIENT, SERVER, ip_proto::UDP, 9, &seg, &even_pieces(seg.len(), 16));
    c.burst(&policy, &frames[1..4], 0);
    assert_eq!(c.actions(), [Some(Drop); 3]);
    assert_eq!(c.causes(), [Some(FragmentCause::TooManyHeld); 3]);
    // The datagram stays dropped: its first fragment as well.
    c.burst(&policy, &frames[..1], 0);
    assert_eq!(c.causes()[3], Some(FragmentCause::TooManyHeld));
    // The worker bound: two datagrams of two held each.
    let other = |id| ipv4_fragments(CLIENT, SERVER, ip_proto::UDP, id, &seg, &even_pieces(seg.len(), 16));
    let (a, b) = (other(10), other(11));
    c.burst(&policy, &[a[1].clone(), a[2].clone(), b[1].clone(), b[2].clone()], 0);
    // b's second fragment finds no room: b is dropped, its held fragment with it.
    assert_eq!(c.actions()[4..], [None, None, Some(Drop), Some(Drop)]);
    assert_eq!(c.causes()[6..], [Some(FragmentCause::TooManyHeld); 2]);
    c.burst(&policy, &[a[0].clone()], 0);
    assert_eq!(c.actions()[4..6], [Some(Allow), Some(Allow)]);
    c.finish();
}

#[test]
fn ordinary_packets_never_touch_the_table() {
    let policy = drop_445();
    let mut c = Caller::new(PipelineConfig::default());
    let frames: Vec<Vec<u8>> =
        (0..40).map(|i| crate::wire::build::tcp_v4(CLIENT, SERVER, 1000 + i, 445, SYN, 0, &[])).collect();
    c.burst(&policy, &frames, 0);
    assert!(c.pipeline.fragments.events().is_empty());
    assert_eq!(c.pipeline.fragments.levels(), (0, 0));
    assert_eq!(c.actions(), vec![Some(Drop); 40]);
}

#[test]
fn pieces_merge_and_refuse_overlaps() {
    let mut d = Datagram::FREE;
    let view =
        |offset: u32, len: u32, more: bool| FragmentView { key: Datagram::FREE.key, offset, len, more, problem: None };
    assert_eq!(d.add_piece(&view(16, 8, true)), Ok(()));
    assert_eq!(d.add_piece(&view(0, 8, true)), Ok(()));
    assert_eq!(d.n_pieces, 2);
    assert_eq!(d.add_piece(&view(8, 8, true)), Ok(()));
    assert_eq!((d.n_pieces, d.pieces[0]), (1, (0, 24)));
    assert_eq!(d.add_piece(&view(20, 8, true)), Err(FragmentCause::Overlap));
    assert_eq!(d.add_piece(&view(40, 8, false)), Ok(()));
    assert!(!d.complete());
    assert_eq!(d.add_piece(&view(48, 8, true)), Err(FragmentCause::Overlap), "past the end");
    assert_eq!(d.add_piece(&view(24, 16, true)), Ok(()));
    assert!(d.complete());
    let mut d = Datagram::FREE;
    for i in 0..MAX_PIECES as u32 {
        assert_eq!(d.add_piece(&view(i * 16, 8, true)), Ok(()));
    }
    assert_eq!(d.add_piece(&view(1000, 8, true)), Err(FragmentCause::TooManyPieces));
}

#[test]
fn an_ipv6_first_fragment_without_its_chain_and_oversize_fragments_are_refused() {
    let policy = drop_445();
    let mut c = Caller::new(PipelineConfig::default());
    // Destination options after the fragment header, cut by the first fragment (RFC 7112).
    let seg = tcp_segment_v6(CLIENT6, SERVER6, 40000, 80, SYN, 1, &[0; 40]);
    let mut data = crate::wire::build::ipv6_options_header(ip_proto::TCP, 2);
    data.extend(&seg);
    let frames = ipv6_fragments(CLIENT6, SERVER6, 60, 5, &data, &[piece(0, 16, true), piece(16, data.len(), false)]);
    c.burst(&policy, &frames, 0);
    assert_eq!(c.causes(), [Some(FragmentCause::IncompleteChain); 2]);
    // Past 65535 bytes: dropped, with the datagram's first fragment.
    let big = vec![0u8; 65544];
    let seg = udp_segment_v4(CLIENT, SERVER, 5000, 53, &[0; 16]);
    let mut data = seg.clone();
    data.resize(big.len(), 0);
    let frames =
        ipv4_fragments(CLIENT, SERVER, ip_proto::UDP, 77, &data, &[piece(65504, 65520, false), piece(0, 24, true)]);
    c.burst(&policy, &frames, 0);
    assert_eq!(c.causes()[2..], [Some(FragmentCause::Oversize); 2]);
    assert_eq!(c.actions(), [Some(Drop); 4]);
    assert_eq!(c.pipeline.counters.get(Counter::Malformed), 0, "counted by cause, not as malformed frames");
    c.finish();
}
