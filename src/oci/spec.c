#include "spec.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_CONFIG_BYTES (4u << 20)
#define MAX_PASSWD_BYTES (8u << 20)

static const char *const default_caps[] = {
        "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER", "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",  "CAP_SETFCAP", "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL,
};

static json_t *strv_to_json(const char *const *v)
{
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

static json_t *obj_child(json_t *parent, const char *key)
{
        json_t *o = json_object_get(parent, key);
        if (!json_is_object(o)) {
                o = json_object();
                json_object_set_new(parent, key, o);
        }
        return o;
}

static json_t *arr_child(json_t *parent, const char *key)
{
        json_t *a = json_object_get(parent, key);
        if (!json_is_array(a)) {
                a = json_array();
                json_object_set_new(parent, key, a);
        }
        return a;
}

static json_t *mount_new(const char *type, const char *source, const char *dest, const char *const *options)
{
        return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source, "options",
                         strv_to_json(options));
}

static json_t *device_rule(const char *type, int64_t major, int64_t minor)
{
        json_t *r = json_pack("{s:b, s:s, s:s}", "allow", 1, "type", type, "access", "rwm");
        if (major >= 0)
                json_object_set_new(r, "major", json_integer(major));
        if (minor >= 0)
                json_object_set_new(r, "minor", json_integer(minor));
        return r;
}

json_t *oci_spec_new_default(const char *ns, const char *id)
{
        static const char *const masked[] = {"/proc/acpi",        "/proc/asound",   "/proc/kcore",
                                             "/proc/keys",        "/proc/latency_stats", "/proc/timer_list",
                                             "/proc/timer_stats", "/proc/sched_debug",   "/sys/firmware",
                                             "/proc/scsi",        NULL};
        static const char *const readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                               "/proc/sysrq-trigger", NULL};
        static const char *const nstypes[] = {"pid", "ipc", "uts", "mount", "network", NULL};

        json_t *caps = json_pack("{s:o, s:o, s:o}", "bounding", strv_to_json(default_caps), "permitted",
                                 strv_to_json(default_caps), "effective", strv_to_json(default_caps));
        json_t *process = json_pack("{s:{s:i, s:i}, s:s, s:o, s:[{s:s, s:i, s:i}], s:b}", "user", "uid", 0, "gid",
                                    0, "cwd", "/", "capabilities", caps, "rlimits", "type", "RLIMIT_NOFILE", "hard",
                                    1024, "soft", 1024, "noNewPrivileges", 1);

        json_t *nss = json_array();
        for (const char *const *t = nstypes; *t; t++)
                json_array_append_new(nss, json_pack("{s:s}", "type", *t));

        /* WithDefaultUnixDevices: /dev/null, zero, full, tty, urandom, random, console, the pts range, ptmx. */
        json_t *devices = json_array();
        json_array_append_new(devices, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
        static const int64_t devs[][2] = {{1, 3}, {1, 8}, {1, 7}, {5, 0}, {1, 5}, {1, 9}, {5, 1}, {136, -1}, {5, 2}};
        for (size_t i = 0; i < ELEMENTSOF(devs); i++)
                json_array_append_new(devices, device_rule("c", devs[i][0], devs[i][1]));

        char *cgpath = xasprintf("/%s/%s", ns, id);
        json_t *linux_ = json_pack("{s:o, s:o, s:s, s:{s:o}, s:o}", "maskedPaths", strv_to_json(masked),
                                   "readonlyPaths", strv_to_json(readonly), "cgroupsPath", cgpath, "resources",
                                   "devices", devices, "namespaces", nss);
        free(cgpath);

        json_t *mounts = json_array();
        static const char *const o_proc[] = {"nosuid", "noexec", "nodev", NULL};
        static const char *const o_dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
        static const char *const o_pts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5",
                                            NULL};
        static const char *const o_shm[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL};
        static const char *const o_sys[] = {"nosuid", "noexec", "nodev", "ro", NULL};
        json_array_append_new(mounts, mount_new("proc", "proc", "/proc", o_proc));
        json_array_append_new(mounts, mount_new("tmpfs", "tmpfs", "/dev", o_dev));
        json_array_append_new(mounts, mount_new("devpts", "devpts", "/dev/pts", o_pts));
        json_array_append_new(mounts, mount_new("tmpfs", "shm", "/dev/shm", o_shm));
        json_array_append_new(mounts, mount_new("mqueue", "mqueue", "/dev/mqueue", o_proc));
        json_array_append_new(mounts, mount_new("sysfs", "sysfs", "/sys", o_sys));
        json_array_append_new(mounts, mount_new("tmpfs", "tmpfs", "/run", o_dev));

        return json_pack("{s:s, s:o, s:{s:s}, s:o, s:o}", "ociVersion", OCI_SPEC_VERSION, "process", process, "root",
                         "path", "rootfs", "mounts", mounts, "linux", linux_);
}

