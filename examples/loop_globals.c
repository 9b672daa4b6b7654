/* bpf_loop over global data.
 *
 * syscall program `fib`: fills the .bss array `table` with the first ctx->n Fibonacci
 * numbers (n capped by the .rodata constant `limit`) through a bpf_loop callback, adds 1 to
 * the .data counter `runs`, prints a line with bpf_printk and returns the last number.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 limit = 32; /* .rodata: read-only for the program */
__u32 runs = 100;                /* .data */
__u64 table[32];                 /* .bss */

struct args {
	__u32 n;
};

static int step(__u32 i, void *unused)
{
	/* One bounded copy for every index: tested on i, the bound is lost when clang widens i
	 * again for the store, and the kernel's verifier refuses the program. */
	__u32 k = i & 31;

	if (k != i)
		return 1;
	table[k] = k < 2 ? k : table[k - 1] + table[k - 2];
	return 0;
}

SEC("syscall")
int fib(struct args *ctx)
{
	__u32 n = ctx->n < limit ? ctx->n : limit;

	bpf_loop(n, step, NULL, 0);
	runs++;
	bpf_printk("fib: %u numbers, run %u", n, runs);
	return n ? table[(n - 1) & 31] : 0;
}

char _license[] SEC("license") = "GPL";
