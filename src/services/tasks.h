/* tasks.v1: the daemon side of tasks. Looks up the container record, and drives the task manager
 * (src/runtime/task_manager.h), which talks to the task's shim over ttrpc. Every call is asynchronous:
 * a slow shim call (Wait blocks until exit) never holds the loop, so Tasks.Start and Tasks.Wait sent
 * together on one connection both proceed (PROTOCOLS.md section 2.1). */
#pragma once

#include "services/services.h"

void services_tasks_register(struct grpc_server *s, struct services_ctx *ctx);
