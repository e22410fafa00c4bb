//! Ethernet ports (`rte_ethdev`): physical NICs or virtual devices (net_ring, net_null,
//! net_pcap), and their RX/TX queues.
//!
//! [`Port::configure`] hands out one [`RxQueue`] and one [`TxQueue`] per queue, each to be
//! owned by exactly one lcore. DPDK forbids stopping, reconfiguring or closing a device
//! while an lcore polls its queues; here those operations require that no queue handle of
//! the port is alive (workers hand their queues back, or drop them, first), and the device
//! is closed when the port and all its queues are gone.

use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::eal::Live;
use super::error::{check, DpdkError, Result};
use super::mempool::Mempool;
use super::queue::{RxQueue, TxQueue};

const MAX_PORTS: usize = dpdk_sys::RTE_MAX_ETHPORTS as usize;

/// Port ids held by a `Port`: two handles closing one device would be a double free.
static CLAIMED: [AtomicBool; MAX_PORTS] = [const { AtomicBool::new(false) }; MAX_PORTS];

/// The symmetric Toeplitz key: with 0x6d5a repeated, swapping source and destination gives
/// the same hash, so both directions of a flow reach the same queue. Long enough for any
/// `hash_key_size`; a static because DPDK keeps the pointer (and only reads through it).
static SYMMETRIC_RSS_KEY: [u8; 256] = {
    let mut key = [0u8; 256];
    let mut i = 0;
    while i < key.len() {
        key[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    key
};

/// Queue and descriptor counts for [`Port::configure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// RX descriptors per queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// TX descriptors per queue (adjusted to the device's limits).
    pub tx_desc: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig { rx_queues: 1, tx_queues: 1, rx_desc: 1024, tx_desc: 1024 }
    }
}

/// What the device can do (`rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// RSS hash types supported (`flow_type_rss_offloads`); 0 = no RSS.
    pub rss_offloads: u64,
    pub hash_key_size: u8,
    pub reta_size: u16,
    /// NUMA socket of the device, or -1 when unknown.
    pub socket_id: i32,
}

/// Link status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    /// Mbit/s (0 when unknown; virtual devices report a nominal speed).
    pub speed_mbps: u32,
    pub full_duplex: bool,
    pub autoneg: bool,
}

/// Basic counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Packets dropped by the device because RX queues were full.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// RX buffer allocation failures.
    pub rx_nombuf: u64,
    /// Packets received per RX queue (the first 16 queues; drivers that keep no per-queue
    /// counters leave them 0).
    pub rx_queue_packets: [u64; 16],
}

/// An ethdev port.
#[derive(Debug)]
pub struct Port {
    shared: Arc<Shared>,
    configured: bool,
    /// Buffers the RX queue setup of the current configuration took from the pool (what a
    /// driver posts to its receive ring before the first packet).
    rx_setup_buffers: u32,
    /// The driver's name (`rte_eth_dev_info.driver_name`), read at configure.
    driver: String,
    /// TX queues of the current configuration.
    tx_queues: u16,
}

/// The driver of DPDK's AF_XDP ports.
pub const AF_XDP_DRIVER: &str = "net_af_xdp";

/// State shared by a port and its queues; the device is closed when the last one drops.
pub(super) struct Shared {
    pub(super) id: u16,
    name: String,
    /// Created by `probe_vdev`: also removed from the vdev bus on close, freeing the name.
    vdev: bool,
    started: AtomicBool,
    closed: AtomicBool,
    /// The RX pool of the current configuration, kept alive while the device may fill
    /// buffers from it.
    pool: Mutex<Option<Mempool>>,
    _live: Live,
}

