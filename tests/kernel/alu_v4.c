// build: -mcpu=v4
/* Kernel-golden corpus, built with -mcpu=v4: signed division and modulo, sign-extending
 * moves and loads, byte swaps and the fetching atomics, on values only known at run time. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

struct nums {
	__s64 x;
	__s64 y;
	__s32 x32;
	__s32 y32;
	__s64 out[20];
};

__u64 cell = 0x00ff00ff00ff00ffULL;
__u32 cell32 = 100;

SEC("syscall")
int signed_ops(struct nums *ctx)
{
	__s64 x = ctx->x, y = ctx->y;
	__s32 x32 = ctx->x32, y32 = ctx->y32;

	ctx->out[0] = x / y;
	ctx->out[1] = x % y;
	ctx->out[2] = x32 / y32;
	ctx->out[3] = x32 % y32;
	ctx->out[4] = (__s8)x;
	ctx->out[5] = (__s16)x;
	ctx->out[6] = (__s32)x;
	ctx->out[7] = *(volatile __s8 *)&ctx->y;
	ctx->out[8] = *(volatile __s16 *)&ctx->y;
	ctx->out[9] = *(volatile __s32 *)&ctx->y;
	ctx->out[10] = __builtin_bswap16(x);
	ctx->out[11] = __builtin_bswap32(x);
	ctx->out[12] = __builtin_bswap64(x);
	ctx->out[13] = x >> (y & 63);
	ctx->out[14] = (__u64)x >> (y & 63);
	ctx->out[15] = (__s32)x32 >> (y32 & 31);
	/* clang lowers `%` to div/mul/sub; the remainder instructions need inline asm. */
	asm volatile("%0 s%%= %1" : "+r"(x) : "r"(y));
	asm volatile("%0 s%%= %1" : "+w"(x32) : "w"(y32));
	ctx->out[16] = x;
	ctx->out[17] = x32;
	x = ctx->x;
	asm volatile("%0 = (s8)%0" : "+w"(x32));
	ctx->out[18] = x32;
	ctx->out[19] = (__s64)(__s16)ctx->y32;
	return x / 3;
}

/* Each fetching atomic on the global cells; the old values go out through ctx. */
SEC("syscall")
int atomics(struct nums *ctx)
{
	__u64 v = ctx->x;

	ctx->out[0] = __sync_fetch_and_add(&cell, v);
	ctx->out[1] = __sync_fetch_and_or(&cell, v << 4);
	ctx->out[2] = __sync_fetch_and_and(&cell, ~v);
	ctx->out[3] = __sync_fetch_and_xor(&cell, 0xffff);
	ctx->out[4] = __sync_lock_test_and_set(&cell, v * 7);
	ctx->out[5] = __sync_val_compare_and_swap(&cell, v * 7, 42);
	ctx->out[6] = __sync_val_compare_and_swap(&cell, 0, 1);
	ctx->out[7] = __sync_fetch_and_add(&cell32, ctx->x32);
	ctx->out[8] = __sync_val_compare_and_swap(&cell32, 100 + ctx->x32, 7);
	ctx->out[9] = __sync_fetch_and_sub(&cell32, 3);
	ctx->out[10] = cell;
	ctx->out[11] = cell32;
	return cell32;
}
