#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "term.h"
#include "banned.h"

int term_columns(const char *s)
{
	return escape_term(NULL, s, strlen(s), INT_MAX, 0);
}

int term_cut(FILE *fp, const char *s, int width, int pad)
{
	size_t len = strlen(s);
	int n;

	if (width < 3)
		width = 3;
	n = escape_term(NULL, s, len, width + 1, 0);
	if (n <= width) {
		escape_term(fp, s, len, n, 0);
	} else {
		escape_term(fp, s, len, width - 3, 0);
		fputs("...", fp);
		n = width;
	}
	if (pad)
		fprintf(fp, "%*s", width - n, "");
	return pad ? width : n;
}

const char *term_utc(int64_t ms, char buf[TERM_TIME_SIZE])
{
	time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0));
	struct tm tm;

	if (gmtime_r(&t, &tm) && strftime(buf, TERM_TIME_SIZE, "%Y-%m-%d %H:%M:%S", &tm) > 0)
		return buf;
	/* At most 20 characters: it always fits. */
	snprintf(buf, TERM_TIME_SIZE, "%lld", (long long)ms);
	return buf;
}

const char *term_span(int64_t ms, char buf[TERM_TIME_SIZE])
{
	static const struct {
		int64_t ms;
		char unit;
	} units[] = { { 86400000, 'd' }, { 3600000, 'h' }, { 60000, 'm' }, { 1000, 's' } };
	size_t i;

	if (ms < 0)
		ms = 0;
	for (i = 0; i < sizeof(units) / sizeof(units[0]) - 1; i++)
		if (ms >= units[i].ms)
			break;
	snprintf(buf, TERM_TIME_SIZE, "%lld%c", (long long)(ms / units[i].ms), units[i].unit);
	return buf;
}

const char *term_duration(int64_t ms, char buf[TERM_TIME_SIZE])
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(buf, TERM_TIME_SIZE, "%lldms", (long long)ms);
	else if (ms < 10000)
		snprintf(buf, TERM_TIME_SIZE, "%lld.%llds", (long long)(ms / 1000),
			 (long long)(ms % 1000 / 100));
	else if (ms < 60000)
		snprintf(buf, TERM_TIME_SIZE, "%llds", (long long)(ms / 1000));
	else if (ms < 3600000)
		snprintf(buf, TERM_TIME_SIZE, "%lldm%llds", (long long)(ms / 60000),
			 (long long)(ms % 60000 / 1000));
	else
		snprintf(buf, TERM_TIME_SIZE, "%lldh%lldm", (long long)(ms / 3600000),
			 (long long)(ms % 3600000 / 60000));
	return buf;
}

size_t term_wrap(const char *s, size_t len, int width, size_t *next)
{
	const unsigned char *p = (const unsigned char *)s, *start = p, *end = p + len;
	size_t after_space = 0;
	int n = 0, k;

	while (p < end && n < width) {
		k = escape_utf8_len(p, (size_t)(end - p));
		p += k ? k : 1;
		n++;
		if (p[-1] == ' ')
			after_space = (size_t)(p - start);
	}
	if (p < end && *p == ' ') {
		*next = (size_t)(p - start) + 1;
		return (size_t)(p - start);
	}
	if (p < end && after_space) {
		*next = after_space;
		return after_space - 1;
	}
	*next = (size_t)(p - start);
	return *next;
}

void term_block(FILE *fp, const char *s, size_t len, int indent, int width)
{
	const char *end = s + len, *nl;
	size_t line, piece, next;
	int room = width <= 0 ? INT_MAX : width - indent > 10 ? width - indent : 10;

	while (s < end) {
		nl = memchr(s, '\n', (size_t)(end - s));
		line = nl ? (size_t)(nl - s) : (size_t)(end - s);
		if (line > 0 && s[line - 1] == '\r')
			line--;
		do {
			piece = term_wrap(s, line, room, &next);
			fprintf(fp, "%*s", indent, "");
			escape_term(fp, s, piece, INT_MAX, ESCAPE_TERM_LINES);
			putc('\n', fp);
			s += next;
			line -= next;
		} while (line > 0);
		s = nl ? nl + 1 : end;
	}
}
