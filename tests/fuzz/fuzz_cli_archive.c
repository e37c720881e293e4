/* Fuzzes the client-side image archive reader (krill images import): random bytes as a (maybe compressed)
 * tar must never crash, and every member name handed to the sink must be relative and free of "..". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink_begin(void *ud, const char *name, int64_t sz, const char *expected, struct error **err)
{
        (void)ud;
        (void)sz;
        (void)expected;
        (void)err;
        if (name[0] == '/' || strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 || strstr(name, "/../") ||
            (strlen(name) >= 3 && strcmp(name + strlen(name) - 3, "/..") == 0))
                abort();
        return 0;
}

static int sink_data(void *ud, const void *buf, size_t len, struct error **err)
{
        (void)ud;
        (void)buf;
        (void)len;
        (void)err;
        return 0;
}

static int sink_end(void *ud, const char *digest, struct error **err)
{
        (void)ud;
        (void)digest;
        (void)err;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int fd = memfd_create("fuzz_cli_archive", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
                close(fd);
                return 0;
        }
        const struct cli_archive_sink sink = {sink_begin, sink_data, sink_end, NULL};
        struct cli_archive_index idx = {0};
        struct error *err = NULL;
        if (cli_archive_import(fd, &sink, &idx, &err) == 0)
                cli_archive_index_done(&idx);
        error_free(&err);
        close(fd);
        return 0;
}
