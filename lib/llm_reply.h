/*
 * llm_reply.h - reading what a chat completions server answered with
 * 2xx: the envelope (JSON, or an event stream sent although "stream":
 * false was asked) and the actions document in its message, as tolerantly
 * as the servers that speak the API differ:
 *
 *   content        a string, an array of text parts, or null with a
 *                  "refusal"
 *   around JSON    a <think>...</think> prefix, a Markdown fence, prose
 *                  before a fenced block or before the object
 *   thinking       the document's own, else the message's "reasoning" or
 *                  "reasoning_content", else the <think> text
 *
 * Pure functions of the bytes: no I/O, no state, so any loop that drives
 * a turn (orch-agent's, or an event loop's) can call them.
 */
#ifndef ORCH_LLM_REPLY_H
#define ORCH_LLM_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

/*
 * The completion envelope of a 2xx body (new): BODY (LEN bytes) parsed as
 * JSON, or, when CONTENT_TYPE is text/event-stream or the body starts
 * with an SSE field, its "data:" chunks assembled into the one envelope
 * they stand for ({"model", "choices": [{"message": {"content",
 * "reasoning", "refusal"}, "finish_reason"}], "usage"}), *STREAM set to 1.
 * NULL with ERR (65): "the response is not JSON: ...", "the event stream
 * carries an error: MESSAGE", "an event stream with no completion in it".
 */
json_t *llm_reply_envelope(const char *body, size_t len, const char *content_type,
			   int *stream, struct orch_error *err);

/*
 * What the model wrote in ENVELOPE's choices[0].message, as one string
 * (new): a string content, or the text parts of an array content joined;
 * NULL when there is none (content null or absent).
 */
char *llm_reply_text(const json_t *envelope);

/*
 * The actions document in ENVELOPE (new, with "thinking" and "actions",
 * passed by actions_validate()), or NULL with ERR (65) saying what is
 * wrong, in words fit to feed back to the model: "the model refused:
 * TEXT", "the reply was cut off at the limit of MAX_TOKENS tokens; keep it
 * shorter", "the reply is not JSON: ...", or the validator's message.
 */
json_t *llm_reply_document(const json_t *envelope, int64_t max_tokens,
			   struct orch_error *err);

#endif
