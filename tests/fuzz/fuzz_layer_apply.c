/* Applies arbitrary bytes as a layer (any compression, tar) into <tmp>/root and checks that nothing appears
 * in <tmp> besides the root: whatever the tar says, nothing escapes.
 * With bit 1 of the first byte set, the input is two layers (bytes 1-4: little-endian length of the first):
 * the first is applied into <tmp>/lower, the second into <tmp>/root as an overlay upper dir over it, which
 * exercises the copy-up of hard links to lower files; the lower tree must come out unchanged. */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
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

/* A fingerprint of a tree (names, types, sizes, link counts, modes), to see that it did not change. */
static uint64_t tree_hash(int dfd, uint64_t h, unsigned depth)
{
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || depth > 64)
                return fd < 0 ? h : (close(fd), h);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return h;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                uint64_t x = (uint64_t)st.st_mode * 31 + (uint64_t)st.st_nlink * 131 + (uint64_t)st.st_ino * 7;
                if (!S_ISDIR(st.st_mode))
                        x += (uint64_t)st.st_size * 1009;
                for (const char *c = de->d_name; *c; c++)
                        x = x * 33 + (uint8_t)*c;
                h += x * 0x9e3779b97f4a7c15ull; /* order-independent */
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0) {
                                h = tree_hash(sub, h, depth + 1);
                                close(sub);
                        }
                }
        }
        closedir(d);
        return h;
}

static int memfd_of(const uint8_t *data, size_t size)
{
        int fd = memfd_create("fuzz", MFD_CLOEXEC);
        if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
                abort();
        return fd;
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
        if (rfd < 0)
                abort();
        bool two = size >= 5 && (data[0] & 2);
        char lower[sizeof(parent) + 8];
        const char *parents[] = {lower, NULL};
        uint64_t lower_before = 0;
        if (two) {
                size_t n1 = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24;
                if (n1 > size - 5)
                        n1 = size - 5;
                snprintf(lower, sizeof(lower), "%s/lower", parent);
                if (mkdirat(pfd, "lower", 0755) < 0)
                        abort();
                int lfd = openat(pfd, "lower", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int b1 = memfd_of(data + 5, n1);
                struct image_apply_options lo = o;
                lo.overlay = false;
                if (lfd < 0)
                        abort();
                (void)image_apply_layer(lfd, b1, &lo, &res, &err);
                error_free(&err);
                close(b1);
                lower_before = tree_hash(lfd, 0, 0);
                data += 5 + n1;
                size -= 5 + n1;
                o.overlay = true;
                o.parents = parents;
                int bfd = memfd_of(data, size);
                (void)image_apply_layer(rfd, bfd, &o, &res, &err);
                error_free(&err);
                close(bfd);
                if (tree_hash(lfd, 0, 0) != lower_before) {
                        fprintf(stderr, "the lower layer changed while applying the upper one\n");
                        abort();
                }
                close(lfd);
        } else {
                int bfd = memfd_of(data, size);
                (void)image_apply_layer(rfd, bfd, &o, &res, &err);
                error_free(&err);
                close(bfd);
        }
        close(rfd);

        DIR *d = fdopendir(dup(pfd));
        struct dirent *de;
        if (!d)
                abort();
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "root") &&
                    !(two && strcmp(de->d_name, "lower") == 0)) {
                        fprintf(stderr, "escaped the root: %s/%s\n", parent, de->d_name);
                        abort();
                }
        }
        closedir(d);
        rm_rf_at(pfd, "root");
        if (two)
                rm_rf_at(pfd, "lower");
        close(pfd);
        if (rmdir(parent) < 0) {
                fprintf(stderr, "%s not empty after cleanup\n", parent);
                abort();
        }
        return 0;
}
