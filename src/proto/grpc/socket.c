/* The listening unix socket (containerd's sys.GetLocalListener behaviour, made atomic): parent directory
 * 0711, socket 0660, a stale socket replaced, an answering one refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "grpc-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/error.h"

static int mkdir_parents(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        strcpy(sa->sun_path, path);
        return 0;
}

/* 0: path free or a stale socket, -EADDRINUSE: someone answers, other -errno: not a socket etc. */
static int probe_existing(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        struct sockaddr_un sa;
        int r = unix_addr(path, &sa);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return -EADDRINUSE;
        if (errno == ECONNREFUSED || errno == ENOENT)
                return 0;
        return errno == EAGAIN ? -EADDRINUSE : -errno; /* EAGAIN: a live listener with a full backlog */
}

int grpc_unix_listen(const char *path, int *ret_fd, struct error **err)
{
        struct sockaddr_un sa, tmp_sa;
        int r;

        if (path[0] != '/')
                return error_set(err, EINVAL, "grpc: socket path %s must be absolute", path);
        r = unix_addr(path, &sa);
        if (r < 0)
                return error_set(err, -r, "grpc: socket path %s", path);
        _cleanup_free_ char *dir = xstrdup(path);
        *strrchr(dir, '/') = 0;
        if (dir[0]) {
                r = mkdir_parents(dir, 0711);
                if (r < 0)
                        return error_set(err, -r, "grpc: creating socket directory %s", dir);
        }
        r = probe_existing(path);
        if (r == -EADDRINUSE)
                return error_set(err, EADDRINUSE, "grpc: listen unix %s", path);
        if (r < 0)
                return error_set(err, -r, "grpc: socket path %s", path);

        /* Bind under a temporary name, fix the mode, then rename over the path: the socket never appears
         * with the wrong permissions, and a stale file is replaced atomically. */
        _cleanup_free_ char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
        if (unix_addr(tmp, &tmp_sa) < 0) {
                /* No room in sun_path for the temporary name: replace the stale file in place. */
                free(tmp);
                tmp = NULL;
                (void)unlink(path);
                tmp_sa = sa;
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return error_set(err, errno, "grpc: socket");
        const char *bound = tmp ? tmp : path;
        if (tmp)
                (void)unlink(tmp);
        if (bind(fd, (struct sockaddr *)&tmp_sa, sizeof(tmp_sa)) < 0)
                return error_set(err, errno, "grpc: bind %s", bound);
        if (chmod(bound, 0660) < 0 || listen(fd, 512) < 0 || (tmp && rename(tmp, path) < 0)) {
                r = errno;
                (void)unlink(bound);
                return error_set(err, r, "grpc: listen %s", path);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}
