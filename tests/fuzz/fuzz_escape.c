/*
 * fuzz_escape: escape_term_dup(), with and without ESCAPE_TERM_LINES, and
 * escape_html() on any bytes. What reaches a terminal or a page must be
 * well-formed UTF-8 with no control character (C0, DEL, C1) but a line
 * feed or tab where lines are kept, and no markup; escape_utf8_len()
 * must never read past its N bytes or call a sequence longer than them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fuzz.h"

/* Trap unless S (N bytes) is well-formed UTF-8 with no control
 * character, a line feed and a tab allowed when LINES. */
static void check_text(const char *s, size_t n, int lines)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	int k;

	while (i < n) {
		if ((k = escape_utf8_len(u + i, n - i)) <= 0 || (size_t)k > n - i)
			__builtin_trap();
		if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f) &&
		    !(lines && (u[i] == '\n' || u[i] == '\t')))
			__builtin_trap();
		if (k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0)
			__builtin_trap();
		i += (size_t)k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *out, *page = NULL;
	size_t i, len = 0;
	FILE *fp;
	int k;

	for (i = 0; i < size; i++)
		if ((k = escape_utf8_len(data + i, size - i)) < 0 || (size_t)k > size - i)
			__builtin_trap();
	out = escape_term_dup(s, size, 0);
	check_text(out, strlen(out), 0);
	free(out);
	out = escape_term_dup(s, size, ESCAPE_TERM_LINES);
	check_text(out, strlen(out), 1);
	free(out);
	if (!(fp = open_memstream(&page, &len)))
		abort();
	escape_html(fp, s, size);
	if (fclose(fp) != 0)
		abort();
	if (memchr(page, '<', len) || memchr(page, '>', len) || memchr(page, '"', len) ||
	    memchr(page, '\0', len))
		__builtin_trap();
	free(page);
	return 0;
}
