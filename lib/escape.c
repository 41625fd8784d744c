#include <limits.h>
#include <string.h>

#include "escape.h"
#include "xalloc.h"
#include "banned.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

int escape_utf8_len(const unsigned char *s, size_t n)
{
	size_t need, i;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return (int)need;
}

/* Whether the well-formed character at P (N bytes) is a control: C0, DEL
 * or C1 (U+0080 to U+009F, which terminals also obey). */
static int is_control(const unsigned char *p, int n)
{
	if (n == 1)
		return *p < 0x20 || *p == 0x7f;
	return n == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

/* Where escape_term's walk writes: a stream, a buffer, or nowhere. */
struct term_sink {
	FILE *fp;  /* borrowed, or NULL */
	char *buf; /* borrowed, or NULL: room enough, see escape_term_dup() */
	size_t n;  /* bytes written to buf */
};

static void sink_put(struct term_sink *k, const unsigned char *p, size_t n)
{
	if (k->fp)
		fwrite(p, 1, n, k->fp);
	else if (k->buf)
		memcpy(k->buf + k->n, p, n);
	k->n += n;
}

/* escape_term()'s walk. Never writes more bytes than it reads. */
static int term_walk(struct term_sink *k, const char *s, size_t len, int max,
		     unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	int cols = 0, n;

	while (p < end && cols < max) {
		n = escape_utf8_len(p, (size_t)(end - p));
		if (n == 0)
			sink_put(k, (const unsigned char *)"?", 1);
		else if ((flags & ESCAPE_TERM_LINES) && (*p == '\n' || *p == '\t'))
			sink_put(k, p, 1);
		else if ((flags & ESCAPE_TERM_LINES) && *p == '\r' &&
			 p + 1 < end && p[1] == '\n')
			cols--; /* a CRLF is one line break */
		else if (is_control(p, n))
			sink_put(k, (const unsigned char *)" ", 1);
		else
			sink_put(k, p, (size_t)n);
		p += n ? n : 1;
		cols++;
	}
	return cols;
}

int escape_term(FILE *fp, const char *s, size_t len, int max, unsigned flags)
{
	struct term_sink k = { fp, NULL, 0 };

	return term_walk(&k, s, len, max, flags);
}

char *escape_term_dup(const char *s, size_t len, unsigned flags)
{
	struct term_sink k = { NULL, xmalloc(len + 1), 0 };

	term_walk(&k, s, len, INT_MAX, flags);
	k.buf[k.n] = '\0';
	return k.buf;
}

/*
 * The text targets' common walk: a line break (LF, CRLF or CR) is written
 * as BREAK, another control character as a space, an ill-formed byte as
 * U+FFFD; each other byte goes to PUT, which writes it or its escape.
 */
static void walk_text(FILE *fp, const char *s, const char *brk,
		      void (*put)(FILE *fp, unsigned char c))
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	int n;

	while (left > 0) {
		n = escape_utf8_len(p, left);
		if (n == 0) {
			fputs(REPLACEMENT, fp);
			n = 1;
		} else if (*p == '\r' || *p == '\n') {
			if (*p == '\r' && left > 1 && p[1] == '\n')
				n = 2;
			fputs(brk, fp);
		} else if (is_control(p, n)) {
			putc(' ', fp);
		} else if (n == 1) {
			put(fp, *p);
		} else {
			fwrite(p, 1, (size_t)n, fp);
		}
		p += n;
		left -= (size_t)n;
	}
}

static void put_dot(FILE *fp, unsigned char c)
{
	if (c == '"' || c == '\\')
		putc('\\', fp);
	putc(c, fp);
}

void escape_dot(FILE *fp, const char *s)
{
	walk_text(fp, s, "\\n", put_dot);
}

static void put_mermaid(FILE *fp, unsigned char c)
{
	switch (c) {
	case '"':
		fputs("#quot;", fp);
		break;
	case '#':
		fputs("#35;", fp);
		break;
	case '<':
		fputs("#lt;", fp);
		break;
	case '>':
		fputs("#gt;", fp);
		break;
	case '&':
		fputs("#amp;", fp);
		break;
	case '\\':
		fputs("#92;", fp);
		break;
	default:
		putc(c, fp);
	}
}

void escape_mermaid(FILE *fp, const char *s)
{
	walk_text(fp, s, "<br>", put_mermaid);
}

void escape_mermaid_title(FILE *fp, const char *s)
{
	putc('"', fp);
	walk_text(fp, s, " ", put_dot);
	putc('"', fp);
}

void escape_html(FILE *fp, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	int n;

	while (p < end) {
		n = escape_utf8_len(p, (size_t)(end - p));
		if (n == 0) {
			fputs(REPLACEMENT, fp);
			n = 1;
		} else if (n == 1 && (*p == '\t' || *p == '\n' || *p == '\r')) {
			putc(*p, fp);
		} else if (is_control(p, n)) {
			fputs(REPLACEMENT, fp);
		} else if (*p == '&') {
			fputs("&amp;", fp);
		} else if (*p == '<') {
			fputs("&lt;", fp);
		} else if (*p == '>') {
			fputs("&gt;", fp);
		} else if (*p == '"') {
			fputs("&quot;", fp);
		} else if (*p == '\'') {
			fputs("&#39;", fp);
		} else {
			fwrite(p, 1, (size_t)n, fp);
		}
		p += n;
	}
}
