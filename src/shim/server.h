/* The long-running shim server: containers, processes, stdio pumps, events and cgroups, all driven by one
 * epoll loop (loop.c) on one thread. Internal to src/shim. */
#pragma once

#include "krill-api.h"
#include "shim/loop.h"
#include "shim/rpc.h"
#include "shim/shim.h"

struct shim_server;
struct shim_container;

/* ---------- io.c: stdio ---------- */

/* One copy direction: src -> dst with splice (read/write fallback). Owned by its process. */
struct shim_pump;

struct shim_stdio {
        bool terminal;
        int container_fds[3];       /* handed to the runtime, closed by shim_stdio_after_start */
        struct shim_pump *pumps[3]; /* stdin, stdout, stderr (stdout only for a terminal) */
        int console_fd;             /* pty master, or -1 */
        int console_listen_fd;      /* console socket, or -1 */
        int tty_in_fd, tty_out_fd;  /* terminal: the stdin FIFO and the output, pumped once the pty exists */
        char *console_path;
        pid_t logger_pid; /* binary:// logger, or 0 */
        int pending;      /* output pumps still copying */
        void (*drained_cb)(void *data);
        void *drained_data;
};

/* Opens the stdio URIs and prepares the container's side (pipes or a console socket under dir). */
int shim_stdio_open(struct shim_loop *loop, struct shim_stdio *io, const char *in, const char *out, const char *errp,
                    bool terminal, const char *dir, const char *ns, const char *id, struct error **err);
/* After the runtime created the process: closes the container ends, receives the pty master (terminal),
 * and starts copying. */
int shim_stdio_after_start(struct shim_loop *loop, struct shim_stdio *io, struct error **err);
/* Calls cb once every output pump reached EOF (immediately if none). */
void shim_stdio_on_drained(struct shim_stdio *io, void (*cb)(void *), void *data);
void shim_stdio_close_stdin(struct shim_stdio *io);
int shim_stdio_resize(struct shim_stdio *io, unsigned width, unsigned height, struct error **err);
void shim_stdio_close(struct shim_stdio *io);

/* ---------- events.c: forwarding to the daemon ---------- */

struct shim_events;
struct shim_events *shim_events_new(struct shim_loop *loop, const char *address, const char *ns);
/* Queues an event (the message is packed now; borrowed). */
void shim_events_publish(struct shim_events *ev, const char *topic, const ProtobufCMessage *event);
bool shim_events_idle(const struct shim_events *ev);
void shim_events_free(struct shim_events *ev);

/* ---------- cgroup.c: stats and OOM ---------- */

struct shim_cgroup;
/* Finds the cgroup of pid (v1 memory controller or the v2 unified path). NULL if not found. */
struct shim_cgroup *shim_cgroup_for_pid(pid_t pid);
/* Packs the metrics into a new Any (io.containerd.cgroups.v1.Metrics or v2). */
int shim_cgroup_stats(struct shim_cgroup *cg, Google__Protobuf__Any **ret, struct error **err);
/* Starts watching for OOM kills; cb runs on the loop for each one. */
int shim_cgroup_watch_oom(struct shim_cgroup *cg, struct shim_loop *loop, void (*cb)(void *), void *data);
void shim_cgroup_free(struct shim_cgroup *cg);
/* Moves the calling process into path (Options.ShimCgroup), relative to the cgroup root. */
int shim_cgroup_enter(const char *path, struct error **err);

/* ---------- mount.c ---------- */

int shim_mount_rootfs(Containerd__Types__Mount **mounts, size_t n, const char *target, struct error **err);
void shim_unmount_rootfs(const char *target);

/* ---------- service.c ---------- */

struct shim_config {
        char *ns;
        char *id;
        char *address;       /* -address */
        char *ttrpc_address; /* TTRPC_ADDRESS */
        char *socket_path;
        char *runtime_root; /* default runc root (<dir of address>/runc) */
        bool debug;
        Containerd__Runc__V1__Options *start_options; /* from start's stdin, may be NULL */
};

/* Runs the server on listen_fd (takes ownership) until Shutdown. Returns the process exit code. */
int shim_server_run(struct shim_config *cfg, int listen_fd);
