/* Task/container calls shared by run.c, tasks.c and containers.c (thin wrappers over the blocking client). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "github.com/containerd/containerd/api/types/mount.pb-c.h"
#include "proto/grpc/grpc.h"
#include "cli/cli.h"
#include "util/error.h"

extern const struct cli_command cli_containers_create_command;

/* --env-file: one K=V per line, blank lines and '#' comments skipped; appended to *env. */
int cli_run_read_env_file(const char *path, char ***env, struct error **err);
int cli_run_snapshot_remove(struct grpc_client *c, const char *snapshotter, const char *key, struct error **err);
int cli_run_container_delete(struct grpc_client *c, const char *id, struct error **err);
int cli_run_task_delete(struct grpc_client *c, const char *id, uint32_t *ret_status, struct error **err);
int cli_run_task_kill(struct grpc_client *c, const char *id, const char *exec_id, int sig, bool all,
                      struct error **err);
int cli_run_task_start(struct grpc_client *c, const char *id, const char *exec_id, struct error **err);
/* Opens Tasks.Wait as a stream (sent now, answered at exit) so Start can follow on the same connection. */
int cli_run_wait_open(struct grpc_client *c, const char *id, const char *exec_id, struct grpc_stream **ret,
                      struct error **err);
/* Installs the forwarding handlers (or SIGWINCH only with a terminal). */
void cli_run_catch_signals(bool tty);
/* Waits for the Wait answer, forwarding caught signals with Tasks.Kill / resizing the pty meanwhile. */
int cli_run_wait(struct grpc_client *c, struct grpc_stream *s, const char *id, const char *exec_id, bool tty,
                 uint32_t *ret_status, struct error **err);
/* containerd's mount.WithReadonlyTempMount for reading the user database: *ret_dir is a new temp dir with the
 * rootfs mounted read-only (root only). */
int cli_run_temp_mount(Containerd__Types__Mount **mounts, size_t n, char **ret_dir, struct error **err);
/* commands.WritePidFile: "<pid>" written to .<name> beside path (O_EXCL), renamed over it. */
int cli_run_write_pid_file(const char *path, uint32_t pid, struct error **err);
/* Unmounts, removes and frees dir (NULL is a no-op). */
void cli_run_temp_unmount(char *dir);