/* --- image config --- */

static char **json_to_strv(json_t *a)
{
        if (!json_is_array(a))
                return NULL;
        size_t n = json_array_size(a), k = 0;
        char **v = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                const char *s = json_string_value(json_array_get(a, i));
                if (s)
                        v[k++] = xstrdup(s);
        }
        return v;
}

void oci_image_config_done(struct oci_image_config *c)
{
        if (!c)
                return;
        strv_free(c->env);
        strv_free(c->entrypoint);
        strv_free(c->cmd);
        strv_free(c->labels);
        free(c->working_dir);
        free(c->user);
        free(c->stop_signal);
        memset(c, 0, sizeof(*c));
}

static size_t json_depth(const json_t *j, size_t limit)
{
        if (limit == 0)
                return 1;
        size_t best = 0;
        if (json_is_object(j)) {
                const char *k;
                json_t *v;
                json_object_foreach((json_t *)j, k, v)
                {
                        size_t d = json_depth(v, limit - 1);
                        if (d > best)
                                best = d;
                }
                return best + 1;
        }
        if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v)
                {
                        size_t d = json_depth(v, limit - 1);
                        if (d > best)
                                best = d;
                }
                return best + 1;
        }
        return 1;
}

int oci_image_config_parse(const char *data, size_t len, struct oci_image_config *ret, struct error **err)
{
        if (len > MAX_CONFIG_BYTES)
                return error_set(err, EFBIG, "image config: %zu bytes exceeds the %u byte limit", len,
                                 MAX_CONFIG_BYTES);
        json_error_t je;
        json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
                return error_set(err, EINVAL, "image config: %s at line %d", je.text, je.line);
        if (!json_is_object(root) || json_depth(root, 65) > 64) {
                json_decref(root);
                return error_set(err, EINVAL, "image config: not an object or nested too deeply");
        }
        struct oci_image_config c = {0};
        json_t *cfg = json_object_get(root, "config");
        if (json_is_object(cfg)) {
                c.env = json_to_strv(json_object_get(cfg, "Env"));
                c.entrypoint = json_to_strv(json_object_get(cfg, "Entrypoint"));
                c.cmd = json_to_strv(json_object_get(cfg, "Cmd"));
                c.working_dir = xstrdup(json_string_value(json_object_get(cfg, "WorkingDir")));
                c.user = xstrdup(json_string_value(json_object_get(cfg, "User")));
                c.stop_signal = xstrdup(json_string_value(json_object_get(cfg, "StopSignal")));
                json_t *labels = json_object_get(cfg, "Labels");
                if (json_is_object(labels)) {
                        size_t n = json_object_size(labels), k = 0;
                        c.labels = xcalloc(n + 1, sizeof(char *));
                        const char *key;
                        json_t *v;
                        json_object_foreach(labels, key, v)
                        {
                                if (json_is_string(v))
                                        c.labels[k++] = xasprintf("%s=%s", key, json_string_value(v));
                        }
                }
        }
        json_decref(root);
        *ret = c;
        return 0;
}

/* --- env --- */

static size_t env_key_len(const char *e)
{
        const char *eq = strchr(e, '=');
        return eq ? (size_t)(eq - e) : strlen(e);
}

/* containerd's replaceOrAppendEnvValues on a json array of strings. */
static json_t *env_merge(json_t *defaults, char *const *overrides)
{
        json_t *out = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(defaults, i, v)
        {
                if (json_is_string(v))
                        json_array_append(out, v);
        }
        for (; overrides && *overrides; overrides++) {
                const char *o = *overrides;
                size_t kl = env_key_len(o);
                bool has_eq = strchr(o, '=') != NULL;
                bool found = false;
                for (i = 0; i < json_array_size(out); i++) {
                        const char *cur = json_string_value(json_array_get(out, i));
                        if (!cur || env_key_len(cur) != kl || strncmp(cur, o, kl) != 0)
                                continue;
                        found = true;
                        if (has_eq)
                                json_array_set_new(out, i, json_string(o));
                        else {
                                json_array_remove(out, i);
                                i--;
                        }
                        break;
                }
                if (!found && has_eq)
                        json_array_append_new(out, json_string(o));
        }
        return out;
}

