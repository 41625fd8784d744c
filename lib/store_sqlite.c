/*
 * store_sqlite.c - the SQLite engine: one file, WAL, a busy handler that
 * a signal shortens, a commit hook that refuses to write into a file that
 * was deleted or replaced, migrations by PRAGMA user_version.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "orch.h"
#include "store_int.h"
#include "xalloc.h"
#include "banned.h"

/*
 * The busy handler: SQLite's own sleeps (1 ms growing to 100 ms) up to
 * the busy timeout, or, once the program is stopping, up to its bound.
 * Returns 0 to give up (SQLITE_BUSY), 1 to try again.
 */
static int on_busy(void *arg, int count)
{
	static const int delays[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 };
	struct store *s = arg;
	int64_t now = orch_mono_ms(), limit;
	struct timespec ts;
	int d;

	if (count == 0)
		s->busy_since = now;
	limit = s->busy_since + s->busy_ms;
	if (s->stopping && s->stopping(s->stopping_arg)) {
		if (!s->stop_deadline)
			s->stop_deadline = now + STORE_STOP_WAIT_MS;
		if (s->stop_deadline < limit)
			limit = s->stop_deadline;
	}
	if (now >= limit)
		return 0;
	d = delays[count < 12 ? count : 11];
	if (d > limit - now)
		d = (int)(limit - now);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)d * 1000000L;
	/* A signal ends the sleep: the next call looks at it. */
	nanosleep(&ts, NULL);
	return 1;
}

/* Device and inode of PATH into *DEV, *INO: 0, or -1 when it is gone. */
static int file_id(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	*dev = sb.st_dev;
	*ino = sb.st_ino;
	return 0;
}

/* Whether PATH is still the file DEV, INO. */
static int same_file(const char *path, dev_t dev, ino_t ino)
{
	dev_t d;
	ino_t i;

	return file_id(path, &d, &i) == 0 && d == dev && i == ino;
}

/* SQLite's commit hook: nonzero turns the commit into a rollback. */
static int on_commit(void *arg)
{
	struct store *s = arg;

	if (!s->lost && (!same_file(s->path, s->dev, s->ino) ||
			 (s->wal_ino && !same_file(s->wal, s->wal_dev, s->wal_ino))))
		s->lost = 1;
	return s->lost;
}

/* Remember which files were opened (store.h: checked at each commit). */
static void remember_files(struct store *s)
{
	char *real;

	if (file_id(s->path, &s->dev, &s->ino) != 0)
		return;
	/* SQLite puts the -wal beside the file a symbolic link names. */
	real = realpath(s->path, NULL);
	s->wal = xasprintf("%s-wal", real ? real : s->path);
	free(real);
	if (file_id(s->wal, &s->wal_dev, &s->wal_ino) != 0)
		s->wal_ino = 0;
	sqlite3_commit_hook(s->db, on_commit, s);
}

/* mkdir -p the directory part of PATH, mode 0700 for what it creates. */
static int make_parent_dirs(const char *path, struct orch_error *err)
{
	char *dir = xstrdup(path);
	char *p;
	int rc = 0;

	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			rc = orch_error_set(err, ORCH_EX_NOINPUT,
					    "cannot create directory '%s': %s",
					    dir, strerror(errno));
			break;
		}
		*p = '/';
	}
	free(dir);
	return rc;
}

/* Create PATH 0600 if it does not exist, so SQLite never creates it 0644. */
static int create_private_file(const char *path, struct orch_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return orch_error_set(err, ORCH_EX_NOINPUT,
				      "cannot create database '%s': %s", path,
				      strerror(errno));
	close(fd);
	return 0;
}

