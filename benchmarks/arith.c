/* Benchmark (a): a tight arithmetic loop (xorshift64 + accumulate). Compiled both natively
 * (benchmarks/native.c includes it) and with clang-19 -target bpf -O2 (arith.o / arith.bin). */
#include "bench.h"

unsigned long long bench_arith(unsigned long long n)
{
	unsigned long long x = 88172645463325252ULL, acc = 0;

	for (unsigned long long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		acc += x ^ i;
	}
	return acc;
}
