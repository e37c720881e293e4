/* Applies arbitrary bytes as a layer (any compression, tar) into <tmp>/root and checks that nothing appears
 * in <tmp> besides the root: whatever the tar says, nothing escapes. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/apply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rm_rf_at(int dfd, const char *name)
{
        if (unlinkat(dfd, name, 0) == 0)
                return;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        /* Make directories writable again (a layer may chmod 0). */
        (void)fchmod(fd, 0700);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        rm_rf_at(dirfd(d), de->d_name);
        closedir(d);
        (void)unlinkat(dfd, name, AT_REMOVEDIR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char parent[] = "/tmp/krill-fuzz-apply-XXXXXX";
        struct image_apply_options o = {
                .overlay = size > 0 && (data[0] & 1),
                .allow_devices = false,
                .max_bytes = 64u << 20,
                .max_entries = 10000,
        };
        struct error *err = NULL;
        struct image_apply_result res;

        if (!mkdtemp(parent))
                abort();
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0 || mkdirat(pfd, "root", 0755) < 0)
                abort();
        int rfd = openat(pfd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int bfd = memfd_create("fuzz", MFD_CLOEXEC);
        if (rfd < 0 || bfd < 0 || write(bfd, data, size) != (ssize_t)size || lseek(bfd, 0, SEEK_SET) != 0)
                abort();

        (void)image_apply_layer(rfd, bfd, &o, &res, &err);
        error_free(&err);
        close(bfd);
        close(rfd);

        DIR *d = fdopendir(dup(pfd));
        struct dirent *de;
        if (!d)
                abort();
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "root")) {
                        fprintf(stderr, "escaped the root: %s/%s\n", parent, de->d_name);
                        abort();
                }
        }
        closedir(d);
        rm_rf_at(pfd, "root");
        close(pfd);
        if (rmdir(parent) < 0) {
                fprintf(stderr, "%s not empty after cleanup\n", parent);
                abort();
        }
        return 0;
}
