/*
 * estimate.h - what an agent run will cost before it runs, in tokens.
 *
 * No tokenizer fits every model orch may talk to, and none is a Debian
 * package: a prompt is taken as one token per ESTIMATE_BYTES_PER_TOKEN
 * bytes of its UTF-8 text, rounded up, which is the usual figure for
 * English and JSON under the BPE tokenizers of the Llama, GPT and Mixtral
 * families (text in other scripts takes more tokens a byte, so fewer
 * bytes a token, and the estimate is low there). The budgets (budget.h)
 * use it to refuse a run whose prompt alone would cross what is left.
 */
#ifndef ORCH_ESTIMATE_H
#define ORCH_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

#define ESTIMATE_BYTES_PER_TOKEN 4

/* The tokens a prompt of BYTES bytes is taken to be: at least 1 for a
 * prompt that is not empty, never overflowing. */
int64_t estimate_prompt_tokens(size_t bytes);

#endif
