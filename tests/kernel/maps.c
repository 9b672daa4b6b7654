/* Kernel-golden corpus: the key/value map types driven by XDP command packets. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

enum { OP_UPDATE = 0, OP_LOOKUP = 1, OP_DELETE = 2, OP_ADD = 3, OP_NOEXIST = 4, OP_EXIST = 5 };

#define KV_MAP(NAME, TYPE, ENTRIES, FLAGS)            \
	struct {                                      \
		__uint(type, TYPE);                   \
		__uint(max_entries, ENTRIES);         \
		__uint(map_flags, FLAGS);             \
		__type(key, __u32);                   \
		__type(value, __u32);                 \
	} NAME SEC(".maps")

KV_MAP(arr, BPF_MAP_TYPE_ARRAY, 8, 0);
KV_MAP(pcpu_arr, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 0);
KV_MAP(hash, BPF_MAP_TYPE_HASH, 8, 0);
KV_MAP(hash_np, BPF_MAP_TYPE_HASH, 4, BPF_F_NO_PREALLOC);
KV_MAP(pcpu_hash, BPF_MAP_TYPE_PERCPU_HASH, 8, 0);
KV_MAP(lru, BPF_MAP_TYPE_LRU_HASH, 64, 0);
KV_MAP(lru_small, BPF_MAP_TYPE_LRU_HASH, 4, 0);
KV_MAP(lru_pcpu, BPF_MAP_TYPE_LRU_PERCPU_HASH, 64, 0);

static __always_inline int apply(void *map, struct cmd *c)
{
	__u32 key = c->key, val = c->val, *v;

	switch (c->op) {
	case OP_UPDATE:
		return bpf_map_update_elem(map, &key, &val, BPF_ANY);
	case OP_NOEXIST:
		return bpf_map_update_elem(map, &key, &val, BPF_NOEXIST);
	case OP_EXIST:
		return bpf_map_update_elem(map, &key, &val, BPF_EXIST);
	case OP_LOOKUP:
		v = bpf_map_lookup_elem(map, &key);
		if (!v)
			return -2;
		c->val = *v;
		return 0;
	case OP_DELETE:
		return bpf_map_delete_elem(map, &key);
	case OP_ADD:
		v = bpf_map_lookup_elem(map, &key);
		if (!v)
			return -2;
		__sync_fetch_and_add(v, val);
		c->val = *v;
		return 0;
	}
	return -22;
}

static __always_inline int run_cmds(struct xdp_md *ctx, void *map)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	int done = 0;

	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = data + i * sizeof(struct cmd);

		if ((void *)(c + 1) > end)
			break;
		c->rc = apply(map, c);
		done++;
	}
	return done;
}

#define KV_PROG(NAME) \
	SEC("xdp") int prog_##NAME(struct xdp_md *ctx) { return run_cmds(ctx, &NAME); }

KV_PROG(arr)
KV_PROG(pcpu_arr)
KV_PROG(hash)
KV_PROG(hash_np)
KV_PROG(pcpu_hash)
KV_PROG(lru)
KV_PROG(lru_small)
KV_PROG(lru_pcpu)

/* A counter bumped once per run: with repeat=N the kernel runs the program N times. */
SEC("xdp")
int count_runs(struct xdp_md *ctx)
{
	__u32 key = 0, *v = bpf_map_lookup_elem(&arr, &key);

	if (!v)
		return XDP_ABORTED;
	*v += 1;
	return XDP_PASS;
}
