// How fast the CPU it runs on is right now, as this guest sees it: every 100 ms it times a fixed,
// register-only loop (xorshift, no memory traffic, so neither caches nor the guest's other threads
// change its cost) against the thread's own CPU time, and prints "REALTIME_NS NS_PER_ITERATION".
// On a virtual machine that hides steal time, a rise means the vCPU got slower under us: a busy
// sibling hardware thread on the host, a slower core, or time taken by the host and charged to us.
// About 0.5 ms of work per 100 ms. In C so that no collector or JIT is measured with it.
//
//   cc -O2 -o /tmp/vcpu-speed benchmarks/vcpu-speed.c && taskset -c 1 /tmp/vcpu-speed [SECONDS, default 60]
//
// benchmarks/steady-trace.sh runs it on the server's CPU; docs/benchmarks/PROFILE.md has what it showed.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  const int iterations = 300000;
  double seconds = argc > 1 ? atof(argv[1]) : 60;
  double end = now_ns(CLOCK_MONOTONIC) + seconds * 1e9;
  uint64_t sink = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (now_ns(CLOCK_MONOTONIC) < end) {
    double cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < iterations; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    __asm__ volatile("" : : "r"(x));
    sink += x;
    double cpu1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    printf("%.0f %.4f\n", now_ns(CLOCK_REALTIME), (cpu1 - cpu0) / iterations);
    usleep(100000);
  }
  return sink == 42 ? 1 : 0;
}
