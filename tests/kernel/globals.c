/* Kernel-golden corpus: global data, static and global subprograms, bpf_loop and
 * bpf_for_each_map_elem. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u64 runs = 7;                          /* .data */
__u32 seen[4];                           /* .bss */
const volatile __u32 scale = 3;          /* .rodata */
static const __u8 table[8] = { 2, 3, 5, 7, 11, 13, 17, 19 };
char greeting[8] SEC(".data.custom") = "hello";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} weights SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

static __noinline __u32 mix(__u32 a, __u32 b)
{
	return (a * 31) ^ (b + scale);
}

__noinline int global_sum(__u32 a, __u32 b, __u32 c)
{
	return mix(a, b) + mix(b, c) + table[c & 7];
}

/* The first packet bytes index `table` and feed the subprograms; every run bumps the
 * globals. */
SEC("xdp")
int use_globals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 *p = data;

	if ((void *)(p + 4) > end)
		return XDP_ABORTED;
	runs++;
	seen[p[0] & 3] += table[p[1] & 7] * scale;
	greeting[5] = '0' + (runs & 7);
	p[2] = mix(p[0], p[1]);
	p[3] = global_sum(p[0], p[1], p[2]);
	return global_sum(p[3], p[2], p[1]);
}

struct loop_ctx {
	__u64 acc;
	__u32 limit;
};

static int loop_step(__u32 i, void *arg)
{
	struct loop_ctx *lc = arg;

	if (i >= lc->limit)
		return 1;
	lc->acc = lc->acc * 3 + i;
	return 0;
}

/* bpf_loop with the iteration count from packet byte 0 and a stop index from byte 1;
 * the accumulator and the loop's return value are written back into the packet. */
SEC("xdp")
int use_loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	struct loop_ctx lc = { .acc = 1 };
	long n;

	if ((void *)(p + 16) > end)
		return XDP_ABORTED;
	lc.limit = p[1];
	n = bpf_loop(p[0], loop_step, &lc, 0);
	__builtin_memcpy(p + 4, &lc.acc, 8);
	__builtin_memcpy(p + 12, &n, 4);
	return n;
}

struct sum_ctx {
	__u64 sum;
	__u32 count;
	__u32 stop_at;
};

static long sum_elem(void *map, __u32 *key, __u64 *val, struct sum_ctx *sc)
{
	sc->count++;
	sc->sum += *key * 1000 + *val;
	*val += 1;
	return sc->count >= sc->stop_at;
}

/* for_each over the hash and the array (callbacks also write every visited value). */
SEC("xdp")
int use_for_each(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	struct sum_ctx a = {}, b = {};
	long na, nb;

	if ((void *)(p + 32) > end)
		return XDP_ABORTED;
	a.stop_at = p[0] ? p[0] : 100;
	b.stop_at = p[1] ? p[1] : 100;
	na = bpf_for_each_map_elem(&weights, sum_elem, &a, 0);
	nb = bpf_for_each_map_elem(&slots, sum_elem, &b, 0);
	__builtin_memcpy(p + 4, &na, 4);
	__builtin_memcpy(p + 8, &a.sum, 8);
	__builtin_memcpy(p + 16, &nb, 4);
	__builtin_memcpy(p + 20, &b.sum, 8);
	return a.count * 100 + b.count;
}
