/* Benchmark (c): bpf-to-bpf calls (a non-inlined function called from a loop, which itself
 * calls a second one). */
#include "bench.h"

static NOINLINE unsigned long long mix(unsigned long long a, unsigned long long b);

unsigned long long bench_calls(unsigned long long n)
{
	unsigned long long acc = 1;

	for (unsigned long long i = 0; i < n; i++)
		acc = mix(acc, i);
	return acc;
}

static NOINLINE unsigned long long rot(unsigned long long v, unsigned long long s)
{
	return (v << (s & 63)) | (v >> ((64 - s) & 63));
}

static NOINLINE unsigned long long mix(unsigned long long a, unsigned long long b)
{
	return rot(a ^ b, 13) * 0x9E3779B97F4A7C15ULL + (b >> 3);
}
