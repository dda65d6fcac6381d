// A control for LifecycleBench hot-cold (docs/benchmarks/lifecycle.md): work of the shape a model load
// has, in a process of its own, under SCHED_IDLE as Quiver's loads run. Every PERIOD ms it runs for BUSY ms
// of its own CPU time, touching fresh anonymous memory (mapped, written a 4 KiB page at a time, unmapped
// once written through, mapped again) as a session's creation does with its weights; then it sleeps to
// the next period. Nothing of Quiver runs in it, so a hot set it disturbs is disturbed by the platform
// (the scheduler, the host), not by Quiver's load path.
//
//   gcc -O2 -o /tmp/duty-load benchmarks/duty-load.c
//   /tmp/duty-load PERIOD_MS BUSY_MS [TOUCH_KIB, default 1024] [idle|normal, default idle]
//
// "normal" leaves it at the default policy (SCHED_OTHER): the same work, competing with serving threads
// for their core as a thread that does not yield would.
// It runs until killed.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static long clock_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PERIOD_MS BUSY_MS [TOUCH_KIB] [idle|normal]\n", argv[0]);
    return 2;
  }
  long period = atol(argv[1]) * 1000000L;
  long busy = atol(argv[2]) * 1000000L;
  size_t bytes = (size_t) (argc > 3 ? atol(argv[3]) : 1024) << 10;
  if (period <= 0 || busy <= 0 || busy > period || bytes < 4096) {
    fprintf(stderr, "need 0 < BUSY_MS <= PERIOD_MS and TOUCH_KIB >= 4\n");
    return 2;
  }
  int idle = argc <= 4 || strcmp(argv[4], "normal") != 0;
  struct sched_param none = {0};
  if (idle && sched_setscheduler(0, SCHED_IDLE, &none) != 0) {
    perror("sched_setscheduler(SCHED_IDLE)");
    return 1;
  }
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    long until = clock_ns(CLOCK_THREAD_CPUTIME_ID) + busy;
    while (clock_ns(CLOCK_THREAD_CPUTIME_ID) < until) {
      char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
      }
      for (size_t i = 0; i < bytes && clock_ns(CLOCK_THREAD_CPUTIME_ID) < until; i += 4096) {
        p[i] = (char) i;
      }
      munmap(p, bytes);
    }
    next.tv_nsec += period % 1000000000L;
    next.tv_sec += period / 1000000000L + next.tv_nsec / 1000000000L;
    next.tv_nsec %= 1000000000L;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
}
