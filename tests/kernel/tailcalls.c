/* Kernel-golden corpus: tail calls through a prog array (declared and filled by the
 * loader, and filled from userspace) and the tail-call limit. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u32 hops;

int tail_a(struct xdp_md *ctx);
int tail_b(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int(struct xdp_md *));
} jumps SEC(".maps") = {
	.values = { [0] = (void *)&tail_a, [2] = (void *)&tail_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} loop_jumps SEC(".maps");

static __always_inline __u8 *first_byte(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;

	if ((void *)(p + 2) > (void *)(long)ctx->data_end)
		return 0;
	return p;
}

/* Byte 0 picks the slot; falls through (returns 100 + slot) when the slot is empty. */
SEC("xdp")
int entry(struct xdp_md *ctx)
{
	__u8 *p = first_byte(ctx);

	if (!p)
		return XDP_ABORTED;
	hops = 1;
	p[1] = 0xee;
	bpf_tail_call(ctx, &jumps, p[0]);
	return 100 + p[0];
}

SEC("xdp")
int tail_a(struct xdp_md *ctx)
{
	__u8 *p = first_byte(ctx);

	if (!p)
		return XDP_ABORTED;
	hops++;
	p[1] = 0xaa;
	p[0] = 2;
	bpf_tail_call(ctx, &jumps, 2);
	return 50;
}

SEC("xdp")
int tail_b(struct xdp_md *ctx)
{
	__u8 *p = first_byte(ctx);

	if (!p)
		return XDP_ABORTED;
	hops++;
	p[1] += 1;
	return XDP_TX;
}

/* Tail-calls itself through loop_jumps[0] (filled from userspace) until the kernel's
 * limit stops it; returns the number of hops. */
SEC("xdp")
int self_loop(struct xdp_md *ctx)
{
	hops++;
	bpf_tail_call(ctx, &loop_jumps, 0);
	return hops;
}
