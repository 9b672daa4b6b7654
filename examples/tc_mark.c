/* tc (sched_cls): read __sk_buff fields and write the writable ones.
 *
 * IPv4 frames get skb->mark = skb->len, skb->priority = the IP TOS byte and cb[0] = the
 * protocol field as the program sees it (network byte order), and are accepted (TC_ACT_OK);
 * anything else is dropped (TC_ACT_SHOT). Frames to a group MAC (pkt_type MULTICAST; under
 * BPF_PROG_TEST_RUN that includes all-ones, as lo has no broadcast address) get cb[1] = 1.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_mark(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_SHOT;
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;
	skb->mark = skb->len;
	skb->priority = ip->tos;
	skb->cb[0] = skb->protocol;
	if (skb->pkt_type == PACKET_MULTICAST)
		skb->cb[1] = 1;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
