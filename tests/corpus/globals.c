// SPDX-License-Identifier: GPL-2.0
/* Global data the way larger projects end up with it: many variables across .data, .bss and
 * .rodata, custom .data.<name> / .rodata.<name> / .bss.<name> sections (skeletons give each
 * its own struct), static variables beside global ones, arrays and structs with initial
 * values, hidden (__hidden) globals and string tables. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define __hidden __attribute__((visibility("hidden")))
#define SEC_DATA(name) __attribute__((section(name)))

struct limits {
	__u32 rate;
	__u32 burst;
	__u64 window_ns;
};

/* .rodata: configuration the loader freezes */
const volatile __u32 cfg_version = 3;
const volatile struct limits cfg_limits = {.rate = 1000, .burst = 64, .window_ns = 1000000000};
const volatile char cfg_name[16] = "corpus-globals";
const volatile __u64 cfg_mask = 0xffff0000ffff0000ULL;

/* .data: state with initial values */
__u64 packets = 1;
__u32 drops = 7;
__u16 last_len = 0xabcd;
__u8 enabled = 1;
struct limits current = {.rate = 10, .burst = 2, .window_ns = 5};
int table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static __u32 static_counter = 42;
__hidden __u32 hidden_counter = 99;

/* .bss: zero-initialised state */
__u64 zero_start;
__u64 histogram[16];
struct limits seen;
static __u64 static_total;
__hidden __u8 hidden_flag;

/* custom sections: one internal map each */
__u64 per_feature_a SEC_DATA(".data.feature_a") = 0x1111;
__u32 per_feature_b SEC_DATA(".data.feature_a") = 0x2222;
__u64 big_buffer[64] SEC_DATA(".data.buffers");
const volatile __u32 tuning[4] SEC_DATA(".rodata.tuning") = {10, 20, 30, 40};
__u64 scratch[4] SEC_DATA(".bss.scratch");

static const char greeting[] = "hello from globals";

static __noinline __u32 bucket(__u32 len)
{
	__u32 b = 0;

	while (len > 64 && b < 15) {
		len >>= 1;
		b++;
	}
	return b;
}

SEC("socket")
int account(struct __sk_buff *skb)
{
	__u32 b = bucket(skb->len);

	if (!enabled)
		return 0;
	packets++;
	last_len = skb->len;
	static_counter += cfg_version;
	hidden_counter++;
	static_total += skb->len;
	if (b < 16)
		histogram[b]++;
	if (skb->len > cfg_limits.rate) {
		drops++;
		hidden_flag = 1;
		return 0;
	}
	current.rate = cfg_limits.burst + table[b & 7];
	seen.window_ns = cfg_limits.window_ns & cfg_mask;
	per_feature_a += tuning[b & 3];
	per_feature_b ^= cfg_name[b & 15];
	big_buffer[b & 63] = zero_start;
	scratch[b & 3] = static_total;
	if (skb->len == 0)
		bpf_printk("%s", greeting);
	return skb->len;
}
