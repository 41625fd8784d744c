/*
 * copy.h - a whole store copied into an empty one, on either engine
 * (SQLite to PostgreSQL, back, or to another file), and verified:
 * `orch-stack copy`.
 *
 * The copy never merges: the destination must hold no rows. Every table
 * goes across in one write transaction on the destination, read from one
 * snapshot of the source, in an order the foreign keys accept, ids and
 * all. What the schema's triggers do on the way (the stacks' versions
 * bumped by each child row, the traces' full-text index) is set right or
 * rebuilt by the destination itself. Then each table is counted and
 * checksummed on both stores with the same code, still in the source's
 * snapshot, so a concurrent writer on the source cannot make a faithful
 * copy look wrong.
 */
#ifndef ORCH_COPY_H
#define ORCH_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sha256.h"
#include "store.h"

/* One table as copied and verified. */
struct copy_table {
	const char *name;                   /* static: the table */
	int64_t rows;                       /* rows in the source */
	int64_t dest_rows;                  /* rows in the destination after the copy */
	char sum[2 * SHA256_LEN + 1];       /* the source's checksum (copy_checksum) */
	char dest_sum[2 * SHA256_LEN + 1];  /* the destination's */
	int verified;                       /* 1: both were computed */
	int ok;                             /* 1: same rows, same checksum */
};

struct copy_report {
	struct copy_table *tables;  /* owned: every table, in copy order */
	size_t ntables;
	int64_t rows;               /* rows copied, all tables */
};

/*
 * Copy every table of SRC into DST (opened with STORE_CREATE) and verify
 * it, filling REP (release it with copy_report_release, also on failure:
 * after a verification failure it says which tables differ). Returns 0
 * when every table verified, else -1 with ERR:
 *   65  DST holds rows ("destination 'X' is not empty (N stacks)"), a
 *       schema version is not STORE_SCHEMA_VERSION, the two stores' tables
 *       have different columns, or a value one engine cannot hold (a
 *       floating-point number, which orch never writes; text with a NUL
 *       or ill-formed UTF-8 bound for PostgreSQL): nothing is written;
 *   70  a table in either store that the copy does not know (a schema
 *       newer than this code), nothing written; or a table whose copy
 *       differs ("copy of TABLE differs: N rows in SRC, M in DST", or
 *       "... checksums differ"), found after the commit: the destination
 *       holds the copy and must be emptied before another;
 *   and the stores' own errors (66, 69, 75 ...).
 */
int copy_store(struct store *src, struct store *dst, struct copy_report *rep,
	       struct orch_error *err);

void copy_report_release(struct copy_report *rep);

/*
 * TABLE's rows in S and their checksum: SHA-256 over the rows in primary
 * key order, each value tagged and length-prefixed (integers as decimal
 * text, text and bytes alike as their bytes, NULL apart from ""), so that
 * the same rows give the same digest on either engine. TABLE must be one
 * the copy knows: -1 with ERR (70) otherwise, or the store's error.
 */
int copy_checksum(struct store *s, const char *table, int64_t *rows,
		  char hex[2 * SHA256_LEN + 1], struct orch_error *err);

#endif
