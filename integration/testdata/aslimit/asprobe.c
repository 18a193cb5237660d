/*
 * asprobe reports the RLIMIT_AS it has before main runs, then maps and
 * touches memory up to 64 MiB below that limit, and checks that a mapping
 * past the limit is refused. Built static, so that nothing but this file
 * runs in the process before the report.
 *
 * Output, one line each: "RLIMIT_AS <soft> <hard>", "touched <MiB> MiB",
 * "past the limit: refused", "done". Exit 0 only if all went as expected.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

static struct rlimit at_start;

/* A constructor runs before main and before any allocation of ours. */
__attribute__((constructor)) static void read_limit(void) { getrlimit(RLIMIT_AS, &at_start); }

/* vm_size returns the process's address space (VmSize) in bytes. */
static unsigned long long vm_size(void) {
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb << 10;
}

int main(void) {
	const unsigned long long chunk = 16ULL << 20, margin = 64ULL << 20;
	unsigned long long touched = 0;
	printf("RLIMIT_AS %llu %llu\n", (unsigned long long)at_start.rlim_cur, (unsigned long long)at_start.rlim_max);
	fflush(stdout);
	if (at_start.rlim_cur == RLIM_INFINITY) {
		printf("no limit at start\n");
		return 2;
	}
	while (vm_size() + chunk + margin <= at_start.rlim_cur) {
		char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			printf("mmap of 16 MiB failed after %llu MiB: %s\n", touched >> 20, strerror(errno));
			return 3;
		}
		/* One byte per MiB: the mapping is real, writable memory, and the
		 * limit is on address space, not on what is touched (touching every
		 * page of ~1 GiB costs ~0.3 s a run). */
		for (unsigned long long i = 0; i < chunk; i += 1 << 20)
			p[i] = 1;
		touched += chunk;
	}
	printf("touched %llu MiB\n", touched >> 20);
	void *past = mmap(NULL, margin + chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("past the limit: %s\n", past == MAP_FAILED ? "refused" : "allowed");
	if (past != MAP_FAILED)
		return 4;
	printf("done\n");
	return 0;
}
