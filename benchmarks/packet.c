/* Benchmark (d): memory traffic outside the stack. r1/r2 are a buffer and its length (a
 * 1500-byte frame, as the conformance suite passes `mem`), r3 the number of rounds. The
 * buffer is filled with a byte pattern, then each round sums it as 16-bit words (the RFC 1071
 * Internet checksum), parses it as a chain of type-length records, and stores the folded
 * checksum and a round counter back into it, so every round reads what the last one wrote. */
#include "bench.h"

unsigned long long bench_packet(unsigned char *pkt, unsigned long long len, unsigned long long n)
{
	unsigned long long acc = 0;

	if (len == 0)
		return 0;
	for (unsigned long long i = 0; i < len; i++)
		pkt[i] = (unsigned char)(i * 7 + 3);
	for (unsigned long long r = 0; r < n; r++) {
		unsigned long long sum = 0, pos = 0, records = 0;

		for (unsigned long long i = 0; i + 1 < len; i += 2)
			sum += *(unsigned short *)(pkt + i);
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		while (pos + 2 <= len) {
			records += pkt[pos];
			pos += 2 + (pkt[pos + 1] & 31);
		}
		*(unsigned short *)(pkt + 10) = (unsigned short)~sum;
		pkt[r % len] += 1;
		acc = acc * 31 + sum + records;
	}
	return acc;
}
