/* The container's cgroup: metrics for Stats (containerd's typeurls io.containerd.cgroups.v1.Metrics and
 * io.containerd.cgroups.v2.Metrics) and OOM notification (v1: eventfd on memory.oom_control; v2: inotify on
 * memory.events, comparing the oom_kill counter, as conmon does). The cgroup is found from
 * /proc/<init pid>/cgroup, so it works whatever cgroupsPath or driver the runtime used. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "shim/server.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

struct shim_cgroup {
        int version;
        char *memory, *cpuacct, *cpu, *pids; /* v1 directories */
        char *unified;                       /* v2 directory */
        int efd;                             /* v1: eventfd, v2: inotify on memory.events */
        struct shim_watch oom_w;
        uint64_t oom_kills;
        void (*oom_cb)(void *);
        void *oom_data;
};

/* Writes s to an existing file without truncation or rename (cgroup and proc files). */
static int shim_write_file_plain(const char *path, const char *s)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0 || write(fd, s, strlen(s)) < 0)
                return -errno;
        return 0;
}

static bool has_controller(const char *list, size_t len, const char *name)
{
        size_t n = strlen(name);
        const char *p = list, *end = list + len;

        while (p < end) {
                const char *c = memchr(p, ',', (size_t)(end - p));
                size_t l = c ? (size_t)(c - p) : (size_t)(end - p);
                if (l == n && memcmp(p, name, n) == 0)
                        return true;
                p += l + 1;
        }
        return false;
}

struct shim_cgroup *shim_cgroup_for_pid(pid_t pid)
{
        _cleanup_free_ char *path = xasprintf("/proc/%d/cgroup", (int)pid), *data = NULL;
        struct shim_cgroup *cg;
        struct statfs sfs;
        char *line, *save = NULL;

        if (shim_read_file(path, 1 << 16, &data, NULL, NULL) < 0)
                return NULL;
        cg = xcalloc(1, sizeof(*cg));
        cg->efd = -1;
        for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                size_t clen;
                if (!c2)
                        continue;
                clen = (size_t)(c2 - c1 - 1);
                if (clen == 0) {
                        if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
                                cg->unified = xasprintf("/sys/fs/cgroup%s", c2 + 1);
                        continue;
                }
                if (has_controller(c1 + 1, clen, "memory") && !cg->memory)
                        cg->memory = xasprintf("/sys/fs/cgroup/%.*s%s", (int)clen, c1 + 1, c2 + 1);
                if (has_controller(c1 + 1, clen, "cpuacct") && !cg->cpuacct)
                        cg->cpuacct = xasprintf("/sys/fs/cgroup/%.*s%s", (int)clen, c1 + 1, c2 + 1);
                if (has_controller(c1 + 1, clen, "cpu") && !cg->cpu)
                        cg->cpu = xasprintf("/sys/fs/cgroup/%.*s%s", (int)clen, c1 + 1, c2 + 1);
                if (has_controller(c1 + 1, clen, "pids") && !cg->pids)
                        cg->pids = xasprintf("/sys/fs/cgroup/%.*s%s", (int)clen, c1 + 1, c2 + 1);
        }
        cg->version = cg->memory ? 1 : cg->unified ? 2 : 0;
        if (cg->version == 0) {
                shim_cgroup_free(cg);
                return NULL;
        }
        return cg;
}

static char *read_small(const char *dir, const char *file)
{
        _cleanup_free_ char *p = NULL;
        char *data = NULL;

        if (!dir)
                return NULL;
        p = xasprintf("%s/%s", dir, file);
        if (shim_read_file(p, 1 << 20, &data, NULL, NULL) < 0)
                return NULL;
        return data;
}

static uint64_t read_u64(const char *dir, const char *file)
{
        _cleanup_free_ char *s = read_small(dir, file);

        if (!s || strncmp(s, "max", 3) == 0)
                return 0;
        return strtoull(s, NULL, 10);
}

/* Fills the uint64 fields of msg named like the keys of a "key value" file; aliases map kernel names to
 * the proto's field names (pgpgin -> pg_pg_in). */
static void fill_kv(ProtobufCMessage *msg, const char *data, const char *const *aliases)
{
        _cleanup_free_ char *copy = xstrdup(data);
        char *line, *save = NULL;

        for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *sp = strchr(line, ' ');
                const ProtobufCFieldDescriptor *f;
                const char *name = line;
                if (!sp)
                        continue;
                *sp = '\0';
                for (const char *const *a = aliases; a && *a; a += 2)
                        if (strcmp(a[0], line) == 0)
                                name = a[1];
                f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
                if (f && f->type == PROTOBUF_C_TYPE_UINT64 && f->label != PROTOBUF_C_LABEL_REPEATED)
                        *(uint64_t *)((char *)msg + f->offset) = strtoull(sp + 1, NULL, 10);
        }
}

