/* Test helper: runs tests/fake_registry.py (path in FAKE_REGISTRY) and reads its JSON info line. The server
 * exits when its stdin closes. Header-only for the src/image tests. */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct fake_registry {
        pid_t pid;
        int stdin_fd;
        int port;
        json_t *info;
};

static inline int fake_registry_start(struct fake_registry *f, const char *auth)
{
        int in[2], out[2];
        posix_spawn_file_actions_t fa;
        char *argv[] = {(char *)"/usr/bin/python3", (char *)FAKE_REGISTRY, (char *)"--auth", (char *)auth, NULL};
        extern char **environ;
        char line[8192];
        size_t n = 0;
        json_error_t je;

        memset(f, 0, sizeof(*f));
        if (access("/usr/bin/python3", X_OK) < 0)
                return -1;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -1;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        if (posix_spawn(&f->pid, argv[0], &fa, NULL, argv, environ) != 0)
                return -1;
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        f->stdin_fd = in[1];
        while (n < sizeof(line) - 1) {
                ssize_t r = read(out[0], line + n, 1);
                if (r <= 0)
                        break;
                if (line[n] == '\n')
                        break;
                n++;
        }
        close(out[0]);
        line[n] = 0;
        f->info = json_loads(line, 0, &je);
        if (!f->info)
                return -1;
        f->port = (int)json_integer_value(json_object_get(f->info, "port"));
        return 0;
}

static inline const char *fake_registry_str(struct fake_registry *f, const char *key)
{
        return json_string_value(json_object_get(f->info, key));
}

static inline void fake_registry_stop(struct fake_registry *f)
{
        int st;

        if (f->stdin_fd > 0)
                close(f->stdin_fd);
        if (f->pid > 0)
                waitpid(f->pid, &st, 0);
        json_decref(f->info);
        memset(f, 0, sizeof(*f));
}
