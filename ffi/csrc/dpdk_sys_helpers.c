/* Functions for DPDK macros bindgen cannot turn into bindings. See dpdk_sys.h. */
#include "dpdk_sys.h"

int dpdk_sys_errno(void)
{
	return rte_errno;
}

void *dpdk_sys_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

uint16_t dpdk_sys_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t dpdk_sys_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

uint16_t dpdk_sys_pktmbuf_nb_segs(const struct rte_mbuf *m)
{
	return m->nb_segs;
}

void *dpdk_sys_pktmbuf_data(struct rte_mbuf *m, uint16_t *len)
{
	*len = rte_pktmbuf_data_len(m);
	return rte_pktmbuf_mtod(m, void *);
}

unsigned int dpdk_sys_max_lcore(void)
{
	return RTE_MAX_LCORE;
}

unsigned int dpdk_sys_max_ethports(void)
{
	return RTE_MAX_ETHPORTS;
}
