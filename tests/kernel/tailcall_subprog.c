/* Kernel-golden corpus: tail calls made inside bpf-to-bpf subprograms (static and global).
 * A successful one replaces the subprogram's frame: the target's r0 comes back to the
 * subprogram's call site and the caller continues with its registers and stack intact; a
 * failed one (empty slot) lets the subprogram continue. The tail-call limit is counted
 * across the whole run, subprograms included. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u32 hops;
__u32 after;
/* Read, never written, so the compiler cannot fold a subprogram's fallback result into its
 * callers (it would, since it does not know that a tail call never returns). */
__u32 fallback = 7;

int target_a(struct xdp_md *ctx);
int chain_b(struct xdp_md *ctx);
int nested_c(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int(struct xdp_md *));
} jumps SEC(".maps") = {
	.values = { [0] = (void *)&target_a, [2] = (void *)&chain_b, [3] = (void *)&nested_c },
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
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

/* Returns 7 only when the tail call fails. */
static __noinline int static_jump(struct xdp_md *ctx, __u32 slot)
{
	bpf_tail_call(ctx, &jumps, slot);
	return fallback;
}

/* Returns 9 only when the tail call fails. */
__noinline int global_jump(struct xdp_md *ctx, __u32 slot)
{
	bpf_tail_call(ctx, &jumps, slot);
	return fallback + 2;
}

/* Slot 0: writes byte 1 and returns 40. */
SEC("xdp")
int target_a(struct xdp_md *ctx)
{
	__u8 *p = first_byte(ctx);

	if (!p)
		return XDP_ABORTED;
	hops++;
	p[1] = 0xaa;
	return 40;
}

/* Slot 2: a main-level tail call onward to slot 0. */
SEC("xdp")
int chain_b(struct xdp_md *ctx)
{
	hops++;
	bpf_tail_call(ctx, &jumps, 0);
	return 55;
}

/* Slot 3: calls a subprogram that tail-calls slot 0, and uses the result. */
SEC("xdp")
int nested_c(struct xdp_md *ctx)
{
	hops++;
	return static_jump(ctx, 0) + 3;
}

/* Byte 0 picks the slot, byte 1 the subprogram (0 static, else global). Returns
 * 1000 * subprogram result + slot + 100 * byte 1 as seen after the call, plus 500000 if
 * the caller's stack or callee-saved registers changed. */
SEC("xdp")
int sub_entry(struct xdp_md *ctx)
{
	volatile __u32 keep;
	__u8 *p = first_byte(ctx);
	__u32 slot, which;
	int r, bad;

	if (!p)
		return XDP_ABORTED;
	slot = p[0];
	which = p[1];
	keep = 0x1234 + slot;
	hops = 0;
	after = 0;
	r = which ? global_jump(ctx, slot) : static_jump(ctx, slot);
	after = 1;
	bad = keep != 0x1234 + slot;
	p = first_byte(ctx);
	if (!p)
		return XDP_ABORTED;
	return r * 1000 + slot + 100 * p[1] + (bad ? 500000 : 0);
}

static __noinline int loop_jump(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &loop_jumps, 0);
	return fallback + 993;
}

/* Tail-calls itself (loop_jumps[0], filled from userspace) from a subprogram until the
 * limit stops it; every level adds one to what its subprogram returned. */
SEC("xdp")
int sub_loop(struct xdp_md *ctx)
{
	hops++;
	return loop_jump(ctx) + 1;
}

/* A main-level tail call into sub_loop: the count starts one higher. */
SEC("xdp")
int main_then_sub(struct xdp_md *ctx)
{
	hops = 100;
	bpf_tail_call(ctx, &loop_jumps, 0);
	return 77;
}