static const char *const v1_aliases[] = {
    "pgpgin",
    "pg_pg_in",
    "pgpgout",
    "pg_pg_out",
    "pgfault",
    "pg_fault",
    "pgmajfault",
    "pg_maj_fault",
    "total_pgpgin",
    "total_pg_pg_in",
    "total_pgpgout",
    "total_pg_pg_out",
    "total_pgfault",
    "total_pg_fault",
    "total_pgmajfault",
    "total_pg_maj_fault",
    "hierarchical_memsw_limit",
    "hierarchical_swap_limit",
    NULL,
};

static Io__Containerd__Cgroups__V1__MemoryEntry *mem_entry(const char *dir, const char *prefix)
{
        _cleanup_free_ char *u = xasprintf("%s.usage_in_bytes", prefix), *l = xasprintf("%s.limit_in_bytes", prefix),
                            *m = xasprintf("%s.max_usage_in_bytes", prefix), *f = xasprintf("%s.failcnt", prefix);
        Io__Containerd__Cgroups__V1__MemoryEntry *e = xmalloc(sizeof(*e));

        io__containerd__cgroups__v1__memory_entry__init(e);
        e->usage = read_u64(dir, u);
        e->limit = read_u64(dir, l);
        e->max = read_u64(dir, m);
        e->failcnt = read_u64(dir, f);
        return e;
}

static void pack_any(const ProtobufCMessage *m, const char *type_url, Google__Protobuf__Any **ret)
{
        Google__Protobuf__Any *any = xmalloc(sizeof(*any));

        google__protobuf__any__init(any);
        any->type_url = xstrdup(type_url);
        any->value.len = protobuf_c_message_get_packed_size(m);
        any->value.data = xmalloc(any->value.len ? any->value.len : 1);
        protobuf_c_message_pack(m, any->value.data);
        *ret = any;
}

static int stats_v1(struct shim_cgroup *cg, Google__Protobuf__Any **ret)
{
        Io__Containerd__Cgroups__V1__Metrics m = IO__CONTAINERD__CGROUPS__V1__METRICS__INIT;
        Io__Containerd__Cgroups__V1__MemoryStat mem = IO__CONTAINERD__CGROUPS__V1__MEMORY_STAT__INIT;
        Io__Containerd__Cgroups__V1__CPUStat cpu = IO__CONTAINERD__CGROUPS__V1__CPUSTAT__INIT;
        Io__Containerd__Cgroups__V1__CPUUsage usage = IO__CONTAINERD__CGROUPS__V1__CPUUSAGE__INIT;
        Io__Containerd__Cgroups__V1__Throttle thr = IO__CONTAINERD__CGROUPS__V1__THROTTLE__INIT;
        Io__Containerd__Cgroups__V1__PidsStat pids = IO__CONTAINERD__CGROUPS__V1__PIDS_STAT__INIT;
        Io__Containerd__Cgroups__V1__MemoryOomControl oom = IO__CONTAINERD__CGROUPS__V1__MEMORY_OOM_CONTROL__INIT;
        _cleanup_free_ char *memstat = read_small(cg->memory, "memory.stat");
        _cleanup_free_ char *percpu = read_small(cg->cpuacct, "cpuacct.usage_percpu");
        _cleanup_free_ char *cpustat = read_small(cg->cpuacct, "cpuacct.stat");
        _cleanup_free_ char *throttle = read_small(cg->cpu, "cpu.stat");
        _cleanup_free_ char *oomctl = read_small(cg->memory, "memory.oom_control");
        _cleanup_free_ uint64_t *per_cpu = NULL;
        size_t n = 0;

        if (memstat)
                fill_kv(&mem.base, memstat, v1_aliases);
        mem.usage = mem_entry(cg->memory, "memory");
        mem.swap = mem_entry(cg->memory, "memory.memsw");
        mem.kernel = mem_entry(cg->memory, "memory.kmem");
        mem.kernel_tcp = mem_entry(cg->memory, "memory.kmem.tcp");
        m.memory = &mem;

        usage.total = read_u64(cg->cpuacct, "cpuacct.usage");
        for (char *p = percpu, *end; p && *p;) {
                uint64_t v = strtoull(p, &end, 10);
                if (end == p)
                        break;
                per_cpu = xreallocarray(per_cpu, n + 1, sizeof(*per_cpu));
                per_cpu[n++] = v;
                p = end;
        }
        usage.per_cpu = per_cpu;
        usage.n_per_cpu = n;
        if (cpustat) {
                long hz = sysconf(_SC_CLK_TCK);
                char *u = strstr(cpustat, "user "), *s = strstr(cpustat, "system ");
                if (hz <= 0)
                        hz = 100;
                if (u)
                        usage.user = strtoull(u + 5, NULL, 10) * (1000000000ull / (uint64_t)hz);
                if (s)
                        usage.kernel = strtoull(s + 7, NULL, 10) * (1000000000ull / (uint64_t)hz);
        }
        if (throttle)
                fill_kv(&thr.base, throttle,
                        (const char *const[]){"nr_periods", "periods", "nr_throttled", "throttled_periods", NULL});
        cpu.usage = &usage;
        cpu.throttling = &thr;
        m.cpu = &cpu;

        pids.current = read_u64(cg->pids, "pids.current");
        pids.limit = read_u64(cg->pids, "pids.max");
        if (cg->pids)
                m.pids = &pids;
        if (oomctl) {
                fill_kv(&oom.base, oomctl, NULL);
                m.memory_oom_control = &oom;
        }
        pack_any(&m.base, "io.containerd.cgroups.v1.Metrics", ret);
        free(mem.usage);
        free(mem.swap);
        free(mem.kernel);
        free(mem.kernel_tcp);
        return 0;
}

