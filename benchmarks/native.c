/* Native side of the benchmarks: the same sources, compiled with -O2 for the host, timed.
 * Usage: native NAME N REPEAT [LEN] -> prints "<result> <best ns per call>"; LEN is the size
 * of the buffer a benchmark over memory (packet) gets, as benchmarks/run.py passes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arith.c"
#include "stack.c"
#include "calls.c"
#include "packet.c"

static unsigned char *buffer;
static unsigned long long buffer_len;

static unsigned long long bench_packet_buffer(unsigned long long n)
{
	return bench_packet(buffer, buffer_len, n);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned long long (*fn)(unsigned long long);

	if (argc != 4 && argc != 5)
		return 2;
	buffer_len = argc == 5 ? strtoull(argv[4], NULL, 0) : 0;
	buffer = calloc(buffer_len ? buffer_len : 1, 1);
	if (!buffer)
		return 2;
	if (!strcmp(argv[1], "arith"))
		fn = bench_arith;
	else if (!strcmp(argv[1], "stack"))
		fn = bench_stack;
	else if (!strcmp(argv[1], "calls"))
		fn = bench_calls;
	else if (!strcmp(argv[1], "packet"))
		fn = bench_packet_buffer;
	else
		return 2;
	unsigned long long n = strtoull(argv[2], NULL, 0), result = 0;
	int repeat = atoi(argv[3]);
	double best = 1e300;

	for (int r = 0; r < repeat; r++) {
		double t0 = now_ns();

		result = fn(n);
		__asm__ volatile("" : : "r"(result) : "memory");
		double dt = now_ns() - t0;

		if (dt < best)
			best = dt;
	}
	printf("%llu %.0f\n", result, best);
	return 0;
}
