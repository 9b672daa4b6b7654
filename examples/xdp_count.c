/* XDP: parse Ethernet / IPv4 / UDP, count packets per IP protocol, rewrite headers.
 *
 * - non-IPv4 frames pass untouched (counted under key 0);
 * - IPv4 packets are counted per protocol in `proto_counts`; their TTL is decremented with
 *   an incremental header-checksum update (RFC 1624); a packet whose TTL is already <= 1 is
 *   dropped;
 * - UDP datagrams to the echo port (7) are bounced: MAC addresses, IP addresses and UDP ports
 *   swapped, XDP_TX returned.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define ECHO_PORT 7

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_counts SEC(".maps");

static __always_inline void count(__u32 proto)
{
	__u64 *v = bpf_map_lookup_elem(&proto_counts, &proto);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* RFC 1624: HC' = ~(~HC + ~m + m') for the 16-bit word holding the TTL. */
static __always_inline void decrement_ttl(struct iphdr *ip)
{
	__u32 sum = (__u16)~bpf_ntohs(ip->check);
	__u16 old = bpf_ntohs(*(__u16 *)&ip->ttl);

	ip->ttl--;
	sum += (__u16)~old;
	sum += bpf_ntohs(*(__u16 *)&ip->ttl);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = bpf_htons(~sum & 0xffff);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	unsigned char mac[ETH_ALEN];
	__be32 addr;
	__be16 port;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(0);
		return XDP_PASS;
	}
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5)
		return XDP_DROP;
	count(ip->protocol);
	if (ip->ttl <= 1)
		return XDP_DROP;
	decrement_ttl(ip);
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(ECHO_PORT))
		return XDP_PASS;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
