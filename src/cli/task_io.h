/* Client-side task stdio like ctr's cio: FIFOs under a fresh temp dir in the fifo dir, their paths passed to
 * Tasks.Create/Exec, and threads copying our stdin/stdout/stderr to and from them. With a terminal there is
 * no stderr FIFO and our terminal is put in raw mode while the task runs. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <termios.h>

#include "util/error.h"

#define CLI_DEFAULT_FIFO_DIR "/run/krill/fifo"

struct cli_stdio {
        char *dir;    /* the temp dir holding the FIFOs */
        char *stdin_path;
        char *stdout_path;
        char *stderr_path; /* NULL with a terminal */
        bool terminal;
        int in_fd, out_fd, err_fd; /* our side: 0, 1, 2 unless changed before cli_stdio_start */
        /* private */
        pthread_t in_tid, out_tid, err_tid;
        bool in_started, out_started, err_started;
        int in_opened, out_opened, err_opened; /* set (atomically) once a copy thread's open(2) returned */
        int stop[2];                           /* tells the stdin copy to end */
        bool raw;
        struct termios saved;
};

/* The FIFO paths ctr uses: <dir>/<id>-stdin, -stdout, -stderr (for an exec the process id). New strings. */
void cli_stdio_paths(const char *dir, const char *id, bool terminal, char **ret_in, char **ret_out,
                     char **ret_err);
/* mkdtemp under fifo_dir (created 0700 if missing) and mkfifo the paths. */
int cli_stdio_new(const char *fifo_dir, const char *id, bool terminal, struct cli_stdio **ret, struct error **err);
/* Starts the copy threads (call after Tasks.Create/Exec returned: the shim holds the other ends). Sets our
 * terminal raw when terminal and stdin is a tty. */
int cli_stdio_start(struct cli_stdio *s, struct error **err);
/* Waits for the output copies to drain (the process exited and the shim closed its ends), restores the
 * terminal, removes the FIFOs and the dir, frees. A NULL s is a no-op. */
void cli_stdio_free(struct cli_stdio *s);
/* Frees s but leaves the FIFOs in place (ctr run -d leaves them for `tasks attach`). NULL is a no-op. */
void cli_stdio_leave(struct cli_stdio *s);
/* ctr's cio.NewAttach on a task's existing FIFO paths (from Tasks.Get): paths that are not FIFOs are skipped.
 * cli_stdio_start copies, cli_stdio_free drains and removes the FIFOs and their dir if it is left empty. */
int cli_stdio_attach(const char *in, const char *out, const char *err, bool terminal, struct cli_stdio **ret);
/* Window size of our stdin terminal; false if stdin is not a terminal. */
bool cli_stdio_winsize(unsigned *ret_width, unsigned *ret_height);