void oci_spec_set_env(json_t *spec, char *const *env)
{
        if (!env || !*env)
                return;
        json_t *proc = obj_child(spec, "process");
        json_t *cur = json_object_get(proc, "env");
        json_t *base = json_is_array(cur) ? json_incref(cur) : json_array();
        json_object_set_new(proc, "env", env_merge(base, env));
        json_decref(base);
}

void oci_spec_set_args(json_t *spec, char *const *args)
{
        json_t *proc = obj_child(spec, "process");
        json_object_set_new(proc, "args", strv_to_json((const char *const *)args));
        json_object_del(proc, "commandLine");
}

void oci_spec_set_cwd(json_t *spec, const char *cwd)
{
        json_object_set_new(obj_child(spec, "process"), "cwd", json_string(cwd));
}

void oci_spec_set_tty(json_t *spec)
{
        json_t *proc = obj_child(spec, "process");
        json_object_set_new(proc, "terminal", json_true());
        json_array_append_new(arr_child(proc, "env"), json_string("TERM=xterm"));
}

void oci_spec_set_readonly_rootfs(json_t *spec)
{
        json_object_set_new(obj_child(spec, "root"), "readonly", json_true());
}

void oci_spec_set_memory_limit(json_t *spec, int64_t bytes)
{
        json_t *res = obj_child(obj_child(spec, "linux"), "resources");
        json_object_set_new(obj_child(res, "memory"), "limit", json_integer(bytes));
}

void oci_spec_set_cpus(json_t *spec, double cpus)
{
        json_t *cpu = obj_child(obj_child(obj_child(spec, "linux"), "resources"), "cpu");
        json_object_set_new(cpu, "quota", json_integer((json_int_t)(cpus * 100000.0)));
        json_object_set_new(cpu, "period", json_integer(100000));
}

void oci_spec_set_annotation(json_t *spec, const char *key, const char *value)
{
        json_object_set_new(obj_child(spec, "annotations"), key, json_string(value));
}

void oci_spec_add_mount(json_t *spec, const char *type, const char *source, const char *dest, char *const *options)
{
        json_array_append_new(arr_child(spec, "mounts"),
                              mount_new(type, source, dest, (const char *const *)options));
}

void oci_spec_set_host_network(json_t *spec, const char *hostname)
{
        json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces");
        for (size_t i = 0; json_is_array(nss) && i < json_array_size(nss); i++) {
                const char *t = json_string_value(json_object_get(json_array_get(nss, i), "type"));
                if (t && strcmp(t, "network") == 0) {
                        json_array_remove(nss, i);
                        i--;
                }
        }
        static const char *const ro[] = {"rbind", "ro", NULL};
        oci_spec_add_mount(spec, "bind", "/etc/hosts", "/etc/hosts", (char *const *)ro);
        oci_spec_add_mount(spec, "bind", "/etc/resolv.conf", "/etc/resolv.conf", (char *const *)ro);
        if (hostname) {
                char *e = xasprintf("HOSTNAME=%s", hostname);
                char *env[] = {e, NULL};
                oci_spec_set_env(spec, env);
                free(e);
        }
}