int lite_error(struct store *s, struct orch_error *err, const char *what)
{
	int code = s->db ? sqlite3_errcode(s->db) & 0xff : SQLITE_ERROR;
	const char *msg = s->db ? sqlite3_errmsg(s->db) : "no database";
	int status, sys = s->db ? sqlite3_system_errno(s->db) : 0;

	if (s->lost)
		return orch_error_set(err, ORCH_EX_NOINPUT, "%s%sthe database '%s' was deleted or"
				      " replaced while in use: nothing more is written to it",
				      what ? what : "", what ? ": " : "", s->path);
	switch (code) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL:
		status = ORCH_EX_TEMPFAIL;
		break;
	case SQLITE_IOERR:
		/* A write that found the disk or the quota full: try again. */
		status = sys == ENOSPC || sys == EDQUOT ? ORCH_EX_TEMPFAIL : ORCH_EX_SOFTWARE;
		break;
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		status = ORCH_EX_NOINPUT;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		status = ORCH_EX_DATAERR;
		break;
	default:
		status = ORCH_EX_SOFTWARE;
	}
	if (!what)
		return orch_error_set(err, status, "%s", msg);
	return orch_error_set(err, status, "%s: %s", what, msg);
}

int lite_is_constraint(const struct store *s)
{
	return s->db && (sqlite3_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT;
}

struct stmt *lite_prepare(struct store *s, const char *sql, struct orch_error *err)
{
	sqlite3_stmt *lite = NULL;
	struct stmt *st;

	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &lite, NULL) != SQLITE_OK) {
		lite_error(s, err, NULL);
		sqlite3_finalize(lite);
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->s = s;
	st->lite = lite;
	return st;
}

int lite_exec(struct store *s, const char *sql, struct orch_error *err)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return lite_error(s, err, NULL);
	return 0;
}

int lite_in_transaction(struct store *s)
{
	return !sqlite3_get_autocommit(s->db);
}

static int pragma_int(struct store *s, const char *sql, int *out, struct orch_error *err)
{
	int64_t v;

	if (store_pragma(s, sql, &v, err) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

/*
 * Whether the foreign keys of the store all hold: PRAGMA foreign_key_check
 * gives no row. 0, or -1 with ERR (65).
 */
static int foreign_keys_hold(struct store *s, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "PRAGMA foreign_key_check", err);
	int rc;

	if (!st)
		return -1;
	rc = stmt_step(st);
	store_finish(s, st);
	if (rc == STMT_ROW)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "database '%s': a foreign key does not hold after the migration",
				      s->path);
	return rc == STMT_DONE ? 0 : store_error(s, err, NULL);
}

/* migrate()'s transaction, from the database's VERSION on. */
static int migrate_in(struct store *s, int version, struct orch_error *err)
{
	int v;
	char *sql;

	if (store_begin(s, err) != 0)
		return -1;
	/* Re-read inside the write lock: another process may have migrated. */
	if (pragma_int(s, "PRAGMA user_version", &version, err) != 0)
		goto fail;
	for (v = version; v < schema_sqlite_count; v++) {
		if (store_exec(s, schema_sqlite[v], err) != 0)
			goto fail;
		/* PRAGMA takes no parameters; v is an int we control. */
		sql = xasprintf("PRAGMA user_version = %d", v + 1);
		if (store_exec(s, sql, err) != 0) {
			free(sql);
			goto fail;
		}
		free(sql);
	}
	if (foreign_keys_hold(s, err) != 0)
		goto fail;
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}

static int migrate(struct store *s, struct orch_error *err)
{
	int version, rc;

	if (pragma_int(s, "PRAGMA user_version", &version, err) != 0)
		return -1;
	if (version > schema_sqlite_count)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "database '%s' has schema version %d, newer than this orch supports (%d)",
				      s->path, version, schema_sqlite_count);
	if (version == schema_sqlite_count)
		return 0;
	/* Rebuilding a table (migration 8) must not cascade its drop, nor
	 * rewrite the triggers that name it: keys off, legacy ALTER TABLE on,
	 * outside the transaction (they cannot change inside one), and the
	 * keys checked before the commit. */
	if (store_exec(s, "PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON", err) != 0)
		return -1;
	rc = migrate_in(s, version, err);
	if (store_exec(s, "PRAGMA foreign_keys = ON; PRAGMA legacy_alter_table = OFF",
		       rc == 0 ? err : NULL) != 0 && rc == 0)
		rc = -1;
	return rc;
}

