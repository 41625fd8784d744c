/*
 * instant - the benchmarks' agent: read standard input to its end, wait
 * MS milliseconds (default 0), print an actions document that does the
 * task in the context and nothing more (README.md, "What a run must do"):
 * a reply to the communicator's user message, the builder's todo
 * completed. The same binary runs under orch-exec, ninja and make (whose
 * empty input asks nothing of it).
 *
 * The ids are found by their text, "todo":{"id":N and "user_message":
 * {"id":N, as orch-exec writes the context: enough for a benchmark, not a
 * JSON parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char in[1 << 22];

/* The number after KEY in the input, or 0. */
static long long id_after(const char *key)
{
	const char *p = strstr(in, key);

	return p ? strtoll(p + strlen(key), NULL, 10) : 0;
}

int main(int argc, char **argv)
{
	long ms = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	long long todo, message;
	char out[256];
	size_t len = 0;
	ssize_t n;
	struct timespec ts;
	int w;

	while ((n = read(0, in + len, sizeof(in) - 1 - len)) > 0)
		len += (size_t)n;
	in[len] = '\0';
	if (ms > 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	todo = id_after("\"todo\":{\"id\":");
	message = id_after("\"user_message\":{\"id\":");
	if (todo)
		w = snprintf(out, sizeof(out),
			     "{\"actions\":[{\"type\":\"complete_todo\",\"id\":%lld}]}\n", todo);
	else if (message)
		w = snprintf(out, sizeof(out),
			     "{\"actions\":[{\"type\":\"reply_user\",\"message_id\":%lld,"
			     "\"content\":\"ok\"}]}\n", message);
	else
		w = snprintf(out, sizeof(out), "{\"actions\":[]}\n");
	if (w < 0 || (size_t)w >= sizeof(out))
		return 1;
	return write(1, out, (size_t)w) == w ? 0 : 1;
}
