/* Pure parts of krill tasks shared with tests and containers.c. */
#pragma once

#include <stdio.h>

#include "github.com/containerd/containerd/api/types/metrics.pb-c.h"
#include "github.com/containerd/containerd/api/types/task/task.pb-c.h"
#include "proto/grpc/grpc.h"
#include "util/error.h"

/* "RUNNING", ... like containerd's Status.String(). */
const char *cli_task_status_name(int status);
/* "9", "KILL", "SIGKILL", "sigkill" -> 9; -EINVAL otherwise. */
int cli_parse_signal(const char *s);
/* Tasks.Get (exec_id may be NULL): *ret to free, *ret_proc inside it. */
int cli_task_get(struct grpc_client *c, const char *id, const char *exec_id, ProtobufCMessage **ret,
                 Containerd__V1__Types__Process **ret_proc, struct error **err);
/* ctr tasks metrics' table for an io.containerd.cgroups.v1.Metrics payload. */
int cli_tasks_print_metrics(FILE *out, const Containerd__Types__Metric *m, struct error **err);

#include <stdbool.h>

#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
/* ctr containers info's JSON (4-space indent); spec_only: the decoded spec alone. Sorts ct's labels. */
char *cli_container_info_json(Containerd__Services__Containers__V1__Container *ct, bool spec_only);
