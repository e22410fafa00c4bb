//! Rules that match any address, indexed by transport: for each protocol and port, the list of
//! those rules whose `ports` predicate holds, in evaluation order. Looking a packet up costs one
//! table read, however many such rules there are (a thousand SNI rules on port 443, say).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::decision::RuleId;
use super::rule::PortRange;
use crate::wire::ip_proto;
use std::collections::HashMap;

/// Any-address rules by (protocol, destination port).
pub(crate) struct TransportTable {
    /// Port -> list index, for TCP and UDP (65536 entries each).
    tcp: Vec<u16>,
    udp: Vec<u16>,
    /// List for packets without a port (ICMP, other protocols, non-first fragments): the rules
    /// without a `ports` predicate.
    portless: u16,
    /// List for packets whose transport is unknown: the rules without a `ports` predicate and
    /// the DROP rules with one (they may match).
    unknown: u16,
    spans: Vec<(u32, u32)>,
    members: Vec<RuleId>,
}

/// What the table needs of a rule without `cidrBlocks`.
pub(crate) struct AnyAddressRule<'a> {
    pub id: RuleId,
    pub ports: &'a [PortRange],
    /// Has TLS predicates (so a later rule may still decide).
    pub tls: bool,
    /// Has server names (reached through the SNI matcher once the hello is known).
    pub named: bool,
    /// Its action is DROP.
    pub drop: bool,
}

impl TransportTable {
    /// The table of the any-address rules (in evaluation order) that `include` accepts.
    pub fn build(any_address: &[AnyAddressRule<'_>], include: impl Fn(&AnyAddressRule<'_>) -> bool) -> TransportTable {
        let any: Vec<&AnyAddressRule<'_>> = any_address.iter().filter(|r| include(r)).collect();
        let mut t = TransportTable {
            tcp: Vec::new(),
            udp: Vec::new(),
            portless: 0,
            unknown: 0,
            spans: Vec::new(),
            members: Vec::new(),
        };
        let mut ids: HashMap<Vec<RuleId>, u16> = HashMap::new();
        let mut intern = |list: Vec<RuleId>, t: &mut TransportTable| -> u16 {
            *ids.entry(list).or_insert_with_key(|list| {
                let start = t.members.len() as u32;
                t.members.extend_from_slice(list);
                t.spans.push((start, t.members.len() as u32));
                (t.spans.len() - 1) as u16
            })
        };
        let select = |matches: &dyn Fn(&AnyAddressRule<'_>) -> bool| -> Vec<RuleId> {
            let mut out = Vec::new();
            for r in any.iter().filter(|r| matches(r)) {
                out.push(r.id);
                // A rule without TLS predicates decides whenever its transport matches.
                if !r.tls {
                    break;
                }
            }
            out
        };
        t.portless = intern(select(&|r| r.ports.is_empty()), &mut t);
        // With the transport unknown, an ALLOW rule with TLS predicates or ports never matches
        // and every other rule decides once its address matches (any address, here): the first
        // of those ends the list.
        let decides = any.iter().find(|r| r.drop || (r.ports.is_empty() && !r.tls));
        t.unknown = intern(decides.map(|r| r.id).into_iter().collect(), &mut t);
        for protocol in [ip_proto::TCP, ip_proto::UDP] {
            // Port ranges cut 0..=65535 into intervals on which every rule's predicate is constant.
            let mut cuts: Vec<u32> = vec![0, 65536];
            for range in any.iter().flat_map(|r| r.ports).filter(|p| p.protocol == protocol) {
                cuts.extend([u32::from(range.first), u32::from(range.last) + 1]);
            }
            cuts.sort_unstable();
            cuts.dedup();
            let mut table = vec![0u16; 65536];
            for w in cuts.windows(2) {
                let (Some(&lo), Some(&hi)) = (w.first(), w.get(1)) else { continue };
                let port = lo as u16;
                let list = select(&|r| r.ports.is_empty() || r.ports.iter().any(|p| p.contains(protocol, port)));
                let class = intern(list, &mut t);
                if let Some(slots) = table.get_mut(lo as usize..hi as usize) {
                    slots.fill(class);
                }
            }
            if protocol == ip_proto::TCP {
                t.tcp = table;
            } else {
                t.udp = table;
            }
        }
        t
    }

    /// The any-address rules whose transport predicate holds for this packet, in order.
    #[inline]
    pub fn candidates(&self, protocol: u8, dst_port: Option<u16>) -> &[RuleId] {
        let class = match (protocol, dst_port) {
            (ip_proto::TCP, Some(p)) => self.tcp.get(usize::from(p)).copied(),
            (ip_proto::UDP, Some(p)) => self.udp.get(usize::from(p)).copied(),
            _ => Some(self.portless),
        };
        let Some(&(start, end)) = class.and_then(|c| self.spans.get(usize::from(c))) else { return &[] };
        self.members.get(start as usize..end as usize).unwrap_or(&[])
    }

    /// The any-address rules that may decide a packet whose transport is unknown, in order.
    #[inline]
    pub fn unknown_transport(&self) -> &[RuleId] {
        let Some(&(start, end)) = self.spans.get(usize::from(self.unknown)) else { return &[] };
        self.members.get(start as usize..end as usize).unwrap_or(&[])
    }

    pub fn memory_bytes(&self) -> usize {
        (self.tcp.capacity() + self.udp.capacity()) * 2 + self.spans.capacity() * 8 + self.members.capacity() * 4
    }
}
