/*
 * config.h - the configuration file and command words.
 *
 * The file ($XDG_CONFIG_HOME/orch/config, else ~/.config/orch/config, or
 * --config FILE) holds "key = value" lines; '#' starts a comment line;
 * blank lines are ignored; the last setting of a key wins. Keys are
 * dotted lower-case words ("agent.planner", "exec.timeout").
 *
 *   # orch configuration
 *   agent.planner = orch-agent --role planner --model llama-3.1-8b-instant
 *   exec.timeout = 600000
 *
 * A command value is split into words like a shell would split plain
 * words and quotes ('single', "double", backslash escapes) and nothing
 * more: no variables, globs or redirections, and never a shell.
 */
#ifndef ORCH_CONFIG_H
#define ORCH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct config_entry {
	char *key;    /* owned */
	char *value;  /* owned */
	char *origin; /* owned: "FILE:LINE", "--agent", "default", ... */
};

struct config {
	struct config_entry *entries; /* owned; in the order each key was
					 first set */
	size_t n;                     /* entries used */
	size_t alloc;                 /* entries allocated */
	size_t *slots;                /* owned: a hash of the keys, each slot
					 an entry's index + 1, 0 when free */
	size_t nslots;                /* slots allocated: 0 or a power of 2 */
};

#define CONFIG_INIT { NULL, 0, 0, NULL, 0 }

/*
 * The largest configuration file read (1 MiB; orch's own keys take a few
 * KiB): a larger one is error 65, before it costs anything.
 */
#define CONFIG_MAX_BYTES (1024 * 1024)

void config_release(struct config *c);

/* Add KEY = VALUE, overriding an earlier setting of KEY in place (its
 * value and origin replaced). Constant time, so reading a file is linear
 * in its size. */
void config_set(struct config *c, const char *key, const char *value,
		const char *origin);

/* The last value set for KEY (borrowed), or NULL. */
const char *config_get(const struct config *c, const char *key);
/* Its origin (borrowed), or NULL. */
const char *config_origin(const struct config *c, const char *key);

/*
 * KEY as an integer within [MIN, MAX]: 0 with *OUT set (left alone when
 * KEY is not set), or -1 with ERR (65) naming the key and its origin.
 */
int config_get_int(const struct config *c, const char *key, int64_t min,
		   int64_t max, int64_t *out, struct orch_error *err);

/*
 * Read PATH into C. A missing file is an error (66) unless MISSING_OK.
 * A malformed line is error 65 "PATH:LINE: expected 'key = value'"; a file
 * larger than CONFIG_MAX_BYTES is error 65 too.
 */
int config_load_file(struct config *c, const char *path, int missing_ok,
		     struct orch_error *err);

/* The default file's path (new string), or NULL when HOME is unset too. */
char *config_default_path(void);

/*
 * The settings orch reads, with their defaults and ranges: the one table
 * orch-exec, orch-detect, orch-decide and `orch-stack config` share, so
 * they cannot drift.
 */
enum config_kind {
	CONFIG_NUMBER,  /* a whole number within [min, max] */
	CONFIG_COMMAND, /* words for execvp (words_split), never a shell */
	CONFIG_LIST,    /* comma-separated items, each trimmed; may be empty */
	CONFIG_DECIMAL, /* a decimal number ("0.7") within [min, max] */
	CONFIG_TEXT,    /* any text of at least min bytes */
	CONFIG_URL,     /* an http:// or https:// URL */
	CONFIG_MAP,     /* comma-separated NAME=N items, N within [min, max];
			   may be empty */
};

struct config_known {
	const char *key;       /* "exec.timeout" */
	const char *def;       /* the default, as it would be written in the file */
	enum config_kind kind;
	int64_t min, max;      /* the range of a number */
};

extern const struct config_known config_known[];
extern const size_t config_known_count;

/* The entry of KEY in config_known (borrowed), or NULL. */
const struct config_known *config_known_find(const char *key);

/*
 * K's value in C, checked as its reader checks it: a number within range,
 * a command that splits into words, a list with no empty item. 0 (also
 * when C does not set it), or -1 with ERR (65) naming the key and its
 * origin.
 */
int config_check(const struct config *c, const struct config_known *k,
		 struct orch_error *err);

/*
 * VALUE of K, of one of the kinds from CONFIG_DECIMAL on, checked as its
 * reader reads it: 0, or -1 with ERR (65) naming the key and its origin.
 * config_check() calls it for those kinds.
 */
int config_check_value(const struct config *c, const struct config_known *k,
		       const char *value, struct orch_error *err);

/*
 * The items of TEXT, a comma-separated list set for KEY (as config_list
 * splits it; new, free with words_free), *N of them; an empty item is
 * error 65 naming KEY and its origin.
 */
char **config_items(const struct config *c, const char *key, const char *text,
		    size_t *n, struct orch_error *err);

/*
 * The known number KEY: C's value, else the table's default, checked
 * against the table's range. 0 with *OUT set, or -1 with ERR (65).
 */
int config_number(const struct config *c, const char *key, int64_t *out,
		  struct orch_error *err);

/*
 * The known list KEY (C's value, else the default) as a NULL-terminated
 * array of trimmed items (new; free with words_free), *N of them. An
 * empty value is no items; an empty item ("a,,b") is error 65.
 */
char **config_list(const struct config *c, const char *key, size_t *n,
		   struct orch_error *err);

/*
 * The known decimal KEY (C's value, else the default), checked against
 * the table's range. 0 with *OUT set, or -1 with ERR (65).
 */
int config_decimal(const struct config *c, const char *key, double *out,
		   struct orch_error *err);

/* The known text or URL KEY: C's value, else the default (borrowed). */
const char *config_text(const struct config *c, const char *key);

/*
 * NAME's number in the known map KEY (C's value, else the default): 1
 * with *OUT set, 0 when the map does not name it, -1 with ERR (65) when
 * the map is malformed.
 */
int config_map_number(const struct config *c, const char *key, const char *name,
		      int64_t *out, struct orch_error *err);

/*
 * Load the configuration a program reads: PATH (from --config; it must
 * exist), else $ORCH_CONFIG (which must exist too), else the default file
 * when there is one. 0, or -1 with ERR.
 * Each key of the file that config_known does not hold is reported, once
 * and in file order, through config_warn as "FILE:LINE: unknown key 'KEY'"
 * (a typo is otherwise silently a default).
 */
int config_load(struct config *c, const char *path, struct orch_error *err);

/*
 * Where config_load() reports unknown keys: a line without the program
 * name or a newline. lib/ never prints, so the default, set in cli.c
 * (the one part of lib/ that prints), writes the line as cli_warn()
 * does; NULL says nothing. A program that lists unknown keys itself
 * (orch-stack config) sets it to NULL.
 */
typedef void config_warn_fn(const char *line);
extern config_warn_fn *config_warn;

/*
 * Split S into a NULL-terminated argv (new; free with words_free). An
 * unterminated quote or an empty command is error 65.
 */
char **words_split(const char *s, struct orch_error *err);
void words_free(char **argv);

#endif
