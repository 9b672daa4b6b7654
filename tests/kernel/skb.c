/* Kernel-golden corpus: socket filter and tc (sched_cls) programs reading and writing
 * __sk_buff fields, skb_load_bytes / skb_store_bytes, LD_ABS / LD_IND and the l3/l4
 * checksum helpers. */
#include <stddef.h>
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* What each program saw, one u32 per field, in the order of the stores below. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 24);
	__type(key, __u32);
	__type(value, __u32);
} seen SEC(".maps");

static __always_inline void note(__u32 slot, __u32 value)
{
	bpf_map_update_elem(&seen, &slot, &value, BPF_ANY);
}

SEC("socket")
int sf_fields(struct __sk_buff *skb)
{
	__u32 sum = 0;

	note(0, skb->len);
	note(1, skb->protocol);
	note(2, skb->pkt_type);
	note(3, skb->mark);
	note(4, skb->priority);
	note(5, skb->ifindex);
	note(6, skb->ingress_ifindex);
	note(7, skb->queue_mapping);
	note(8, skb->vlan_present);
	note(9, skb->hash);
	for (int i = 0; i < 5; i++) {
		note(10 + i, skb->cb[i]);
		sum += skb->cb[i];
	}
	note(15, skb->napi_id);
	note(16, skb->gso_segs);
	skb->cb[0] = skb->len;
	skb->cb[1] = sum;
	skb->cb[4] = 0xfeedf00d;
	return skb->len > 20 ? 20 : skb->len;
}

/* bpf_skb_load_bytes (socket filters see the packet from the network header) and the
 * legacy LD_ABS / LD_IND loads. */
SEC("socket")
int sf_load(struct __sk_buff *skb)
{
	__u8 buf[8] = {};
	long rc;

	rc = bpf_skb_load_bytes(skb, 0, buf, 8);
	note(0, rc);
	note(1, buf[0] | buf[1] << 8 | buf[2] << 16 | buf[3] << 24);
	note(2, buf[4] | buf[5] << 8 | buf[6] << 16 | buf[7] << 24);
	rc = bpf_skb_load_bytes(skb, skb->len - 2, buf, 4);
	note(3, rc);
	rc = bpf_skb_load_bytes(skb, skb->len - 4, buf, 4);
	note(4, rc);
	note(5, buf[0] | buf[1] << 8 | buf[2] << 16 | buf[3] << 24);
	note(6, load_byte(skb, 9));
	note(7, load_half(skb, 2));
	note(8, load_word(skb, 12));
	note(9, load_byte(skb, (load_byte(skb, 0) & 0xf) << 2));
	return load_word(skb, 16);
}

SEC("tc")
int tc_fields(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;

	note(0, skb->len);
	note(1, skb->protocol);
	note(2, skb->pkt_type);
	note(3, skb->mark);
	note(4, skb->priority);
	note(5, skb->ifindex);
	note(6, skb->tc_index);
	note(7, skb->cb[0]);
	note(8, skb->cb[2]);
	note(9, end - data);
	note(10, skb->tc_classid);
	note(11, skb->ingress_ifindex);
	note(12, skb->data_meta == skb->data);
	note(13, skb->wire_len);
	skb->mark = skb->mark * 2 + 1;
	skb->priority = 0x10005;
	skb->tc_index = 0x42;
	skb->tc_classid = 0x10002;
	skb->cb[0] = skb->len;
	skb->cb[3] = 0xabcdef01;
	if (data + 1 <= end)
		*(__u8 *)data ^= 0xff;
	return skb->cb[2] ? TC_ACT_SHOT : TC_ACT_OK;
}

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_DST_OFF (IP_OFF + offsetof(struct iphdr, daddr))
#define UDP_CSUM_OFF (IP_OFF + sizeof(struct iphdr) + offsetof(struct udphdr, check))
#define UDP_DPORT_OFF (IP_OFF + sizeof(struct iphdr) + offsetof(struct udphdr, dest))

/* DNAT of an IPv4/UDP packet: new destination address and port with skb_store_bytes and
 * the l3/l4 checksum fix-ups; the TTL rewritten by direct packet access. */
SEC("tc")
int tc_nat(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 old_ip, new_ip = bpf_htonl(0x0a000063);
	__u16 old_port, new_port = bpf_htons(5353);
	long rc;

	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_UNSPEC;
	old_ip = ip->daddr;
	if (bpf_skb_load_bytes(skb, UDP_DPORT_OFF, &old_port, 2))
		return TC_ACT_SHOT;
	rc = bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_ip, new_ip, BPF_F_PSEUDO_HDR | 4);
	rc |= bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_port, new_port, 2);
	rc |= bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ip, new_ip, 4);
	rc |= bpf_skb_store_bytes(skb, IP_DST_OFF, &new_ip, 4, 0);
	rc |= bpf_skb_store_bytes(skb, UDP_DPORT_OFF, &new_port, 2, 0);
	if (rc)
		return 1000 - rc;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > end)
		return TC_ACT_SHOT;
	note(0, ip->daddr);
	note(1, ip->check);
	skb->mark = 0x4e4154;
	return TC_ACT_OK;
}

/* skb_store_bytes with BPF_F_RECOMPUTE_CSUM and a failing out-of-range store; and a
 * load/store round trip through the stack. */
SEC("tc")
int tc_store(struct __sk_buff *skb)
{
	__u8 buf[6];
	long r0, r1, r2;

	r0 = bpf_skb_load_bytes(skb, 0, buf, 6);
	r1 = bpf_skb_store_bytes(skb, 6, buf, 6, BPF_F_RECOMPUTE_CSUM);
	r2 = bpf_skb_store_bytes(skb, skb->len - 3, buf, 6, 0);
	note(0, r0);
	note(1, r1);
	note(2, r2);
	return skb->len;
}
