/*
 * fuzz_cassette: cassette_parse() on any bytes, as a cassette file a
 * person edited or a disk cut short may hold; then every recording it
 * took served back by its key, and cassette_key() on the bytes as a
 * request body. A file that is not a cassette must fail with 65 and a
 * message; one that is must serve each of its recordings once, a
 * failure with 69 and its message; a key is always 64 hex digits, and
 * the same body always gives the same key and canonical body.
 */
#include <stdlib.h>
#include <string.h>

#include "cassette.h"
#include "fuzz.h"
#include "xalloc.h"

static void check_key(const char *key)
{
	size_t i;

	if (strlen(key) != CASSETTE_KEY_LEN)
		__builtin_trap();
	for (i = 0; i < CASSETTE_KEY_LEN; i++)
		if (!strchr("0123456789abcdef", key[i]))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct cassette *c = xcalloc(1, sizeof(*c));
	char key[CASSETTE_KEY_LEN + 1], again[CASSETTE_KEY_LEN + 1], *canon, *canon2;
	size_t i;
	int rc;

	c->fd = -1;
	c->mode = CASSETTE_REPLAY;
	if (cassette_parse(c, "fuzz.ndjson", (const char *)data, size, &err) != 0) {
		if (!err.msg || err.status != 65)
			__builtin_trap();
		orch_error_release(&err);
	} else {
		for (i = 0; i < c->n; i++) {
			check_key(c->v[i].key);
			/* Each recording is served, once, by its key. */
			memcpy(key, c->v[i].key, sizeof(key));
			if (cassette_play(c, key, &resp, &rc, &err) != 1)
				__builtin_trap();
			if (rc != 0 && (!err.msg || err.status != 69))
				__builtin_trap();
			orch_error_release(&err);
			if (resp.body == NULL || resp.body[resp.len] != '\0')
				__builtin_trap();
		}
		if (c->n && cassette_play(c, c->v[0].key, &resp, &rc, &err) != 0)
			__builtin_trap();
	}
	http_response_release(&resp);
	cassette_free(c);
	cassette_key("POST", "http://127.0.0.1/v1/chat/completions", (const char *)data, size,
		     key, &canon);
	cassette_key("POST", "http://127.0.0.1/v1/chat/completions", (const char *)data, size,
		     again, &canon2);
	check_key(key);
	if (strcmp(key, again) != 0 || strcmp(canon, canon2) != 0)
		__builtin_trap();
	free(canon);
	free(canon2);
	return 0;
}
