/*
 * redact.h - text from outside (a server's error, an echoed request) made
 * fit for a message: every secret hidden, control bytes made harmless,
 * the length bounded, in that order.
 *
 * A proxy or a provider may echo the API key in an error page, whole or
 * cut by its own truncation; a message may be cut again by ours. So the
 * secret is looked for before the cut, and not only whole: any run of
 * REDACT_MIN_RUN or more bytes that also occurs in a key is hidden, so no
 * part of a key long enough to matter survives however the text falls
 * across either cut.
 */
#ifndef ORCH_REDACT_H
#define ORCH_REDACT_H

#include <stddef.h>

#define REDACT_MIN_RUN 8          /* bytes of a key that are never shown */
#define REDACT_MARK "[redacted]"  /* what stands in their place */

/*
 * S (LEN bytes, NULs allowed) as a one-line message (new string):
 * 1. every run of REDACT_MIN_RUN or more bytes that is a substring of one
 *    of the N KEYS (NULL entries and keys shorter than 4 bytes are
 *    skipped; a key shorter than REDACT_MIN_RUN is hidden only whole)
 *    becomes REDACT_MARK;
 * 2. control bytes (C0, DEL, the C1 controls) and bytes that are not
 *    UTF-8 become ' ' or '?', so nothing reaches a terminal as a command;
 * 3. when MAX is not 0 and more than MAX bytes remain, the text is cut
 *    on a character boundary at MAX bytes at the most and "..." appended.
 * The cut is taken on the redacted text, never before it.
 */
char *redact_text(const char *s, size_t len, const char *const *keys, size_t n,
		  size_t max);

/*
 * S (LEN bytes, NULs allowed) with step 1 above only: every run of a key
 * becomes REDACT_MARK, every other byte kept as it is, for text that is
 * stored rather than shown (a recorded reply). New string, its length in
 * *OUT_LEN.
 */
char *redact_keys(const char *s, size_t len, const char *const *keys, size_t n,
		  size_t *out_len);

#endif
