/*
 * instant - the benchmarks' agent: read standard input to its end, wait
 * MS milliseconds (default 0), print an actions document with no actions.
 * The same binary runs under orch-exec, ninja and make.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char out[] = "{\"actions\":[]}\n";
	char buf[65536];
	long ms = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	struct timespec ts;

	while (read(0, buf, sizeof(buf)) > 0)
		;
	if (ms > 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	return write(1, out, sizeof(out) - 1) == (ssize_t)(sizeof(out) - 1) ? 0 : 1;
}