/* ctr's --mount: comma-separated key=value: type, src|source, dst|destination|target, options (':' separated). */
int oci_spec_add_mount_string(json_t *spec, const char *mount, struct error **err)
{
        _cleanup_free_ char *copy = xstrdup(mount);
        _cleanup_free_ char *type = NULL, *src = NULL, *dst = NULL;
        _cleanup_strv_free_ char **opts = xcalloc(1, sizeof(char *));
        size_t nopts = 0;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(tok, '=');
                if (!eq)
                        return error_set(err, EINVAL, "mount option %s: invalid format, expected key=value", tok);
                *eq = 0;
                const char *k = tok, *v = eq + 1;
                if (strcmp(k, "type") == 0) {
                        free(type);
                        type = xstrdup(v);
                } else if (strcmp(k, "source") == 0 || strcmp(k, "src") == 0) {
                        free(src);
                        src = xstrdup(v);
                } else if (strcmp(k, "destination") == 0 || strcmp(k, "dst") == 0 || strcmp(k, "target") == 0) {
                        free(dst);
                        dst = xstrdup(v);
                } else if (strcmp(k, "options") == 0) {
                        _cleanup_free_ char *ov = xstrdup(v);
                        char *s2 = NULL;
                        for (char *o = strtok_r(ov, ":", &s2); o; o = strtok_r(NULL, ":", &s2)) {
                                opts = xreallocarray(opts, nopts + 2, sizeof(char *));
                                opts[nopts++] = xstrdup(o);
                                opts[nopts] = NULL;
                        }
                } else
                        return error_set(err, EINVAL, "mount option %s: unknown key", k);
        }
        if (!dst)
                return error_set(err, EINVAL, "mount %s: destination is required", mount);
        oci_spec_add_mount(spec, type ? type : "none", src ? src : "", dst, opts);
        return 0;
}

/* --- privileged --- */

static int current_caps(json_t **ret, struct error **err)
{
        cap_t caps = cap_get_proc();
        if (!caps)
                return error_set(err, errno, "get current capabilities");
        json_t *a = json_array();
        for (int c = 0; c <= CAP_LAST_CAP + 32 && cap_valid(c); c++) {
                cap_flag_value_t v = CAP_CLEAR;
                if (cap_get_flag(caps, (cap_value_t)c, CAP_EFFECTIVE, &v) < 0 || v != CAP_SET)
                        continue;
                char *name = cap_to_name((cap_value_t)c);
                if (!name)
                        continue;
                char *up = xstrdup(name);
                for (char *p = up; *p; p++)
                        *p = (char)toupper((unsigned char)*p);
                if (strncmp(up, "CAP_", 4) == 0)
                        json_array_append_new(a, json_string(up));
                free(up);
                cap_free(name);
        }
        cap_free(caps);
        *ret = a;
        return 0;
}

int oci_spec_set_privileged(json_t *spec, struct error **err)
{
        json_t *caps = NULL;
        int r = current_caps(&caps, err);
        if (r < 0)
                return r;
        json_t *proc = obj_child(spec, "process");
        json_t *c = json_object();
        static const char *const sets[] = {"bounding", "permitted", "effective", NULL};
        for (const char *const *s = sets; *s; s++)
                json_object_set(c, *s, caps);
        json_decref(caps);
        json_object_set_new(proc, "capabilities", c);
        json_object_del(proc, "selinuxLabel");
        json_object_del(proc, "apparmorProfile");

        json_t *linux_ = obj_child(spec, "linux");
        json_object_del(linux_, "maskedPaths");
        json_object_del(linux_, "readonlyPaths");
        json_object_del(linux_, "seccomp");
        size_t i;
        json_t *m;
        json_array_foreach(arr_child(spec, "mounts"), i, m)
        {
                const char *t = json_string_value(json_object_get(m, "type"));
                if (!t || (strcmp(t, "sysfs") && strcmp(t, "cgroup")))
                        continue;
                size_t k;
                json_t *o;
                json_array_foreach(json_object_get(m, "options"), k, o)
                {
                        if (json_is_string(o) && strcmp(json_string_value(o), "ro") == 0)
                                json_array_set_new(json_object_get(m, "options"), k, json_string("rw"));
                }
        }
        json_t *res = obj_child(linux_, "resources");
        json_object_set_new(res, "devices", json_pack("[{s:b, s:s}]", "allow", 1, "access", "rwm"));
        /* WithAllDevicesAllowed, WithHostDevices */
        return oci_spec_add_host_devices(spec, err);
}

/* --- users --- */

/* Opens path (relative, inside root) beneath root: openat2 RESOLVE_IN_ROOT, or, on kernels without openat2,
 * a walk that refuses symlinks (stricter than needed, never looser). Image content is untrusted. */
