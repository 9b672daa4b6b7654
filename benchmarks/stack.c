/* Benchmark (b): a loop whose state lives in a stack array (loads and stores off r10). */
#include "bench.h"

unsigned long long bench_stack(unsigned long long n)
{
	unsigned long long buf[16];

	for (int k = 0; k < 16; k++)
		buf[k] = k;
	for (unsigned long long i = 0; i < n; i++) {
		unsigned int idx = i & 15;

		buf[idx] = buf[(idx + 5) & 15] * 3 + i;
	}
	unsigned long long acc = 0;

	for (int k = 0; k < 16; k++)
		acc ^= buf[k];
	return acc;
}
