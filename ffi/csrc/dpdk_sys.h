/*
 * The DPDK surface the dataplane uses. bindgen reads this header (with the pkg-config cflags,
 * including `-include rte_config.h`); the allowlist in build.rs narrows it further.
 */
#ifndef DPDK_SYS_H
#define DPDK_SYS_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_ring.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_fib.h>
#include <rte_fib6.h>

/*
 * Hand-written helpers (dpdk_sys_helpers.c) for what bindgen cannot wrap: macros, and a
 * per-thread variable. They are thin calls into DPDK's own macros, nothing re-implemented.
 */

/* `rte_errno` is a macro over a per-lcore (thread-local) variable. */
int dpdk_sys_errno(void);

/* `rte_pktmbuf_mtod(m, void *)`: start of the packet data in the first segment. */
void *dpdk_sys_pktmbuf_mtod(struct rte_mbuf *m);

/* `rte_pktmbuf_data_len(m)`: bytes of data in the first segment. */
uint16_t dpdk_sys_pktmbuf_data_len(const struct rte_mbuf *m);

/* `rte_pktmbuf_pkt_len(m)`: bytes of data in the whole chain. */
uint32_t dpdk_sys_pktmbuf_pkt_len(const struct rte_mbuf *m);

/* Number of segments of the chain starting at `m`. */
uint16_t dpdk_sys_pktmbuf_nb_segs(const struct rte_mbuf *m);

/* The data pointer and first-segment length in one call (the fast path needs both). */
void *dpdk_sys_pktmbuf_data(struct rte_mbuf *m, uint16_t *len);

/* `RTE_MAX_LCORE` and `RTE_MAX_ETHPORTS` as compiled into this DPDK. */
unsigned int dpdk_sys_max_lcore(void);
unsigned int dpdk_sys_max_ethports(void);

#endif