impl Port {
    /// The port with this id.
    pub fn from_id(id: u16) -> Result<Port> {
        let live = Live::acquire()?;
        // SAFETY: EAL is running; any id value is accepted.
        if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::UnknownPort(format!("{id} ({} ports available)", Self::count())));
        }
        let name = port_name(id)?;
        Self::claim(id, name, false, live)
    }

    /// The port whose device has this name (e.g. `net_ring0`, `0000:01:00.0`).
    pub fn by_name(name: &str) -> Result<Port> {
        let live = Live::acquire()?;
        let id = port_id_by_name(name)?;
        Self::claim(id, name.to_owned(), false, live)
    }

    /// Creates virtual device `name` (its driver is the name without the trailing number,
    /// e.g. `net_ring0`, `net_null1`, `net_pcap2`) with driver arguments `args` (e.g.
    /// `rx_pcap=in.pcap,tx_pcap=out.pcap`), and returns its port. Names must be unique in
    /// the process; the name is freed again when the port is closed.
    pub fn probe_vdev(name: &str, args: &str) -> Result<Port> {
        let live = Live::acquire()?;
        let c_name = c_string(name)?;
        let c_args = c_string(args)?;
        // SAFETY: EAL is running; both strings are valid and copied by DPDK.
        let ret = unsafe { dpdk_sys::rte_vdev_init(c_name.as_ptr(), c_args.as_ptr()) };
        check_probe(&format!("rte_vdev_init({name}, {args:?})"), ret)?;
        match port_id_by_name(name) {
            Ok(id) => Self::claim(id, name.to_owned(), true, live),
            Err(e) => {
                // SAFETY: the device was just created by us; remove it again.
                unsafe { dpdk_sys::rte_vdev_uninit(c_name.as_ptr()) };
                Err(e)
            }
        }
    }

    /// Hot-plugs a device from a devargs string (`rte_dev_probe`), e.g.
    /// `0000:01:00.0` or `net_null0,size=64`, and returns its port.
    pub fn probe(devargs: &str) -> Result<Port> {
        let live = Live::acquire()?;
        let c_devargs = c_string(devargs)?;
        // SAFETY: EAL is running; DPDK copies the string.
        let ret = unsafe { dpdk_sys::rte_dev_probe(c_devargs.as_ptr()) };
        check_probe(&format!("rte_dev_probe({devargs})"), ret)?;
        let name = devargs.split(',').next().unwrap_or(devargs);
        let id = port_id_by_name(name)?;
        Self::claim(id, name.to_owned(), false, live)
    }

    fn claim(id: u16, name: String, vdev: bool, live: Live) -> Result<Port> {
        if CLAIMED[usize::from(id)].swap(true, Ordering::AcqRel) {
            return Err(DpdkError::InvalidState(format!("port {id} ({name}) is already held by another Port")));
        }
        Ok(Port {
            shared: Arc::new(Shared {
                id,
                name,
                vdev,
                started: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                pool: Mutex::new(None),
                _live: live,
            }),
            configured: false,
            rx_setup_buffers: 0,
            driver: String::new(),
            tx_queues: 0,
        })
    }

    /// Number of ports available in the process.
    pub fn count() -> u16 {
        // SAFETY: reads ethdev's port table; no preconditions.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.shared.id
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Device capabilities.
    pub fn info(&self) -> Result<PortInfo> {
        let raw = self.raw_info()?;
        // SAFETY: driver_name, when set, points to the driver's static name.
        let driver = unsafe { opt_cstr(raw.driver_name) };
        Ok(PortInfo {
            driver,
            max_rx_queues: raw.max_rx_queues,
            max_tx_queues: raw.max_tx_queues,
            rss_offloads: raw.flow_type_rss_offloads,
            hash_key_size: raw.hash_key_size,
            reta_size: raw.reta_size,
            // SAFETY: valid port id (held by self).
            socket_id: unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id()) },
        })
    }

    fn raw_info(&self) -> Result<dpdk_sys::rte_eth_dev_info> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: valid port id; `info` is a properly sized out-parameter.
        let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id(), &mut info) };
        check(&self.call("rte_eth_dev_info_get"), ret)?;
        Ok(info)
    }

    /// Configures queues, with RSS (symmetric key, IP/TCP/UDP hash) when the device
    /// supports it, and sets up each queue receiving into `pool`. The port must be stopped,
    /// with no queue handle of an earlier configuration alive.
    pub fn configure(&mut self, config: &PortConfig, pool: &Mempool) -> Result<(Vec<RxQueue>, Vec<TxQueue>)> {
        self.require_no_queues("reconfigure")?;
        if self.is_started() {
            return Err(DpdkError::InvalidState(format!(
                "port {} ({}) must be stopped before it is configured",
                self.id(),
                self.name()
            )));
        }
        let info = self.raw_info()?;
        for (dir, requested, max) in
            [("rx", config.rx_queues, info.max_rx_queues), ("tx", config.tx_queues, info.max_tx_queues)]
        {
            if requested == 0 {
                return Err(DpdkError::InvalidArgument(format!(
                    "port {} ({}): 0 {dir} queues requested",
                    self.id(),
                    self.name()
                )));
            }
            if requested > max {
                return Err(DpdkError::TooManyQueues {
                    port: self.id(),
                    name: self.name().to_owned(),
                    dir,
                    requested,
                    max,
                });
            }
        }

        let mut conf = dpdk_sys::rte_eth_conf::default();
        let wanted = dpdk_sys::DPDK_SYS_ETH_RSS_IP | dpdk_sys::DPDK_SYS_ETH_RSS_TCP | dpdk_sys::DPDK_SYS_ETH_RSS_UDP;
        let rss_hf = wanted & info.flow_type_rss_offloads;
        if rss_hf != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            // DPDK's pointer is not const, but drivers only copy the key from it.
            conf.rx_adv_conf.rss_conf.rss_key = SYMMETRIC_RSS_KEY.as_ptr().cast_mut();
            conf.rx_adv_conf.rss_conf.rss_key_len = if info.hash_key_size == 0 { 40 } else { info.hash_key_size };
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        self.configured = false;
        // SAFETY: valid, stopped port with no queue handles; conf is fully initialised and
        // the key it points to is a static at least as long as any hash_key_size.
        let ret = unsafe { dpdk_sys::rte_eth_dev_configure(self.id(), config.rx_queues, config.tx_queues, &conf) };
        check(&self.call("rte_eth_dev_configure"), ret)?;

        let (mut rx_desc, mut tx_desc) = (config.rx_desc, config.tx_desc);
        // SAFETY: valid port; both are in/out parameters.
        let ret = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id(), &mut rx_desc, &mut tx_desc) };
        check(&self.call("rte_eth_dev_adjust_nb_rx_tx_desc"), ret)?;
        // SAFETY: valid port id. -1 (unknown) becomes SOCKET_ID_ANY as an unsigned value.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id()) } as u32;
        // Nothing else takes buffers from the pool while a port is configured (no queue of
        // this port exists, and configuration comes before any lcore runs), so the change is
        // what the RX queue setup took.
        let in_use_before = pool.in_use();
        for q in 0..config.rx_queues {
            // SAFETY: configured port, queue id below the configured count; default rxconf;
            // the pool is kept alive by `Shared::pool` while the device exists.
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(self.id(), q, rx_desc, socket, std::ptr::null(), pool.as_ptr())
            };
            check(&self.call(&format!("rte_eth_rx_queue_setup(queue {q})")), ret)?;
        }
        for q in 0..config.tx_queues {
            // SAFETY: configured port, queue id below the configured count; default txconf.
            let ret = unsafe { dpdk_sys::rte_eth_tx_queue_setup(self.id(), q, tx_desc, socket, std::ptr::null()) };
            check(&self.call(&format!("rte_eth_tx_queue_setup(queue {q})")), ret)?;
        }
        *self.shared.pool.lock().unwrap_or_else(|e| e.into_inner()) = Some(pool.clone());
        self.rx_setup_buffers = pool.in_use().saturating_sub(in_use_before);
        // SAFETY: driver_name, when set, points to the driver's static name.
        self.driver = unsafe { opt_cstr(info.driver_name) };
        self.tx_queues = config.tx_queues;
        self.configured = true;

        let rx = (0..config.rx_queues).map(|queue| RxQueue::new(self.shared.clone(), queue)).collect();
        let tx = (0..config.tx_queues).map(|queue| TxQueue::new(self.shared.clone(), queue)).collect();
        Ok((rx, tx))
    }

    /// Starts the device (after `configure`).
    pub fn start(&mut self) -> Result<()> {
        if !self.configured {
            return Err(DpdkError::InvalidState(format!(
                "port {} ({}) must be configured before it is started",
                self.id(),
                self.name()
            )));
        }
        // SAFETY: valid, configured port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.id()) };
        check(&self.call("rte_eth_dev_start"), ret)?;
        self.shared.started.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops the device. No queue handle may be alive (DPDK forbids stopping a device an
    /// lcore polls). Drivers that write files (net_pcap) flush them here.
    pub fn stop(&mut self) -> Result<()> {
        self.require_no_queues("stop")?;
        // SAFETY: valid port, and nothing polls it (no queue handle exists).
        let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.id()) };
        check(&self.call("rte_eth_dev_stop"), ret)?;
        self.shared.started.store(false, Ordering::Release);
        Ok(())
    }

    /// Packet buffers this port's driver keeps after [`close`](Self::close) and never gives
    /// back to the pool: the AF_XDP fill rings, for `net_af_xdp` (DPDK 22.11).
    ///
    /// Its RX queue setup (`xsk_configure`) takes 2048 mbufs per queue from the pool and
    /// posts them to the socket's fill ring; every burst it receives takes as many fresh
    /// mbufs for the fill ring as it hands up (`af_xdp_rx_zc`), so the fill ring, the kernel
    /// and the RX ring hold exactly that many at any time. Its close (`eth_dev_close`)
    /// deletes the socket and the UMEM without freeing them. So this is the number its setup
    /// took, measured at [`configure`](Self::configure), not assumed; any other driver keeps
    /// none. (TX buffers waiting in the completion ring are another matter: see
    /// [`reclaim_tx`](Self::reclaim_tx).)
    pub fn kept_after_close(&self) -> u32 {
        if self.driver == AF_XDP_DRIVER {
            self.rx_setup_buffers
        } else {
            0
        }
    }

    /// The driver's name (empty before [`configure`](Self::configure)).
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// Asks the driver to free the transmitted buffers it still holds, on each TX queue. No
    /// queue handle may be alive. For `net_af_xdp` only: its TX path frees
    /// the buffers the kernel has completed (the completion ring) at the start of each
    /// burst, so the last burst's buffers wait there until the next one; a burst of no
    /// packet does only that (it implements no `tx_done_cleanup`). A no-op for other
    /// drivers, whose stop or close frees what they hold.
    pub fn reclaim_tx(&mut self) -> Result<()> {
        self.require_no_queues("reclaim TX buffers")?;
        if self.driver != AF_XDP_DRIVER || !self.configured {
            return Ok(());
        }
        for q in 0..self.tx_queues {
            // SAFETY: configured port, queue id below the configured count; no queue handle exists, so nothing else uses the queue; an empty
            // burst hands the driver no mbuf.
            unsafe { dpdk_sys::rte_eth_tx_burst(self.id(), q, std::ptr::null_mut(), 0) };
        }
        Ok(())
    }

    /// Whether `start` succeeded and `stop` was not called since.
    pub fn is_started(&self) -> bool {
        self.shared.started.load(Ordering::Acquire)
    }

    /// Stops and closes the device now (and removes it from the vdev bus when it was
    /// created by `probe_vdev`). Fails while queues of the port are still alive.
    pub fn close(self) -> Result<()> {
        self.require_no_queues("close")?;
        self.shared.close()
    }

    /// Fails while queue handles of this port exist (they may be polled right now).
    fn require_no_queues(&self, what: &str) -> Result<()> {
        // Queue handles are not Clone and only created under &mut self, so the count can
        // only go down concurrently: 1 means none exists and none can appear.
        let queues = Arc::strong_count(&self.shared) - 1;
        if queues == 0 {
            return Ok(());
        }
        Err(DpdkError::InvalidState(format!(
            "port {} ({}): cannot {what} while {queues} of its queues are in use",
            self.id(),
            self.name()
        )))
    }

    /// Link status, without waiting for autonegotiation.
    pub fn link(&self) -> Result<Link> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port; `link` is an out-parameter.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id(), &mut link) };
        check(&self.call("rte_eth_link_get_nowait"), ret)?;
        Ok(Link {
            up: u32::from(link.link_status()) == dpdk_sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: u32::from(link.link_duplex()) == dpdk_sys::RTE_ETH_LINK_FULL_DUPLEX,
            autoneg: u32::from(link.link_autoneg()) == dpdk_sys::RTE_ETH_LINK_AUTONEG,
        })
    }

    /// Basic counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port; `s` is an out-parameter.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.id(), &mut s) };
        check(&self.call("rte_eth_stats_get"), ret)?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            rx_queue_packets: s.q_ipackets,
        })
    }

    /// Resets basic and extended counters.
    pub fn reset_stats(&self) -> Result<()> {
        // SAFETY: valid port.
        let ret = unsafe { dpdk_sys::rte_eth_stats_reset(self.id()) };
        check(&self.call("rte_eth_stats_reset"), ret)?;
        // SAFETY: valid port.
        let ret = unsafe { dpdk_sys::rte_eth_xstats_reset(self.id()) };
        check(&self.call("rte_eth_xstats_reset"), ret).map(|_| ())
    }

    /// All extended counters, by name, in the driver's order.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        // SAFETY: valid port; a null array with size 0 asks for the count.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id(), std::ptr::null_mut(), 0) };
        let n = check(&self.call("rte_eth_xstats_get_names"), n)? as usize;
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); n];
        // SAFETY: `names` has room for n entries.
        let got = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id(), names.as_mut_ptr(), n as u32) };
        let got = check(&self.call("rte_eth_xstats_get_names"), got)? as usize;
        let mut values = vec![dpdk_sys::rte_eth_xstat::default(); got];
        // SAFETY: `values` has room for `got` entries.
        let ret = unsafe { dpdk_sys::rte_eth_xstats_get(self.id(), values.as_mut_ptr(), got as u32) };
        let ret = check(&self.call("rte_eth_xstats_get"), ret)? as usize;
        Ok(values[..ret.min(got)]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates xstat names within the array.
                let name = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                Some((name.to_string_lossy().into_owned(), v.value))
            })
            .collect())
    }

    /// One extended counter by name (e.g. `rx_good_packets`).
    pub fn xstat(&self, name: &str) -> Result<u64> {
        let c_name = c_string(name)?;
        let mut id = 0u64;
        // SAFETY: valid port and C string; `id` is an out-parameter.
        let ret = unsafe { dpdk_sys::rte_eth_xstats_get_id_by_name(self.id(), c_name.as_ptr(), &mut id) };
        check(&self.call(&format!("xstat {name:?}")), ret)?;
        let mut value = 0u64;
        // SAFETY: one id in, one value out.
        let ret = unsafe { dpdk_sys::rte_eth_xstats_get_by_id(self.id(), &id, &mut value, 1) };
        check(&self.call(&format!("xstat {name:?}")), ret)?;
        Ok(value)
    }

    /// The device's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port; `addr` is an out-parameter.
        let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id(), &mut addr) };
        check(&self.call("rte_eth_macaddr_get"), ret)?;
        Ok(addr.addr_bytes)
    }

    /// Enables or disables promiscuous mode.
    pub fn set_promiscuous(&self, on: bool) -> Result<()> {
        // SAFETY: valid port.
        let ret = unsafe {
            if on {
                dpdk_sys::rte_eth_promiscuous_enable(self.id())
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(self.id())
            }
        };
        check(&self.call("rte_eth_promiscuous_enable/disable"), ret).map(|_| ())
    }

    /// `"<call> on port <id> (<name>)"` for error messages.
    fn call(&self, what: &str) -> String {
        format!("{what} on port {} ({})", self.id(), self.name())
    }
}