static int stats_v2(struct shim_cgroup *cg, Google__Protobuf__Any **ret)
{
        Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
        Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
        Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
        Io__Containerd__Cgroups__V2__MemoryStat mem = IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
        Io__Containerd__Cgroups__V2__MemoryEvents events = IO__CONTAINERD__CGROUPS__V2__MEMORY_EVENTS__INIT;
        _cleanup_free_ char *cpustat = read_small(cg->unified, "cpu.stat");
        _cleanup_free_ char *memstat = read_small(cg->unified, "memory.stat");
        _cleanup_free_ char *memev = read_small(cg->unified, "memory.events");

        pids.current = read_u64(cg->unified, "pids.current");
        pids.limit = read_u64(cg->unified, "pids.max");
        m.pids = &pids;
        if (cpustat)
                fill_kv(&cpu.base, cpustat, NULL);
        m.cpu = &cpu;
        if (memstat)
                fill_kv(&mem.base, memstat, NULL);
        mem.usage = read_u64(cg->unified, "memory.current");
        mem.usage_limit = read_u64(cg->unified, "memory.max");
        mem.swap_usage = read_u64(cg->unified, "memory.swap.current");
        mem.swap_limit = read_u64(cg->unified, "memory.swap.max");
        m.memory = &mem;
        if (memev) {
                fill_kv(&events.base, memev, NULL);
                m.memory_events = &events;
        }
        pack_any(&m.base, "io.containerd.cgroups.v2.Metrics", ret);
        return 0;
}

int shim_cgroup_stats(struct shim_cgroup *cg, Google__Protobuf__Any **ret, struct error **err)
{
        if (!cg)
                return error_set(err, ENOENT, "cgroup");
        return cg->version == 1 ? stats_v1(cg, ret) : stats_v2(cg, ret);
}

static uint64_t v2_oom_kills(struct shim_cgroup *cg)
{
        _cleanup_free_ char *ev = read_small(cg->unified, "memory.events");
        char *p = ev ? strstr(ev, "oom_kill ") : NULL;

        return p ? strtoull(p + 9, NULL, 10) : 0;
}

static void on_oom_v1(struct shim_watch *w, uint32_t events)
{
        struct shim_cgroup *cg = w->data;
        _cleanup_free_ char *ctl = NULL;
        uint64_t v;

        (void)events;
        if (read(cg->efd, &v, sizeof(v)) != sizeof(v))
                return;
        /* the eventfd also fires when the cgroup is removed */
        ctl = read_small(cg->memory, "memory.oom_control");
        if (!ctl) {
                shim_watch_stop(&cg->oom_w);
                return;
        }
        cg->oom_cb(cg->oom_data);
}

static void on_oom_v2(struct shim_watch *w, uint32_t events)
{
        struct shim_cgroup *cg = w->data;
        union {
                struct inotify_event ev;
                char buf[sizeof(struct inotify_event) + 256];
        } u;
        bool removed = false;
        ssize_t len;
        uint64_t n;

        (void)events;
        while ((len = read(cg->efd, u.buf, sizeof(u.buf))) > 0)
                for (char *p = u.buf; p < u.buf + len;) {
                        const struct inotify_event *ie = (const struct inotify_event *)p;
                        if (ie->mask & (IN_IGNORED | IN_DELETE_SELF))
                                removed = true;
                        p += sizeof(*ie) + ie->len;
                }
        if (removed) {
                shim_watch_stop(&cg->oom_w);
                return;
        }
        n = v2_oom_kills(cg);
        if (n > cg->oom_kills) {
                cg->oom_kills = n;
                cg->oom_cb(cg->oom_data);
        }
}

