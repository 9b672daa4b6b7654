/* Kernel-golden corpus: array-of-maps and hash-of-maps, filled by the loader from `.values`
 * initializers (the hash one keyed beyond max_entries, as libbpf allows) and from userspace. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct inner);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a, [1] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [7] = &inner_b },
};

/* cmd: op 0 = via outer_arr[key], op 1 = via outer_hash[key]; adds `val` to inner[0]
 * and returns the new value in val (rc -2 when the outer slot is empty). */
SEC("xdp")
int map_in_map(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	int done = 0;

	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = data + i * sizeof(struct cmd);
		__u32 zero = 0, key;
		__u32 *v;
		void *m;

		if ((void *)(c + 1) > end)
			break;
		key = c->key;
		m = c->op ? bpf_map_lookup_elem(&outer_hash, &key)
			  : bpf_map_lookup_elem(&outer_arr, &key);
		done++;
		if (!m) {
			c->rc = -2;
			continue;
		}
		v = bpf_map_lookup_elem(m, &zero);
		if (!v) {
			c->rc = -3;
			continue;
		}
		*v += c->val;
		c->val = *v;
		c->rc = 0;
	}
	return done;
}
