/*
 * cassette.h - provider calls recorded to a file and served back, so an
 * LLM run can be repeated without the network (ORCH_LLM_CASSETTE).
 *
 * The file is NDJSON, one request and its answer a line, appended as it
 * happens (one write(2) of the whole line, under flock(2), so processes
 * recording at once never interleave). A line:
 *
 *   {"key": HEX, "request": {"method", "path", "body"},
 *    "response": {"status", "headers": {...}, "body" | "body_hex",
 *                 "failure"?, "error"?}}
 *
 * key is the SHA-256 of "METHOD PATH\n" and the canonical request body:
 * the JSON with sorted keys, without the members that carry the time
 * (see cassette_key()); never the host, the port, a header or the key.
 * request is that canonical body, for reading and diffs. Of the answer,
 * only the headers orch reads are kept (content-type, retry-after,
 * x-ratelimit-*); a body that is not UTF-8 is kept as hex; a transport
 * failure (a timeout, a connection cut) is kept as failure and error.
 * Every run of an API key is replaced by "[redacted]" before writing.
 *
 * Replaying serves, for each request, the first recording of its key not
 * served yet in this process, in the file's order.
 */
#ifndef ORCH_CASSETTE_H
#define ORCH_CASSETTE_H

#include <stddef.h>

#include "error.h"
#include "http.h"

#define CASSETTE_KEY_LEN 64 /* hex digits of a key */

enum cassette_mode {
	CASSETTE_REPLAY,     /* serve recordings; none: fail, never the network */
	CASSETTE_RECORD,     /* call the provider, append every call */
	CASSETTE_RECORD_NEW, /* serve what is recorded, record the rest */
};

struct cassette_entry {
	char key[CASSETTE_KEY_LEN + 1]; /* the request's key */
	struct http_response resp;      /* owned: what to serve (latency 0) */
	char *error;                    /* owned: a failure's message, or NULL */
	int served;                     /* served already in this process */
};

struct cassette {
	char *path;                   /* owned */
	enum cassette_mode mode;      /* what to do */
	struct cassette_entry *v;     /* owned: the recordings, in file order */
	size_t n;                     /* entries in v */
	int fd;                       /* appending to path, or -1 */
};

/*
 * The cassette of $ORCH_LLM_CASSETTE in the mode of
 * $ORCH_LLM_CASSETTE_MODE (record, replay, record-new; replay when
 * unset) in *OUT, or NULL when the first is unset or empty. Returns 0, or
 * -1 with ERR: 64 for a bad mode, 66 for a file that cannot be opened
 * (replay needs one), 65 for a line that is not a recording.
 */
int cassette_from_env(struct cassette **out, struct orch_error *err);

/* The same for PATH and MODE (NULL: replay). A new cassette, or NULL. */
struct cassette *cassette_open(const char *path, const char *mode,
			       struct orch_error *err);

/*
 * Parse DATA (LEN bytes of NDJSON) into C's entries, added to those it
 * has. NAME names the file in errors. 0, or -1 with ERR (65) naming the
 * line.
 */
int cassette_parse(struct cassette *c, const char *name, const char *data, size_t len,
		   struct orch_error *err);

void cassette_free(struct cassette *c);

/*
 * The key of a request (METHOD to URL with BODY of LEN bytes) in KEY, and
 * its canonical body (new string) in *CANON when CANON is not NULL. The
 * canonical body of JSON is compact with sorted keys, and leaves out, at
 * any depth and inside a JSON document that a string ends with (the
 * orch.context of a user message), every member named "now" or ending in
 * "_at" or "_time" whose value is a number: they are the time of the run,
 * which a replay cannot repeat. Any other body is taken as it is.
 */
void cassette_key(const char *method, const char *url, const char *body, size_t len,
		  char key[CASSETTE_KEY_LEN + 1], char **canon);

/*
 * Serve the next recording of KEY into RESP (released first). Returns 1
 * and the recorded answer: 0 for a response, -1 for a failure with ERR
 * (69) its message, in *RC; 0 when there is none left.
 */
int cassette_play(struct cassette *c, const char *key, struct http_response *resp,
		  int *rc, struct orch_error *err);

/*
 * Append the call of KEY (METHOD, URL, BODY of LEN bytes) and its answer
 * RESP (ERROR its failure's message, or NULL) to C's file, every run of
 * API_KEY (NULL: none) redacted. 0, or -1 with ERR (70).
 */
int cassette_record(struct cassette *c, const char *key, const char *method,
		    const char *url, const char *body, size_t len,
		    const struct http_response *resp, const char *error,
		    const char *api_key, struct orch_error *err);

#endif
