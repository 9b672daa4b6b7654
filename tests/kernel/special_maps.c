/* Kernel-golden corpus: LPM trie, queue, stack, bloom filter and ring buffer from programs. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4);
	__type(value, __u32);
} fifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 4);
	__type(value, __u32);
} lifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 16);
	__uint(map_extra, 3);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__type(value, __u32);
} bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct event {
	__u32 seq;
	__u32 value;
	__u8 tag[8];
};

/* Each command: op 0 looks the IPv4 address in `val` up (answer in val, rc 0 or -2),
 * op 1 inserts `val`/`key` (value 1000 + index), op 2 deletes it. */
SEC("xdp")
int lpm_lookup(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	int done = 0;

	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = data + i * sizeof(struct cmd);
		struct lpm_key k;
		__u32 *v;

		if ((void *)(c + 1) > end)
			break;
		k.prefixlen = c->key;
		__builtin_memcpy(k.addr, &c->val, 4);
		if (c->op == 1) {
			__u32 nv = 1000 + i;

			c->rc = bpf_map_update_elem(&routes, &k, &nv, BPF_ANY);
		} else if (c->op == 2) {
			c->rc = bpf_map_delete_elem(&routes, &k);
		} else {
			v = bpf_map_lookup_elem(&routes, &k);
			c->rc = v ? 0 : -2;
			c->val = v ? *v : 0;
		}
		done++;
	}
	return done;
}

/* op 0 push (flags in key), op 1 pop, op 2 peek: for the queue, the stack and the bloom
 * filter (push = add, peek = test). */
static __always_inline int qs_cmds(struct xdp_md *ctx, void *map)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	int done = 0;

	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = data + i * sizeof(struct cmd);
		__u32 v;

		if ((void *)(c + 1) > end)
			break;
		v = c->val;
		if (c->op == 0) {
			c->rc = bpf_map_push_elem(map, &v, c->key);
		} else if (c->op == 1) {
			c->rc = bpf_map_pop_elem(map, &v);
			c->val = v;
		} else {
			c->rc = bpf_map_peek_elem(map, &v);
			c->val = v;
		}
		done++;
	}
	return done;
}

SEC("xdp")
int queue_ops(struct xdp_md *ctx)
{
	return qs_cmds(ctx, &fifo);
}

SEC("xdp")
int stack_ops(struct xdp_md *ctx)
{
	return qs_cmds(ctx, &lifo);
}

SEC("xdp")
int bloom_ops(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	int done = 0;

	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = data + i * sizeof(struct cmd);
		__u32 v;

		if ((void *)(c + 1) > end)
			break;
		v = c->val;
		if (c->op == 0)
			c->rc = bpf_map_push_elem(&bloom, &v, 0);
		else
			c->rc = bpf_map_peek_elem(&bloom, &v);
		done++;
	}
	return done;
}

/* Ring buffer: for each command, op 0 reserve+submit, op 1 reserve+discard, op 2 output;
 * the record carries the command index and `val`. Returns the available data afterwards. */
SEC("xdp")
int ringbuf_ops(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = data + i * sizeof(struct cmd);
		struct event *e;

		if ((void *)(c + 1) > end)
			break;
		if (c->op == 2) {
			struct event ev = { .seq = i, .value = c->val, .tag = "output!" };

			c->rc = bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
			continue;
		}
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			c->rc = -1;
			continue;
		}
		e->seq = i;
		e->value = c->val;
		__builtin_memcpy(e->tag, c->op ? "discard" : "submit!", 8);
		if (c->op)
			bpf_ringbuf_discard(e, 0);
		else
			bpf_ringbuf_submit(e, 0);
		c->rc = 0;
	}
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
}

/* Variable-size records: `val` bytes of a 64-byte pattern (0 < val <= 64), via output. */
SEC("xdp")
int ringbuf_sizes(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 buf[64];

	for (int j = 0; j < 64; j++)
		buf[j] = j + 1;
	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = data + i * sizeof(struct cmd);
		__u32 n;

		if ((void *)(c + 1) > end)
			break;
		n = c->val;
		if (n == 0 || n > 64) {
			c->rc = -22;
			continue;
		}
		c->rc = bpf_ringbuf_output(&events, buf, n, 0);
	}
	return bpf_ringbuf_query(&events, BPF_RB_PROD_POS);
}
