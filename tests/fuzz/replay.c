/* Replays a libFuzzer corpus without libFuzzer: every file given (or every file in every directory given)
 * is fed once to LLVMFuzzerTestOneInput. Used by `make test` so the corpus and crash reproducers stay
 * regression tests (systemd's fuzz-main.c approach). */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                perror(path);
                return -1;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
                close(fd);
                fprintf(stderr, "%s: unreadable or too large\n", path);
                return -1;
        }
        size_t n = (size_t)st.st_size;
        uint8_t *buf = malloc(n ? n : 1);
        size_t off = 0;
        while (off < n) {
                ssize_t r = read(fd, buf + off, n - off);
                if (r <= 0)
                        break;
                off += (size_t)r;
        }
        close(fd);
        /* A private copy of exactly n bytes, so ASan catches reads past the end. */
        uint8_t *exact = malloc(off ? off : 1);
        memcpy(exact, buf, off);
        free(buf);
        LLVMFuzzerTestOneInput(exact, off);
        free(exact);
        return 0;
}

int main(int argc, char **argv)
{
        int files = 0, failures = 0;
        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        perror(argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failures += run_file(argv[i]) < 0;
                        files++;
                        continue;
                }
                struct dirent **names;
                int n = scandir(argv[i], &names, NULL, alphasort);
                if (n < 0) {
                        perror(argv[i]);
                        return 1;
                }
                for (int k = 0; k < n; k++) {
                        if (names[k]->d_name[0] != '.') {
                                char *p = NULL;
                                if (asprintf(&p, "%s/%s", argv[i], names[k]->d_name) > 0) {
                                        failures += run_file(p) < 0;
                                        files++;
                                }
                                free(p);
                        }
                        free(names[k]);
                }
                free(names);
        }
        printf("replayed %d inputs, %d unreadable\n", files, failures);
        return failures ? 1 : (files ? 0 : 77);
}
