/*
 * fuzz_jsonio: json_reader_next() over any byte stream, the way every
 * program reads stdin: documents until the end or the first error. A small
 * document cap is used on odd inputs so the cap's path is reached too.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "jsonio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct json_reader r;
	json_t *doc;
	int fd, rc;

	/* The reader reads a descriptor, as it reads stdin. */
	if (size == 0 || (fd = memfd_create("fuzz", 0)) < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return 0;
	}
	json_reader_init_fd(&r, fd, size % 3 == 0);
	if (size % 2)
		r.max_doc = 64;
	/* A file is always readable: the nonblocking reader never waits. */
	while ((rc = json_reader_next(&r, &doc, &err)) == 1) {
		if (!json_is_object(doc))
			__builtin_trap();
		json_decref(doc);
	}
	if (rc < 0 && (!err.msg || (err.status != 65 && err.status != 66)))
		__builtin_trap();
	orch_error_release(&err);
	json_reader_release(&r);
	close(fd);
	return 0;
}