int shim_cgroup_watch_oom(struct shim_cgroup *cg, struct shim_loop *loop, void (*cb)(void *), void *data)
{
        cg->oom_cb = cb;
        cg->oom_data = data;
        if (cg->version == 1) {
                _cleanup_free_ char *ctl = xasprintf("%s/memory.oom_control", cg->memory);
                _cleanup_free_ char *evc = xasprintf("%s/cgroup.event_control", cg->memory);
                _cleanup_free_ char *line = NULL;
                _cleanup_close_ int cfd = open(ctl, O_RDONLY | O_CLOEXEC);
                _cleanup_close_ int wfd = open(evc, O_WRONLY | O_CLOEXEC);
                if (cfd < 0 || wfd < 0)
                        return -errno;
                cg->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (cg->efd < 0)
                        return -errno;
                line = xasprintf("%d %d", cg->efd, cfd);
                if (write(wfd, line, strlen(line)) < 0)
                        return -errno;
                shim_watch_init(loop, &cg->oom_w, cg->efd, on_oom_v1, cg);
                return shim_watch_set(&cg->oom_w, EPOLLIN);
        }
        {
                _cleanup_free_ char *p = xasprintf("%s/memory.events", cg->unified);
                if (cg->efd >= 0)
                        return -EBUSY;
                cg->oom_kills = v2_oom_kills(cg);
                cg->efd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
                if (cg->efd < 0)
                        return -errno;
                if (inotify_add_watch(cg->efd, p, IN_MODIFY) < 0)
                        return -errno;
                shim_watch_init(loop, &cg->oom_w, cg->efd, on_oom_v2, cg);
                return shim_watch_set(&cg->oom_w, EPOLLIN);
        }
}

void shim_cgroup_free(struct shim_cgroup *cg)
{
        if (!cg)
                return;
        free(cg->memory);
        free(cg->cpuacct);
        free(cg->cpu);
        free(cg->pids);
        free(cg->unified);
        shim_watch_stop(&cg->oom_w);
        if (cg->efd >= 0)
                close(cg->efd);
        free(cg);
}

static void mkdir_parents(const char *base, const char *rel)
{
        _cleanup_free_ char *p = xasprintf("%s/%s", base, rel);

        for (char *s = p + strlen(base) + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        (void)mkdir(p, 0755);
                        *s = '/';
                }
        (void)mkdir(p, 0755);
}

int shim_cgroup_enter(const char *path, struct error **err)
{
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ char *pid = xasprintf("%d", (int)getpid());
        struct statfs sfs;
        struct dirent *de;
        int joined = 0;

        if (!path || !*path)
                return 0;
        while (*path == '/')
                path++;
        if (strstr(path, "..") || !*path)
                return error_set(err, EINVAL, "shim cgroup %s", path);
        if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
                _cleanup_free_ char *dir = xasprintf("/sys/fs/cgroup/%s", path);
                _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", dir);
                mkdir_parents("/sys/fs/cgroup", path);
                if (shim_write_file_plain(procs, pid) < 0)
                        return error_set(err, errno, "join shim cgroup %s", dir);
                return 0;
        }
        /* cgroup v1: join the path in every mounted hierarchy, like containerd's cgroups.Load */
        d = opendir("/sys/fs/cgroup");
        if (!d)
                return error_set(err, errno, "open /sys/fs/cgroup");
        while ((de = readdir(d))) {
                _cleanup_free_ char *dir = NULL, *procs = NULL;
                if (de->d_name[0] == '.' || de->d_type != DT_DIR || strcmp(de->d_name, "unified") == 0)
                        continue;
                dir = xasprintf("/sys/fs/cgroup/%s/%s", de->d_name, path);
                procs = xasprintf("%s/cgroup.procs", dir);
                {
                        _cleanup_free_ char *base = xasprintf("/sys/fs/cgroup/%s", de->d_name);
                        mkdir_parents(base, path);
                }
                if (shim_write_file_plain(procs, pid) == 0)
                        joined++;
        }
        if (joined == 0)
                return error_set(err, ENOENT, "shim cgroup %s", path);
        return 0;
}