impl Shared {
    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // SAFETY: valid port; no queue handle is left (we are the last owner, or `close`
        // checked), so nothing polls the device while it stops and closes.
        let ret = unsafe {
            if self.started.swap(false, Ordering::AcqRel) {
                dpdk_sys::rte_eth_dev_stop(self.id);
            }
            dpdk_sys::rte_eth_dev_close(self.id)
        };
        let result = check(&format!("rte_eth_dev_close on port {} ({})", self.id, self.name), ret);
        if self.vdev {
            if let Ok(c_name) = CString::new(self.name.as_str()) {
                // SAFETY: the device was created by rte_vdev_init under this name.
                unsafe { dpdk_sys::rte_vdev_uninit(c_name.as_ptr()) };
            }
        }
        CLAIMED[usize::from(self.id)].store(false, Ordering::Release);
        result.map(|_| ())
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "port {} ({})", self.id, self.name)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Device probes return the driver's status: a negative errno, or a bare -1 after the
/// driver logged its reason (which is not EPERM, whatever errno 1 says).
fn check_probe(call: &str, ret: i32) -> Result<()> {
    match ret {
        0.. => Ok(()),
        -1 => Err(DpdkError::Call {
            call: call.to_owned(),
            errno: 1,
            message: "the driver rejected the device (its reason is in the DPDK log)".into(),
        }),
        _ => check(call, ret).map(|_| ()),
    }
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| DpdkError::InvalidArgument(format!("{s:?} contains a NUL byte")))
}

fn port_id_by_name(name: &str) -> Result<u16> {
    let c_name = c_string(name)?;
    let mut id = 0u16;
    // SAFETY: valid C string; `id` is an out-parameter.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
    if ret < 0 {
        return Err(DpdkError::UnknownPort(name.to_owned()));
    }
    Ok(id)
}

fn port_name(id: u16) -> Result<String> {
    let mut buf = [0 as c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: valid port id; the buffer has RTE_ETH_NAME_MAX_LEN bytes as DPDK requires.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    check(&format!("rte_eth_dev_get_name_by_port({id})"), ret)?;
    // SAFETY: DPDK NUL-terminated the name within the buffer.
    Ok(unsafe { opt_cstr(buf.as_ptr()) })
}

/// A C string as an owned `String` ("" for null).
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string.
unsafe fn opt_cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated (caller).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