static int open_in_root(const char *root, const char *rel)
{
        _cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return -errno;
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        long fd = syscall(SYS_openat2, rfd, rel, &how, sizeof(how));
        if (fd >= 0)
                return (int)fd;
        if (errno != ENOSYS)
                return -errno;
        _cleanup_free_ char *copy = xstrdup(rel);
        int cur = TAKE_FD(rfd);
        char *save = NULL;
        char *tok = strtok_r(copy, "/", &save);
        while (tok) {
                char *next = strtok_r(NULL, "/", &save);
                if (strcmp(tok, "..") == 0) {
                        close(cur);
                        return -EPERM;
                }
                int n = openat(cur, tok, (next ? O_DIRECTORY : 0) | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                int e = errno;
                close(cur);
                if (n < 0)
                        return -e;
                cur = n;
                tok = next;
        }
        return cur;
}

static int read_rootfs_file(const char *root, const char *rel, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = open_in_root(root, rel);
        if (fd < 0)
                return fd;
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = xmalloc(cap);
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap >= MAX_PASSWD_BYTES)
                                return -EFBIG;
                        cap *= 2;
                        buf = xrealloc(buf, cap);
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static bool parse_id(const char *s, uint32_t *ret)
{
        if (!*s)
                return false;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end || v < 0 || v > INT32_MAX)
                return false;
        *ret = (uint32_t)v;
        return true;
}

/* Iterates colon-separated lines; calls fn with the fields. Stops when fn returns true. */
typedef bool (*line_fn)(char **f, size_t nf, void *data);
static void for_each_line(char *buf, line_fn fn, void *data)
{
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#' || !line[0])
                        continue;
                char *f[8] = {0};
                size_t nf = 0;
                char *p = line;
                while (nf < 8) {
                        f[nf++] = p;
                        char *c = strchr(p, ':');
                        if (!c)
                                break;
                        *c = 0;
                        p = c + 1;
                }
                if (fn(f, nf, data))
                        return;
        }
}

struct user_query {
        const char *name;
        bool by_uid;
        uint32_t uid;
        bool found;
        char *found_name;
        uint32_t found_uid, found_gid;
};

static bool match_user(char **f, size_t nf, void *data)
{
        struct user_query *q = data;
        uint32_t uid, gid;
        if (nf < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
                return false;
        if ((q->by_uid && uid == q->uid) || (!q->by_uid && strcmp(f[0], q->name) == 0)) {
                q->found = true;
                q->found_uid = uid;
                q->found_gid = gid;
                q->found_name = xstrdup(f[0]);
                return true;
        }
        return false;
}

static int lookup_user(const char *root, struct user_query *q)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_rootfs_file(root, "etc/passwd", &buf, &len);
        if (r < 0)
                return r;
        for_each_line(buf, match_user, q);
        return 0;
}

struct group_query {
        const char *name;   /* by name, or */
        const char *member; /* supplementary groups of member */
        bool found;
        uint32_t gid;
        json_t *gids;
};

static bool match_group(char **f, size_t nf, void *data)
{
        struct group_query *q = data;
        uint32_t gid;
        if (nf < 3 || !parse_id(f[2], &gid))
                return false;
        if (q->name) {
                if (strcmp(f[0], q->name) == 0) {
                        q->found = true;
                        q->gid = gid;
                        return true;
                }
                return false;
        }
        if (nf < 4 || strcmp(f[0], q->member) == 0)
                return false;
        _cleanup_free_ char *list = xstrdup(f[3]);
        char *save = NULL;
        for (char *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save))
                if (strcmp(m, q->member) == 0) {
                        json_array_append_new(q->gids, json_integer(gid));
                        break;
                }
        return false;
}

static int lookup_group(const char *root, struct group_query *q)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_rootfs_file(root, "etc/group", &buf, &len);
        if (r < 0)
                return r;
        for_each_line(buf, match_group, q);
        return 0;
}

static void set_user_ids(json_t *spec, uint32_t uid, uint32_t gid, json_t *additional /* stolen, may be NULL */)
{
        json_t *user = obj_child(obj_child(spec, "process"), "user");
        json_object_set_new(user, "uid", json_integer(uid));
        json_object_set_new(user, "gid", json_integer(gid));
        /* ensureAdditionalGids: the primary gid always leads the additional gids. */
        json_t *gids = json_array();
        json_array_append_new(gids, json_integer(gid));
        size_t i;
        json_t *v;
        json_array_foreach(additional, i, v)
        {
                if ((uint32_t)json_integer_value(v) != gid)
                        json_array_append(gids, v);
        }
        json_decref(additional);
        json_object_set_new(user, "additionalGids", gids);
}

