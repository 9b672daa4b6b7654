// SPDX-License-Identifier: GPL-2.0
/* Packet programs as people write them: XDP with `const volatile` configuration in .rodata
 * (set through the skeleton before load), string literals clang places in .rodata.str1.1,
 * bpf_printk formats, a devmap for redirects, TC via SEC("tc") and SEC("tcx/ingress"), and
 * a fragment-aware XDP program. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char _license[] SEC("license") = "GPL";

const volatile __u32 ifindex_out = 0;
const volatile __u8 drop_udp = 1;
const volatile __u16 blocked_port = 53;
const volatile unsigned char src_mac[ETH_ALEN] = {0x02, 0, 0, 0, 0, 1};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, struct datarec { __u64 packets; __u64 bytes; });
} xdp_stats SEC(".maps");

static const char *const verdict_names[] = {"aborted", "drop", "pass", "tx", "redirect"};

static __always_inline int record(struct xdp_md *ctx, __u32 action)
{
	struct datarec *rec = bpf_map_lookup_elem(&xdp_stats, &action);

	if (!rec)
		return XDP_ABORTED;
	rec->packets++;
	rec->bytes += ctx->data_end - ctx->data;
	return action;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct iphdr *iph;

	if ((void *)(eth + 1) > data_end)
		return record(ctx, XDP_DROP);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return record(ctx, XDP_PASS);
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return record(ctx, XDP_DROP);
	if (drop_udp && iph->protocol == IPPROTO_UDP) {
		bpf_printk("dropping udp from %pI4", &iph->saddr);
		return record(ctx, XDP_DROP);
	}
	if (ifindex_out) {
		__builtin_memcpy(eth->h_source, (const void *)src_mac, ETH_ALEN);
		return bpf_redirect_map(&tx_ports, 0, XDP_PASS);
	}
	return record(ctx, XDP_PASS);
}

SEC("xdp.frags")
int xdp_frags_len(struct xdp_md *ctx)
{
	__u64 len = bpf_xdp_get_buff_len(ctx);

	return len > 1500 ? XDP_DROP : XDP_PASS;
}

SEC("xdp/devmap")
int xdp_devmap_egress(struct xdp_md *ctx)
{
	return XDP_PASS;
}

static __noinline void log_verdict(int verdict, __u32 len)
{
	const char *name = verdict_names[verdict == TC_ACT_SHOT ? 1 : 2];

	bpf_trace_printk("tc: %s len=%u\n", sizeof("tc: %s len=%u\n"), name, len);
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct ethhdr *eth = data;
	int verdict = TC_ACT_OK;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP) && skb->len > 9000)
		verdict = TC_ACT_SHOT;
	log_verdict(verdict, skb->len);
	return verdict;
}

SEC("tcx/ingress")
int tcx_mark(struct __sk_buff *skb)
{
	skb->mark = blocked_port;
	return -1; /* TCX_NEXT */
}

SEC("tc/egress")
int tc_egress_len(struct __sk_buff *skb)
{
	log_verdict(TC_ACT_OK, skb->len);
	return 0; /* TCX_PASS */
}