/* octet_length(X): X's length in bytes, PostgreSQL's name, which SQLite
 * has only from 3.43 on (Debian 12's is 3.40). */
static void octet_length(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
		sqlite3_result_null(ctx);
	else
		sqlite3_result_int64(ctx, sqlite3_value_bytes(argv[0]));
}

/* What the modules' SQL calls by PostgreSQL's names. */
static int define_portable_functions(struct store *s)
{
	return sqlite3_create_function_v2(s->db, "octet_length", 1,
					  SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
					  NULL, octet_length, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int lite_open(struct store *s, unsigned flags, struct orch_error *err)
{
	const char *path = s->path;
	struct stat sb;
	int rc;

	if (stat(path, &sb) != 0) {
		if (errno != ENOENT || !(flags & STORE_CREATE))
			return orch_error_set(err, ORCH_EX_NOINPUT,
					      errno == ENOENT
					      ? "no database at '%s' (run 'orch-stack init')"
					      : "cannot open database '%s': %s",
					      path, strerror(errno));
		if (make_parent_dirs(path, err) != 0 ||
		    create_private_file(path, err) != 0)
			return -1;
	} else if (S_ISDIR(sb.st_mode)) {
		return orch_error_set(err, ORCH_EX_NOINPUT,
				      "cannot open database '%s': is a directory", path);
	} else if (!S_ISREG(sb.st_mode)) {
		return orch_error_set(err, ORCH_EX_NOINPUT,
				      "cannot open database '%s': not a regular file", path);
	} else if ((flags & STORE_CREATE) && S_ISREG(sb.st_mode) && sb.st_size == 0 &&
		   (sb.st_mode & 077) && chmod(path, 0600) != 0) {
		/* An empty file (touch, mktemp) becomes the database here, and
		 * SQLite gives -wal and -shm its mode: make it private first. */
		return orch_error_set(err, ORCH_EX_NOINPUT,
				      "cannot make database '%s' private: %s", path,
				      strerror(errno));
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK)
		return lite_error(s, err, "cannot open database");
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_handler(s->db, on_busy, s);
	if (store_exec(s, "PRAGMA foreign_keys = ON", err) != 0)
		goto fail_prefix;
	/* journal_mode answers with a row; a read-only file fails here too. */
	{
		struct stmt *st = store_prepare(s, "PRAGMA journal_mode = WAL", err);

		if (!st)
			goto fail_prefix;
		rc = stmt_step(st);
		store_finish(s, st);
		if (rc != STMT_ROW) {
			store_error(s, err, NULL);
			goto fail_prefix;
		}
	}
	if (store_exec(s, "PRAGMA synchronous = NORMAL", err) != 0)
		goto fail_prefix;
	if (define_portable_functions(s) != 0) {
		lite_error(s, err, "defining SQL functions");
		goto fail_prefix;
	}
	if (migrate(s, err) != 0)
		goto fail_prefix;
	remember_files(s);
	return 0;
fail_prefix:
	if (err && err->msg && !strstr(err->msg, path))
		orch_error_prefix(err, "'%s'", path);
	return -1;
}

/* Open the existing database at S->path without creating or migrating it
 * (store_open_side). */
int lite_open_plain(struct store *s, int busy_ms, struct orch_error *err)
{
	/* Never SQLITE_OPEN_CREATE: orch-agent makes no database. */
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		return lite_error(s, err, "cannot open database");
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_timeout(s->db, busy_ms);
	return 0;
}

void lite_close(struct store *s)
{
	sqlite3_close_v2(s->db);
	s->db = NULL;
	free(s->wal);
	s->wal = NULL;
}

