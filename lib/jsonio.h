/*
 * jsonio.h - reading a stream of JSON documents and writing NDJSON.
 *
 * Input is NDJSON or any stream of JSON objects separated by white space
 * (pretty-printed documents included). Each document is capped at
 * ORCH_MAX_DOCUMENT bytes; a larger one is an error, never truncated.
 */
#ifndef ORCH_JSONIO_H
#define ORCH_JSONIO_H

#include <stdio.h>
#include <jansson.h>

#include "error.h"

struct json_reader {
	int fd;            /* borrowed; read with read(2), never stdio, so a
			      document is handed on as soon as it has come */
	int nonblock;      /* json_reader_next() returns 2 instead of waiting */
	void (*before_wait)(void *arg); /* or NULL: called before a read that
			      would wait (to flush what was written so far) */
	void *wait_arg;    /* borrowed; handed to before_wait */
	char *buf;         /* owned; bytes read but not yet consumed */
	size_t len;        /* bytes valid in buf */
	size_t cap;        /* bytes allocated in buf */
	size_t start;      /* where the next document starts in buf */
	long line;         /* input line of buf[start], from 1 */
	long doc_line;     /* line the last document returned began on */
	size_t max_doc;    /* size cap of one document */
	int eof;           /* the input reached its end */
};

/* Read from FP's descriptor (the caller closes FP; nothing must have
 * been read from it through stdio). */
void json_reader_init(struct json_reader *r, FILE *fp);

/* Read from descriptor FD; with NONBLOCK, json_reader_next() never waits
 * for input (the caller polls FD). */
void json_reader_init_fd(struct json_reader *r, int fd, int nonblock);
void json_reader_release(struct json_reader *r);

/*
 * Read the next document into *out (a new reference, always an object).
 * Returns 1 with a document, 0 at end of input, 2 when a nonblocking
 * reader has no whole document yet, -1 with ERR set (status 65 for bad
 * data, prefixed "line N: "; 66 for a read error).
 */
int json_reader_next(struct json_reader *r, json_t **out, struct orch_error *err);

enum json_out_flags {
	JSON_OUT_PRETTY = 1 << 0, /* indent by two spaces */
};

/* Write V and a newline to FP. Returns 0, or -1 on a write error. */
int json_write(FILE *fp, const json_t *v, unsigned flags);

#endif
