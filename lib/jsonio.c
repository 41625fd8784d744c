#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonio.h"
#include "orch.h"
#include "xalloc.h"

#define READ_CHUNK 65536

void json_reader_init_fd(struct json_reader *r, int fd, int nonblock)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->nonblock = nonblock;
	r->line = 1;
	r->max_doc = ORCH_MAX_DOCUMENT;
}

void json_reader_init(struct json_reader *r, FILE *fp)
{
	json_reader_init_fd(r, fileno(fp), 0);
}

/* Whether a read of FD would return at once (data, end of file, error). */
static int readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 0) != 0;
}

void json_reader_release(struct json_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = r->start = 0;
}

/* Append up to READ_CHUNK bytes; returns bytes read, 0 at EOF, -1 on
 * error, -2 when a nonblocking reader would wait. */
static long fill(struct json_reader *r, struct orch_error *err)
{
	ssize_t n;

	if (r->eof)
		return 0;
	if (r->start > 0 && r->start == r->len) {
		r->len = r->start = 0;
	} else if (r->start > r->cap / 2) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->cap - r->len < READ_CHUNK) {
		r->cap = r->cap ? r->cap * 2 : READ_CHUNK * 2;
		r->buf = xreallocarray(r->buf, r->cap, 1);
	}
	if (r->nonblock && !readable(r->fd))
		return -2;
	if (r->before_wait && !readable(r->fd))
		r->before_wait(r->wait_arg);
	do
		n = read(r->fd, r->buf + r->len, READ_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return orch_error_set(err, ORCH_EX_NOINPUT, "read error: %s", strerror(errno));
	r->len += (size_t)n;
	if (n == 0)
		r->eof = 1;
	return (long)n;
}

/*
 * Find where the object or array starting at buf[start] ends, reading more
 * input as needed. Strings are skipped so brackets inside them do not count.
 * Returns the length, 0 if input ended first, -1 on error, -2 when a
 * nonblocking reader would wait (the scan starts again next time).
 */
static long scan_document(struct json_reader *r, struct orch_error *err)
{
	size_t i = r->start;
	long depth = 0;
	int in_string = 0, escaped = 0;

	for (;;) {
		for (; i < r->len; i++) {
			char c = r->buf[i];

			if (in_string) {
				if (escaped)
					escaped = 0;
				else if (c == '\\')
					escaped = 1;
				else if (c == '"')
					in_string = 0;
				continue;
			}
			if (c == '"') {
				in_string = 1;
			} else if (c == '{' || c == '[') {
				depth++;
			} else if (c == '}' || c == ']') {
				if (--depth == 0)
					return (long)(i + 1 - r->start);
			}
		}
		if (i - r->start > r->max_doc)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "line %ld: document larger than %zu bytes",
					      r->line, r->max_doc);
		{
			size_t offset = i - r->start;
			long n = fill(r, err);

			if (n < 0)
				return n;
			if (n == 0)
				return 0;
			i = r->start + offset;
		}
	}
}

static int skip_space(struct json_reader *r, struct orch_error *err)
{
	for (;;) {
		while (r->start < r->len) {
			char c = r->buf[r->start];

			if (c == '\n')
				r->line++;
			else if (c != ' ' && c != '\t' && c != '\r')
				return 1;
			r->start++;
		}
		long n = fill(r, err);
		if (n <= 0)
			return (int)n;
	}
}

/* Jansson's message for JERR, without the names of its own flags. */
static const char *json_error_text(const json_error_t *jerr)
{
	if (strncmp(jerr->text, "\\u0000 is not allowed", 21) == 0)
		return "\\u0000 is not allowed in a string";
	return jerr->text;
}

int json_reader_next(struct json_reader *r, json_t **out, struct orch_error *err)
{
	json_error_t jerr;
	long n, line;
	json_t *v;
	size_t i;
	int rc;

	*out = NULL;
	rc = skip_space(r, err);
	if (rc == -2)
		return 2;
	if (rc <= 0)
		return rc;
	line = r->line;
	if (r->buf[r->start] != '{')
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "line %ld: expected a JSON object", line);
	n = scan_document(r, err);
	if (n == -2)
		return 2;
	if (n < 0)
		return -1;
	if (n == 0)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "line %ld: unexpected end of input inside a document",
				      line);
	if ((size_t)n > r->max_doc)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "line %ld: document larger than %zu bytes",
				      line, r->max_doc);
	v = json_loadb(r->buf + r->start, (size_t)n, 0, &jerr);
	if (!v)
		return orch_error_set(err, ORCH_EX_DATAERR, "line %ld: %s",
				      line + (jerr.line > 0 ? jerr.line - 1 : 0),
				      json_error_text(&jerr));
	for (i = r->start; i < r->start + (size_t)n; i++)
		if (r->buf[i] == '\n')
			r->line++;
	r->start += (size_t)n;
	r->doc_line = line;
	*out = v;
	return 1;
}

int json_write(FILE *fp, const json_t *v, unsigned flags)
{
	size_t jflags = (flags & JSON_OUT_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT;

	if (json_dumpf(v, fp, jflags) != 0 || fputc('\n', fp) == EOF)
		return -1;
	return 0;
}
