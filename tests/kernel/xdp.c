/* Kernel-golden corpus: XDP packet parsing and rewriting, bpf_xdp_adjust_head,
 * bpf_xdp_adjust_tail (grow and shrink) and bpf_csum_diff. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 slot, __u64 bytes)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		__sync_fetch_and_add(v, bytes);
}

static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* IPv4/UDP reflector: swaps MACs, addresses and ports, decrements the TTL with an
 * incremental checksum update, and answers XDP_TX; non-UDP IPv4 passes, the rest drops. */
SEC("xdp")
int reflect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u8 mac[ETH_ALEN];
	__u32 addr, csum;
	__u16 port, old;

	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(3, 1);
		return XDP_DROP;
	}
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl < 5)
		return XDP_ABORTED;
	if (ip->protocol != IPPROTO_UDP) {
		count(1, end - data);
		return XDP_PASS;
	}
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return XDP_ABORTED;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	old = *(__u16 *)&ip->ttl;
	ip->ttl--;
	csum = (__u16)~ip->check + (__u16)~old + *(__u16 *)&ip->ttl;
	ip->check = fold(csum);
	count(0, end - data);
	return XDP_TX;
}

/* Byte 0 selects the operation, byte 1 its size: 0 = push an outer header of byte-1
 * bytes (filled with 0xc0 | i), 1 = pop byte-1 bytes, 2 = grow the tail by byte 1
 * (new bytes marked 0x7e where written), 3 = shrink the tail by byte 1. Returns the
 * helper's result + 1000 on failure, else the new length. */
SEC("xdp")
int resize(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	__u8 op, n;
	long rc;

	if ((void *)(p + 2) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	op = p[0];
	n = p[1];
	switch (op) {
	case 0:
		rc = bpf_xdp_adjust_head(ctx, -(int)n);
		break;
	case 1:
		rc = bpf_xdp_adjust_head(ctx, n);
		break;
	case 2:
		rc = bpf_xdp_adjust_tail(ctx, n);
		break;
	default:
		rc = bpf_xdp_adjust_tail(ctx, -(int)n);
	}
	if (rc)
		return 1000 - rc;
	p = (void *)(long)ctx->data;
	if (op == 0) {
		for (int i = 0; i < 32; i++) {
			if (i >= n || (void *)(p + i + 1) > (void *)(long)ctx->data_end)
				break;
			p[i] = 0xc0 | i;
		}
	}
	if (op == 2) {
		void *end = (void *)(long)ctx->data_end;
		long len = end - (void *)p;
		__u32 last;

		barrier_var(len);
		last = (len - 1) & 0xfff;

		if ((void *)(p + last + 1) <= end)
			p[last] = 0x7e;
	}
	return ctx->data_end - ctx->data;
}

/* Encapsulation: prepends a copy of the Ethernet header and a 4-byte tag after it. */
SEC("xdp")
int encap(struct xdp_md *ctx)
{
	void *data, *end;
	struct ethhdr *outer, *inner;

	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct ethhdr) + 4)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	outer = data;
	inner = data + sizeof(struct ethhdr) + 4;
	if ((void *)(inner + 1) > end)
		return XDP_ABORTED;
	__builtin_memcpy(outer, inner, sizeof(*outer));
	outer->h_proto = bpf_htons(0x88b5);
	*(__u32 *)(data + sizeof(struct ethhdr)) = bpf_htonl(0xdecafbad);
	return XDP_TX;
}

/* bpf_csum_diff over the first 8 and next 8 bytes (seeded by bytes 16..19); the three
 * results land at bytes 20.., and the packet's own fold at 32. */
SEC("xdp")
int csum(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	__s64 a, b, c;
	__u32 seed;

	if ((void *)(p + 40) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	__builtin_memcpy(&seed, p + 16, 4);
	a = bpf_csum_diff(0, 0, (__be32 *)p, 8, seed);
	b = bpf_csum_diff((__be32 *)p, 8, (__be32 *)(p + 8), 8, seed);
	c = bpf_csum_diff((__be32 *)(p + 8), 8, 0, 0, 0);
	__builtin_memcpy(p + 20, &a, 4);
	__builtin_memcpy(p + 24, &b, 4);
	__builtin_memcpy(p + 28, &c, 4);
	*(__u16 *)(p + 32) = fold(a);
	return (a ^ b ^ c) & 0xffff;
}
