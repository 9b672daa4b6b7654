/* Kernel-golden corpus: BPF_PROG_TYPE_SYSCALL programs (context bytes in and out). */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

struct args {
	__u32 a;
	__u32 b;
	__u64 product;
	__s32 status;
	char text[12];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} products SEC(".maps");

__u32 calls;

/* Multiplies, stores the product in the hash under `a`, and fills the text field. */
SEC("syscall")
int multiply(struct args *ctx)
{
	__u64 p = (__u64)ctx->a * ctx->b;
	__u32 key = ctx->a;

	calls++;
	ctx->product = p;
	ctx->status = bpf_map_update_elem(&products, &key, &p, BPF_NOEXIST);
	__builtin_memcpy(ctx->text, "multiplied", 11);
	return calls;
}

/* Reverses the byte string of length ctx[0] (at most 63) that follows it; the context is
 * read and written whole, as syscall programs may only use constant context offsets. */
SEC("syscall")
int reverse(__u8 *ctx)
{
	__u8 buf[64];
	__u32 n;

	__builtin_memcpy(buf, ctx, sizeof(buf));
	n = buf[0];
	if (n > 63)
		return -1;
	for (__u32 i = 0; i < 32; i++) {
		__u32 j = n - 1 - i;
		__u8 t;

		if (i >= j || j > 62)
			break;
		t = buf[1 + i];
		buf[1 + i] = buf[1 + j];
		buf[1 + j] = t;
	}
	__builtin_memcpy(ctx, buf, sizeof(buf));
	return n;
}
