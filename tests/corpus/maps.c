// SPDX-License-Identifier: GPL-2.0
/* Map definitions beyond the basics: pinning by name, a bloom filter's map_extra (number of
 * hash functions), a memory-mappable array (BPF_F_MMAPABLE), numa_node, hash tables without
 * preallocation, LRU and LPM tries, per-CPU hash, queue and stack, a user ring buffer and a
 * ring buffer whose size is not a power-of-two number of pages (libbpf rounds it up),
 * stack traces, perf event arrays, cpumap/xskmap, arrays and hashes of maps with inner map
 * templates and initial inner maps, and key/value sizes given as numbers instead of types. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	__u64 first_seen;
	__u64 last_seen;
};

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 10000);
	__type(value, __u32);
	__uint(map_extra, 5);
} seen_ips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} shared_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE);
	__uint(numa_node, 0);
} sparse SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 2048);
	__type(key, struct flow_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 512);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 128);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 24);
} raw_sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 32);
	__type(value, struct flow_key);
} work_queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 32);
	__uint(value_size, 8);
} free_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 3 * 4096 + 100);
} odd_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 64 * 1024);
} commands SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct inner_counts {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_counts);
} tenants SEC(".maps") = {
	.values = {[0] = &inner_a, [3] = &inner_b},
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 64);
		__type(key, __u32);
		__type(value, struct flow_stats);
	});
} per_port SEC(".maps");

SEC("xdp")
int track(struct xdp_md *ctx)
{
	struct flow_key key = {.proto = 17};
	struct flow_stats *st, zero = {};
	struct lpm_v4_key lpm = {.prefixlen = 32};
	__u32 k = 0, ip = ctx->ingress_ifindex;
	__u64 *c, one = 1;
	void *inner;

	key.saddr = ctx->rx_queue_index;
	st = bpf_map_lookup_elem(&flows, &key);
	if (!st) {
		bpf_map_update_elem(&flows, &key, &zero, BPF_NOEXIST);
		return XDP_PASS;
	}
	st->packets++;
	if (bpf_map_peek_elem(&seen_ips, &ip) != 0)
		bpf_map_push_elem(&seen_ips, &ip, 0);
	c = bpf_map_lookup_elem(&shared_counters, &k);
	if (c)
		__sync_fetch_and_add(c, 1);
	bpf_map_update_elem(&sparse, &ip, &one, BPF_ANY);
	bpf_map_update_elem(&recent, &key, &one, BPF_ANY);
	if (bpf_map_lookup_elem(&routes, &lpm))
		return XDP_DROP;
	bpf_map_lookup_elem(&raw_sizes, &k);
	bpf_map_push_elem(&work_queue, &key, BPF_EXIST);
	bpf_map_push_elem(&free_slots, &one, 0);
	bpf_ringbuf_output(&odd_ring, &key, sizeof(key), 0);
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &key, sizeof(key));
	inner = bpf_map_lookup_elem(&tenants, &k);
	if (inner)
		bpf_map_lookup_elem(inner, &k);
	inner = bpf_map_lookup_elem(&per_port, &k);
	if (inner)
		bpf_map_lookup_elem(inner, &k);
	if (k == ip)
		return bpf_redirect_map(&cpus, 0, 0);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

static long drain_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	return 0;
}

SEC("perf_event")
int sample(struct bpf_perf_event_data *ctx)
{
	__u32 id = bpf_get_stackid(ctx, &stacks, 0);

	bpf_user_ringbuf_drain(&commands, drain_cb, (void *)0, 0);
	return id;
}
