/* Shared by the benchmark programs: the same source builds natively and for BPF. */
#ifndef BENCH_H
#define BENCH_H
#define NOINLINE __attribute__((noinline))
#endif
