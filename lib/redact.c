#include <string.h>

#include "redact.h"
#include "strbuf.h"
#include "xalloc.h"
#include "banned.h"

#define MIN_KEY 4 /* shorter keys are not looked for: they would hide words */

/* Bytes S[0..LEFT) and P[0..PLEFT) have in common at their start. */
static size_t common(const char *s, size_t left, const char *p, size_t pleft)
{
	size_t i, n = left < pleft ? left : pleft;

	for (i = 0; i < n && s[i] == p[i]; i++)
		;
	return i;
}

/*
 * The bytes to hide at S (LEFT bytes from there): the longest run that is
 * a substring of KEY, when it is long enough to hide; else 0.
 */
static size_t key_run(const char *s, size_t left, const char *key)
{
	size_t klen = strlen(key), best = 0, m, j;

	if (klen < MIN_KEY)
		return 0;
	if (klen < REDACT_MIN_RUN)
		return left >= klen && memcmp(s, key, klen) == 0 ? klen : 0;
	for (j = 0; j + REDACT_MIN_RUN <= klen && klen - j > best; j++) {
		if (key[j] != s[0])
			continue;
		if ((m = common(s, left, key + j, klen - j)) > best)
			best = m;
	}
	return best >= REDACT_MIN_RUN ? best : 0;
}

/*
 * The character at S (LEFT > 0 bytes): its length in *N, and what to
 * show for it: 0 for itself, else the byte to show instead.
 */
static char character(const unsigned char *s, size_t left, size_t *n)
{
	size_t need, i;
	unsigned cp;

	*n = 1;
	if (s[0] < 0x20 || s[0] == 0x7f)
		return ' ';
	if (s[0] < 0x80)
		return 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4, cp = s[0] & 0x07;
	else
		return '?';
	if (left < need)
		return '?';
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return '?';
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, past U+10FFFF, and the C1 controls
	 * (a terminal may take U+009B as CSI). */
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
		return '?';
	*n = need;
	return 0;
}

/* The bytes of the longest key run at S, of LEFT bytes, or 0. */
static size_t any_key_run(const char *s, size_t left, const char *const *keys, size_t n)
{
	size_t k, run, best = 0;

	for (k = 0; k < n; k++)
		if (keys[k] && (run = key_run(s, left, keys[k])) > best)
			best = run;
	return best;
}

char *redact_keys(const char *s, size_t len, const char *const *keys, size_t n,
		  size_t *out_len)
{
	struct strbuf o = STRBUF_INIT;
	size_t i = 0, best;

	strbuf_add(&o, "", 0);
	while (i < len) {
		if ((best = any_key_run(s + i, len - i, keys, n))) {
			strbuf_add(&o, REDACT_MARK, strlen(REDACT_MARK));
			i += best;
		} else {
			strbuf_add(&o, s + i, 1);
			i++;
		}
	}
	*out_len = o.len;
	return o.buf;
}

char *redact_text(const char *s, size_t len, const char *const *keys, size_t n,
		  size_t max)
{
	struct strbuf o = STRBUF_INIT;
	size_t i = 0, best, clen;
	char shown;

	strbuf_add(&o, "", 0);
	while (i < len) {
		if ((best = any_key_run(s + i, len - i, keys, n))) {
			if (max && o.len + strlen(REDACT_MARK) > max)
				goto cut;
			strbuf_add(&o, REDACT_MARK, strlen(REDACT_MARK));
			i += best;
			continue;
		}
		shown = character((const unsigned char *)s + i, len - i, &clen);
		if (max && o.len + (shown ? 1 : clen) > max)
			goto cut;
		if (shown)
			strbuf_add(&o, &shown, 1);
		else
			strbuf_add(&o, s + i, clen);
		i += clen;
	}
	return o.buf;
cut:
	strbuf_add(&o, "...", 3);
	return o.buf;
}
