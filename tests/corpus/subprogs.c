// SPDX-License-Identifier: GPL-2.0
/* Subprograms: a parser split into many small noinline functions (> 20 bpf-to-bpf calls),
 * global (verified independently) and static functions, functions shared by several
 * programs, functions called from other functions, bpf_loop and bpf_for_each_map_elem
 * callbacks, and a tail-call program array initialised with program references. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct ctx_state {
	__u64 acc;
	__u32 steps;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

#define STEP(n)                                                        \
	static __noinline __u64 step_##n(__u64 x)                      \
	{                                                              \
		return (x * (n + 3)) ^ (x >> (n % 7 + 1));            \
	}

STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
STEP(8) STEP(9) STEP(10) STEP(11) STEP(12) STEP(13) STEP(14) STEP(15)
STEP(16) STEP(17) STEP(18) STEP(19) STEP(20) STEP(21) STEP(22) STEP(23)

static __noinline __u64 mix_all(__u64 x)
{
	x = step_0(x); x = step_1(x); x = step_2(x); x = step_3(x);
	x = step_4(x); x = step_5(x); x = step_6(x); x = step_7(x);
	x = step_8(x); x = step_9(x); x = step_10(x); x = step_11(x);
	x = step_12(x); x = step_13(x); x = step_14(x); x = step_15(x);
	x = step_16(x); x = step_17(x); x = step_18(x); x = step_19(x);
	x = step_20(x); x = step_21(x); x = step_22(x); x = step_23(x);
	return x;
}

__noinline int global_len_ok(struct __sk_buff *skb)
{
	if (!skb)
		return 0;
	return skb->len > 14;
}

__noinline __u64 global_checksum(__u64 seed)
{
	return step_3(seed) + step_5(seed);
}

static int loop_cb(__u32 index, void *data)
{
	struct ctx_state *st = data;

	st->acc = step_7(st->acc + index);
	st->steps++;
	return st->acc & 1;
}

struct bpf_map;

static __u64 sum_cb(struct bpf_map *map, __u32 *key, __u64 *val, struct ctx_state *st)
{
	st->acc += *val;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} jump_table SEC(".maps");

SEC("tc")
int tail_stage1(struct __sk_buff *skb)
{
	return global_checksum(skb->len) & 1;
}

SEC("tc")
int tail_stage2(struct __sk_buff *skb)
{
	return mix_all(skb->mark) & 1;
}

SEC("tc")
int classify(struct __sk_buff *skb)
{
	struct ctx_state st = {.acc = skb->len};
	__u32 key = 0;
	__u64 *v;

	if (!global_len_ok(skb))
		return 0;
	st.acc = mix_all(st.acc);
	bpf_loop(8, loop_cb, &st, 0);
	bpf_for_each_map_elem(&values, sum_cb, &st, 0);
	v = bpf_map_lookup_elem(&values, &key);
	if (v)
		*v = st.acc + global_checksum(st.steps);
	bpf_tail_call(skb, &jump_table, st.acc & 1);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} jump_table_init SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_stage1,
		[2] = (void *)&tail_stage2,
	},
};

SEC("xdp")
int xdp_mix(struct xdp_md *ctx)
{
	return mix_all(ctx->data_end - ctx->data) & 3;
}
