// SPDX-License-Identifier: GPL-2.0
// build: -D__TARGET_ARCH_x86
/* USDT probes through libbpf's usdt.bpf.h (weak, hidden maps and functions the library
 * shares between objects, a __kconfig extern), and map values with special fields:
 * a referenced kptr, a spin lock and a timer (in a map a tc program uses). */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "GPL";

struct session {
	struct task_struct __kptr *owner;
	u64 started;
	u64 requests;
};

/* kernels refuse spin locks and timers in tracing programs: a tc program uses these */
struct guarded {
	struct bpf_spin_lock lock;
	struct bpf_timer timer;
	u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, struct session);
} sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct guarded);
} guarded SEC(".maps");

SEC("usdt/./app:server:request_start")
int BPF_USDT(request_start, u64 id, const char *path)
{
	struct session zero = {}, *s;

	bpf_map_update_elem(&sessions, &id, &zero, BPF_NOEXIST);
	s = bpf_map_lookup_elem(&sessions, &id);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->requests, 1);
	s->started = bpf_ktime_get_ns();
	bpf_printk("request %llu %s", id, path);
	return 0;
}

SEC("usdt")
int usdt_generic(struct pt_regs *ctx)
{
	long arg0 = 0;
	int n = bpf_usdt_arg_cnt(ctx);

	if (n > 0)
		bpf_usdt_arg(ctx, 0, &arg0);
	return bpf_usdt_cookie(ctx) + arg0;
}

SEC("tc")
int count_locked(struct __sk_buff *skb)
{
	u32 zero = 0;
	struct guarded *g = bpf_map_lookup_elem(&guarded, &zero);

	if (!g)
		return 0;
	bpf_spin_lock(&g->lock);
	g->packets++;
	bpf_spin_unlock(&g->lock);
	return 0;
}
