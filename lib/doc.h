/*
 * doc.h - reading fields of the pipeline's JSON documents with errors that
 * name the field. Every getter returns 0 on success or -1 with ERR set to
 * status 65 and a message like "'priority' must be an integer from 0 to 10".
 * Values handed back are borrowed from the document.
 */
#ifndef ORCH_DOC_H
#define ORCH_DOC_H

#include <stdint.h>
#include <jansson.h>

#include "error.h"

/*
 * Check that DOC is an object with "type": TYPE and "version": 1. The error
 * names what was found ("expected an orch.graph document, got
 * 'orch.snapshot'"; "unsupported orch.graph version 2").
 */
int doc_check_type(const json_t *doc, const char *type, struct orch_error *err);

/* Required members. */
int doc_int(const json_t *obj, const char *key, int64_t min, int64_t max,
	    int64_t *out, struct orch_error *err);
int doc_string(const json_t *obj, const char *key, const char **out,
	       struct orch_error *err);
int doc_bool(const json_t *obj, const char *key, int *out, struct orch_error *err);
/* Borrowed object or array member. */
int doc_object(const json_t *obj, const char *key, json_t **out,
	       struct orch_error *err);
int doc_array(const json_t *obj, const char *key, json_t **out,
	      struct orch_error *err);

/* Optional members: absent or null leaves *OUT as DEF and succeeds. */
int doc_opt_int(const json_t *obj, const char *key, int64_t min, int64_t max,
		int64_t def, int64_t *out, struct orch_error *err);
int doc_opt_string(const json_t *obj, const char *key, const char *def,
		   const char **out, struct orch_error *err);

/*
 * Set OBJ's member KEY to the text S, or null when S is NULL. 0, or -1
 * with ERR (65, "KEY of WHAT is not valid UTF-8") when S is not UTF-8:
 * stored text that should be UTF-8 and is not is bad data, said so.
 */
int doc_set_text(json_t *obj, const char *key, const char *s, const char *what,
		 struct orch_error *err);

/*
 * Set OBJ's member KEY to LEN bytes of S (NULL: null) as a string, each
 * ill-formed UTF-8 byte replaced by U+FFFD: for bytes no one promised were
 * text, such as an agent's stderr.
 */
void doc_set_bytes(json_t *obj, const char *key, const char *s, size_t len);

#endif
