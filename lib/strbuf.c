#include <string.h>

#include "strbuf.h"
#include "xalloc.h"
#include "banned.h"

void strbuf_add(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->len + n + 1 > sb->cap) {
		while (sb->len + n + 1 > sb->cap)
			sb->cap = sb->cap ? 2 * sb->cap : 256;
		sb->buf = xreallocarray(sb->buf, sb->cap, 1);
	}
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}
