// What a page fault costs on this machine: touches anonymous memory one 4 KiB page at a time and times
// each pass. A JVM pays the "first touch" price whenever its heap grows into pages it has not used yet,
// and the "after MADV_DONTNEED" price whenever it uncommits memory and later uses it again (ParallelGC
// resizing its young generation, G1 shrinking a heap whose -Xms is below -Xmx). In C so that nothing
// else (a collector, a JIT) is measured with it.
//
//   gcc -O2 -o /tmp/page-touch benchmarks/page-touch.c && /tmp/page-touch [MiB, default 512]
//
// docs/benchmarks/README.md ("Fresh pages") has the figures measured here and what the scripts do about them.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void touch_pass(char *p, size_t bytes, const char *what) {
  long start = now_ns();
  for (size_t i = 0; i < bytes; i += 4096) {
    p[i]++;
  }
  long took = now_ns() - start;
  printf("%-40s %8.1f ms for %zu MiB: %6.2f us per 4 KiB page\n", what, took / 1e6, bytes >> 20,
         took / 1e3 / (double) (bytes / 4096));
}

int main(int argc, char **argv) {
  size_t bytes = (size_t) (argc > 1 ? atol(argv[1]) : 512) << 20;
  size_t huge = 2UL << 20;
  char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  touch_pass(p, bytes, "first touch (4 KiB pages)");
  touch_pass(p, bytes, "second touch (resident)");
  madvise(p, bytes, MADV_DONTNEED);
  touch_pass(p, bytes, "after MADV_DONTNEED (a JVM's uncommit)");
  munmap(p, bytes);

  char *raw = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  char *aligned = (char *) (((unsigned long) raw + huge - 1) & ~(huge - 1));
  if (madvise(aligned, bytes, MADV_HUGEPAGE) != 0) {
    perror("madvise(MADV_HUGEPAGE)");
  }
  touch_pass(aligned, bytes, "first touch (MADV_HUGEPAGE)");
  touch_pass(aligned, bytes, "second touch (resident huge pages)");
  munmap(raw, bytes + huge);
  return 0;
}
