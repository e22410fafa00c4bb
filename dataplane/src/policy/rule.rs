//! The validated rule model: what a `NetworkPolicyRule` means once it has been checked.

use ipnet::IpNet;
use std::fmt;
use std::sync::Arc;

/// The verdict a rule (or the default) gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Action {
    /// Drop and Reject sort before Allow: at equal priority a rule that stops the packet is
    /// evaluated first. The values make [`Action::denies`] one bit (the workers count the
    /// drops of every packet with it).
    Drop = 1,
    /// Dropped, and the sender told: a TCP RST, or an ICMP/ICMPv6 administratively
    /// prohibited (`pipeline::reject`).
    Reject = 3,
    #[default]
    Allow = 4,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Drop => "DROP",
            Action::Reject => "REJECT",
        }
    }

    /// Whether the packet is stopped (DROP or REJECT): everything but ALLOW.
    #[inline(always)]
    pub fn denies(self) -> bool {
        self as u8 & 1 != 0
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "ALLOW" => Some(Action::Allow),
            "DROP" => Some(Action::Drop),
            "REJECT" => Some(Action::Reject),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end of a connection the rule's addresses are matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// The connection's source (initiator).
    Ingress,
    /// The connection's destination (responder).
    Egress,
    /// Either end.
    #[default]
    Any,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
            Direction::Any => "any",
        }
    }

    pub fn matches_source(self) -> bool {
        matches!(self, Direction::Ingress | Direction::Any)
    }

    pub fn matches_destination(self) -> bool {
        matches!(self, Direction::Egress | Direction::Any)
    }
}

/// A destination port range of one transport protocol, inclusive at both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// IP protocol number (TCP 6 or UDP 17).
    pub protocol: u8,
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(&self, protocol: u8, port: u16) -> bool {
        self.protocol == protocol && self.first <= port && port <= self.last
    }
}

/// The `spec.tls` predicates of a rule; all present ones must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsMatch {
    /// Exact names and `*.suffix` wildcards, lowercase, without a trailing dot. Empty: any.
    pub server_names: Vec<String>,
    /// Matches hellos whose highest offered version is below this (wire value, e.g. 0x0303).
    pub version_below: Option<u16>,
    /// JA3 fingerprints (MD5, 32 lowercase hex digits). Empty: any.
    pub ja3: Vec<String>,
    /// JA4 fingerprints (`t13d1516h2_8daaf6152771_02713d6af862`). Empty: any.
    pub ja4: Vec<String>,
}

/// `spec.limit`: new connections per source address (an IPv6 source by its /64) that the rule
/// lets through to the rules after it; the connections over it get the rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionLimit {
    /// Tokens a source's bucket earns per second.
    pub per_second: u32,
    /// The bucket's size: connections a quiet source may open at once.
    pub burst: u32,
}

/// Most rules of a set that may have a limit (each new connection is checked against each).
pub const MAX_LIMIT_RULES: usize = 64;
/// Bounds of `spec.limit.connectionsPerSecond` and `spec.limit.burst`.
pub const MAX_LIMIT_RATE: u32 = 1_000_000;
pub const MAX_LIMIT_BURST: u32 = 1_000_000;

/// One validated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub reason: String,
    pub priority: u16,
    pub direction: Direction,
    /// Empty means any address (of either family).
    pub cidr_blocks: Vec<IpNet>,
    /// Each lies inside one of `cidr_blocks`; addresses in them do not match.
    pub except: Vec<IpNet>,
    /// Empty means any protocol and port.
    pub ports: Vec<PortRange>,
    /// TLS ClientHello predicates; `Some` makes the rule match TLS connections only.
    pub tls: Option<TlsMatch>,
    /// `Some`: the rule applies only to new connections whose source is over this limit; the
    /// others fall through to the next rules (`pipeline::limits`).
    pub limit: Option<ConnectionLimit>,
    /// Where the rule came from (file name, "api"...), for messages.
    pub source: String,
}

impl Rule {
    /// The evaluation order: (priority, DROP, REJECT, then ALLOW, name).
    pub fn precedence_key(&self) -> (u16, Action, &str) {
        (self.priority, self.action, &self.name)
    }

    /// Whether the address predicate holds for one address (ignoring direction).
    pub fn contains_address(&self, addr: std::net::IpAddr) -> bool {
        (self.cidr_blocks.is_empty() || self.cidr_blocks.iter().any(|n| n.contains(&addr)))
            && !self.except.iter().any(|n| n.contains(&addr))
    }