/* WithAdditionalGIDs(user): groups in rootfs /etc/group listing the user's name (not its own group). */
static json_t *additional_gids(const char *root, const char *username)
{
        json_t *gids = json_array();
        if (!root || !username)
                return gids;
        struct group_query g = {.member = username, .gids = gids};
        (void)lookup_group(root, &g); /* a missing /etc/group means no supplementary groups, as containerd */
        return gids;
}

int oci_spec_set_user(json_t *spec, const char *userstr, const char *rootfs_path, struct error **err)
{
        _cleanup_free_ char *copy = xstrdup(userstr);
        char *colon = strchr(copy, ':');
        if (colon)
                *colon = 0;
        const char *ustr = copy, *gstr = colon ? colon + 1 : NULL;
        if (colon && strchr(gstr, ':'))
                return error_set(err, EINVAL, "invalid user %s", userstr);
        uint32_t uid = 0, gid = 0;
        bool unum = parse_id(ustr, &uid);
        bool gnum = gstr && parse_id(gstr, &gid);

        if (!gstr) {
                if (!rootfs_path) {
                        if (!unum)
                                return error_set(err, EINVAL, "rootfs absolute path is required");
                        set_user_ids(spec, uid, 0, NULL);
                        return 0;
                }
                struct user_query q = {.name = ustr, .by_uid = unum, .uid = uid};
                int r = lookup_user(rootfs_path, &q);
                if (!q.found) {
                        if (unum) {
                                /* WithUserID: unknown uid (or no /etc/passwd) runs as uid:0. */
                                set_user_ids(spec, uid, 0, additional_gids(rootfs_path, NULL));
                                return 0;
                        }
                        if (r < 0 && r != -ENOENT)
                                return error_set(err, -r, "read /etc/passwd");
                        return error_set(err, ENOENT, "no users found");
                }
                set_user_ids(spec, q.found_uid, q.found_gid, additional_gids(rootfs_path, q.found_name));
                free(q.found_name);
                return 0;
        }
        if (unum && gnum) {
                set_user_ids(spec, uid, gid, NULL);
                return 0;
        }
        if (!rootfs_path)
                return error_set(err, EINVAL, "rootfs absolute path is required");
        if (!unum) {
                struct user_query q = {.name = ustr};
                (void)lookup_user(rootfs_path, &q);
                if (!q.found)
                        return error_set(err, ENOENT, "no users found");
                uid = q.found_uid;
                free(q.found_name);
        }
        if (!gnum) {
                struct group_query g = {.name = gstr};
                (void)lookup_group(rootfs_path, &g);
                if (!g.found)
                        return error_set(err, ENOENT, "no groups found");
                gid = g.gid;
        }
        set_user_ids(spec, uid, gid, NULL);
        return 0;
}

int oci_spec_apply_image_config(json_t *spec, const struct oci_image_config *ic, char *const *args,
                                const char *rootfs_path, struct error **err)
{
        json_t *proc = obj_child(spec, "process");
        static const char *const defenv[] = {DEFAULT_PATH_ENV, NULL};
        json_t *defaults = (ic->env && ic->env[0]) ? strv_to_json((const char *const *)ic->env)
                                                   : strv_to_json(defenv);
        /* Image env first, then what the spec already had (ctr's --env came before WithImageConfig). */
        json_t *cur = json_object_get(proc, "env");
        size_t n = json_is_array(cur) ? json_array_size(cur) : 0;
        char **over = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                over[i] = (char *)json_string_value(json_array_get(cur, i));
        json_t *merged = env_merge(defaults, over);
        free(over);
        json_decref(defaults);
        json_object_set_new(proc, "env", merged);

        json_t *argv = json_array();
        for (char **e = ic->entrypoint; e && *e; e++)
                json_array_append_new(argv, json_string(*e));
        char *const *cmd = (args && args[0]) ? args : ic->cmd;
        for (char *const *c = cmd; c && *c; c++)
                json_array_append_new(argv, json_string(*c));
        json_object_set_new(proc, "args", argv);
        json_object_set_new(proc, "cwd", json_string(ic->working_dir && *ic->working_dir ? ic->working_dir : "/"));

        if (ic->user && *ic->user)
                return oci_spec_set_user(spec, ic->user, rootfs_path, err);
        /* No user in the image: root, plus root's supplementary groups from the image's /etc/group. */
        set_user_ids(spec, 0, 0, additional_gids(rootfs_path, "root"));
        return 0;
}

char *oci_spec_dump(const json_t *spec)
{
        char *s = json_dumps(spec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                abort();
        return s;
}