    /// Whether the transport predicate holds. `dst_port` is `None` when the packet has no ports
    /// (non-first fragments, ICMP...): then only rules without `ports` match.
    pub fn matches_transport(&self, protocol: u8, dst_port: Option<u16>) -> bool {
        if self.ports.is_empty() {
            return true;
        }
        match dst_port {
            Some(port) => self.ports.iter().any(|r| r.contains(protocol, port)),
            None => false,
        }
    }
}

/// A validated rule set, sorted in evaluation order. Rules are shared (`Arc`): a changed set
/// (an upsert, a delete) copies pointers, not rules, and the control plane can tell unchanged
/// rules by pointer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// Shared as a whole too: the control plane and the compiled policy hold the same set
    /// without copying (and counting) 100k pointers.
    rules: Arc<[Arc<Rule>]>,
}

/// A name's first eight bytes, zero-padded, as a big-endian integer: integers compare as the
/// names' prefixes do (a shorter name that is a prefix of another sorts first, or ties and the
/// names themselves decide).
fn name_prefix(name: &str) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, n) in bytes.iter_mut().zip(name.bytes()) {
        *b = n;
    }
    u64::from_be_bytes(bytes)
}

/// Evaluation order; total because names are unique within a set.
fn precedence(a: &Arc<Rule>, b: &Arc<Rule>) -> std::cmp::Ordering {
    a.precedence_key().cmp(&b.precedence_key())
}

impl RuleSet {
    /// Sorts the rules into evaluation order. Names must already be unique (validation).
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        RuleSet::from_shared(rules.into_iter().map(Arc::new).collect())
    }

    /// [`RuleSet::new`] for rules already shared.
    pub fn from_shared(rules: Vec<Arc<Rule>>) -> RuleSet {
        // Sorting flat keys touches each rule once, where comparing through the pointers
        // missed the cache on every comparison. Priority, action and the name's first eight
        // bytes are integers, so only names sharing those compare as strings.
        let mut order: Vec<(u32, u64, &str, usize)> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let rank = (u32::from(r.priority) << 8) | r.action as u32;
                (rank, name_prefix(&r.name), r.name.as_str(), i)
            })
            .collect();
        order.sort_unstable();
        let order: Vec<usize> = order.into_iter().map(|(.., i)| i).collect();
        let mut slots: Vec<Option<Arc<Rule>>> = rules.into_iter().map(Some).collect();
        let rules: Vec<Arc<Rule>> = order.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect();
        RuleSet { rules: rules.into() }
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// This set with `new` rules added or replacing those of the same name. The names in `new`
    /// must be unique (validation). The other rules are shared with `self`.
    pub fn upserted(&self, new: Vec<Rule>) -> RuleSet {
        let mut rules: Vec<Arc<Rule>> = if new.len() <= 4 {
            // Comparing a few names beats hashing every name of the set.
            self.rules.iter().filter(|r| !new.iter().any(|n| n.name == r.name)).cloned().collect()
        } else {
            let names: std::collections::HashSet<&str> = new.iter().map(|r| r.name.as_str()).collect();
            self.rules.iter().filter(|r| !names.contains(r.name.as_str())).cloned().collect()
        };
        // A few rules go in by binary search (the set stays sorted); many by one sort.
        if new.len() <= 16 {
            for rule in new {
                let rule = Arc::new(rule);
                let at = rules.partition_point(|r| precedence(r, &rule).is_lt());
                rules.insert(at, rule);
            }
        } else {
            rules.extend(new.into_iter().map(Arc::new));
            rules.sort_unstable_by(precedence);
        }
        RuleSet { rules: rules.into() }
    }

    /// This set without the rule `name`; `None` when there is no such rule.
    pub fn without(&self, name: &str) -> Option<RuleSet> {
        self.without_all(&[name])
    }

    /// This set without the rules `names`; `None` when one of them is not in the set (or is
    /// named twice). The other rules are shared with `self` and keep their order.
    pub fn without_all(&self, names: &[&str]) -> Option<RuleSet> {
        let gone: std::collections::HashSet<&str> = names.iter().copied().collect();
        let rules: Vec<Arc<Rule>> = self.rules.iter().filter(|r| !gone.contains(r.name.as_str())).cloned().collect();
        (gone.len() == names.len() && rules.len() + names.len() == self.rules.len())
            .then(|| RuleSet { rules: rules.into() })
    }
}
