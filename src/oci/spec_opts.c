/* The rest of ctr run's spec options (containerd's oci/spec_opts.go, spec_opts_linux.go, utils_unix.go and
 * contrib/seccomp's WithProfile): capabilities, cgroups path, namespaces, devices, CPU, user namespace
 * mappings, rootfs path and propagation, a seccomp profile file and a whole spec read from a file. */
#include "spec.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

#define MAX_SPEC_FILE_BYTES (16u << 20)
#define MAX_SPEC_DEPTH 64
#define MAX_DEVICE_DEPTH 16

/* ctr's errors here are plain Go errors (no errdefs class): rendered as is. */
static int __attribute__((format(printf, 3, 4))) fail(struct error **err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        return error_set_literal(err, code, msg ? msg : "out of memory");
}

/* Go's syscall error text: strerror in lower case. */
static const char *go_strerror(int code, char *buf, size_t len)
{
        snprintf(buf, len, "%s", strerror(code));
        buf[0] = (char)tolower((unsigned char)buf[0]);
        return buf;
}

static json_t *child_obj(json_t *parent, const char *key)
{
        json_t *o = json_object_get(parent, key);
        if (!json_is_object(o)) {
                o = json_object();
                json_object_set_new(parent, key, o);
        }
        return o;
}

static json_t *child_arr(json_t *parent, const char *key)
{
        json_t *a = json_object_get(parent, key);
        if (!json_is_array(a)) {
                a = json_array();
                json_object_set_new(parent, key, a);
        }
        return a;
}

/* --- capabilities --- */

static const char *const cap_sets[] = {"bounding", "effective", "permitted", NULL};

static bool arr_has_string(json_t *a, const char *s)
{
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v)
        {
                if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
                        return true;
        }
        return false;
}

void oci_spec_add_capabilities(json_t *spec, char *const *caps)
{
        json_t *c = child_obj(child_obj(spec, "process"), "capabilities");
        for (; caps && *caps; caps++)
                for (const char *const *set = cap_sets; *set; set++) {
                        json_t *a = child_arr(c, *set);
                        if (!arr_has_string(a, *caps))
                                json_array_append_new(a, json_string(*caps));
                }
}

void oci_spec_drop_capabilities(json_t *spec, char *const *caps)
{
        json_t *c = child_obj(child_obj(spec, "process"), "capabilities");
        for (; caps && *caps; caps++)
                for (const char *const *set = cap_sets; *set; set++) {
                        json_t *a = json_object_get(c, *set);
                        for (size_t i = 0; json_is_array(a) && i < json_array_size(a); i++) {
                                const char *v = json_string_value(json_array_get(a, i));
                                if (v && strcmp(v, *caps) == 0)
                                        json_array_remove(a, i--);
                        }
                        /* Go's removeCap leaves a nil slice, which omitempty drops */
                        if (json_is_array(a) && json_array_size(a) == 0)
                                json_object_del(c, *set);
                }
}

int oci_check_capability_names(char *const *caps, struct error **err)
{
        for (; caps && *caps; caps++)
                if (strncmp(*caps, "CAP_", 4) != 0)
                        return fail(err, EINVAL, "capabilities must be specified with 'CAP_' prefix");
        return 0;
}

/* --- linux --- */

void oci_spec_set_cgroups_path(json_t *spec, const char *path)
{
        /* "" is Go's zero value, which omitempty leaves out of the JSON */
        if (!*path)
                json_object_del(child_obj(spec, "linux"), "cgroupsPath");
        else
                json_object_set_new(child_obj(spec, "linux"), "cgroupsPath", json_string(path));
}

void oci_spec_set_no_new_privileges(json_t *spec, bool on)
{
        /* false is Go's zero value: omitempty leaves it out */
        if (on)
                json_object_set_new(child_obj(spec, "process"), "noNewPrivileges", json_true());
        else
                json_object_del(child_obj(spec, "process"), "noNewPrivileges");
}

void oci_spec_set_rootfs_propagation(json_t *spec, const char *propagation)
{
        json_object_set_new(child_obj(spec, "linux"), "rootfsPropagation", json_string(propagation));
}

void oci_spec_set_root_path(json_t *spec, const char *path)
{
        json_object_set_new(child_obj(spec, "root"), "path", json_string(path));
}

static bool valid_namespace(const char *t)
{
        static const char *const types[] = {"pid", "network", "uts", "mount", "user", "ipc", "cgroup", NULL};
        for (const char *const *p = types; *p; p++)
                if (strcmp(*p, t) == 0)
                        return true;
        return false;
}

void oci_spec_set_namespace(json_t *spec, const char *type, const char *path)
{
        json_t *nss = child_arr(child_obj(spec, "linux"), "namespaces");
        json_t *ns = json_pack("{s:s}", "type", type);
        if (path && *path)
                json_object_set_new(ns, "path", json_string(path));
        size_t i;
        json_t *v;
        json_array_foreach(nss, i, v)
        {
                const char *t = json_string_value(json_object_get(v, "type"));
                if (t && strcmp(t, type) == 0) {
                        json_array_set_new(nss, i, ns);
                        return;
                }
        }
        json_array_append_new(nss, ns);
}

int oci_parse_with_ns(const char *arg, char **ret_type, char **ret_path, struct error **err)
{
        const char *colon = strchr(arg, ':');
        if (!colon || strchr(colon + 1, ':'))
                return fail(err, EINVAL,
                                 "joining a Linux namespace using --with-ns requires the format 'nstype:path'");
        _cleanup_free_ char *type = xstrndup(arg, (size_t)(colon - arg));
        if (!valid_namespace(type))
                return fail(err, EINVAL, "the Linux namespace type specified in --with-ns is not valid: %s",
                                 type);
        *ret_type = TAKE_PTR(type);
        *ret_path = xstrdup(colon + 1);
        return 0;
}

/* --- CPU --- */

void oci_spec_set_cpu_shares(json_t *spec, uint64_t shares)
{
        json_t *cpu = child_obj(child_obj(child_obj(spec, "linux"), "resources"), "cpu");
        json_object_set_new(cpu, "shares", json_integer((json_int_t)shares));
}

void oci_spec_set_cpu_cfs(json_t *spec, int64_t quota, uint64_t period)
{
        json_t *cpu = child_obj(child_obj(child_obj(spec, "linux"), "resources"), "cpu");
        json_object_set_new(cpu, "quota", json_integer(quota));
        json_object_set_new(cpu, "period", json_integer((json_int_t)period));
}

/* --- devices --- */

/* DeviceFromPath: lstat, char/block/fifo only. Returns -ENODEV for anything else ("not a device node"). */
static int device_from_path(const char *path, const char *container_path, json_t **ret)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return -errno;
        const char *type;
        if (S_ISBLK(st.st_mode))
                type = "b";
        else if (S_ISCHR(st.st_mode))
                type = "c";
        else if (S_ISFIFO(st.st_mode))
                type = "p";
        else
                return -ENODEV;
        *ret = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "path", container_path ? container_path : path,
                         "type", type, "major", (json_int_t)major(st.st_rdev), "minor",
                         (json_int_t)minor(st.st_rdev), "fileMode", (json_int_t)(st.st_mode & ~(mode_t)S_IFMT),
                         "uid", (json_int_t)st.st_uid, "gid", (json_int_t)st.st_gid);
        return 0;
}

static int get_devices(const char *path, const char *container_path, json_t *out, int depth, struct error **err)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                int e = errno;
                char b[128];
                return fail(err, e, "error stating device path: stat %s: %s", path, go_strerror(e, b, sizeof(b)));
        }
        if (!S_ISDIR(st.st_mode)) {
                json_t *d = NULL;
                int r = device_from_path(path, container_path, &d);
                if (r == -ENODEV)
                        return fail(err, EINVAL, "not a device node");
                if (r < 0)
                        return fail(err, -r, "lstat %s: %s", path, go_strerror(-r, (char[128]){0}, 128));
                json_array_append_new(out, d);
                return 0;
        }
        if (depth > MAX_DEVICE_DEPTH)
                return 0;
        _cleanup_closedir_ DIR *dir = opendir(path);
        if (!dir)
                return fail(err, errno, "open %s: %s", path, go_strerror(errno, (char[128]){0}, 128));
        /* os.ReadDir sorts by name */
        struct dirent **names = NULL;
        int n = scandirat(dirfd(dir), ".", &names, NULL, alphasort);
        if (n < 0)
                return fail(err, errno, "read %s: %s", path, go_strerror(errno, (char[128]){0}, 128));
        int r = 0;
        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                if (r < 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", path, name);
                _cleanup_free_ char *cp = container_path ? xasprintf("%s/%s", container_path, name) : NULL;
                struct stat lst;
                if (lstat(p, &lst) < 0)
                        continue;
                if (S_ISDIR(lst.st_mode)) {
                        static const char *const skip[] = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts",
                                                           ".udev", NULL};
                        bool skipped = false;
                        for (const char *const *s = skip; *s; s++)
                                skipped |= strcmp(*s, name) == 0;
                        if (!skipped)
                                r = get_devices(p, cp, out, depth + 1, err);
                        continue;
                }
                if (strcmp(name, "console") == 0)
                        continue;
                json_t *d = NULL;
                int k = device_from_path(p, cp, &d);
                if (k == 0)
                        json_array_append_new(out, d);
                else if (k != -ENODEV && k != -ENOENT)
                        r = fail(err, -k, "lstat %s: %s", p, go_strerror(-k, (char[128]){0}, 128));
        }
        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

int oci_spec_add_devices(json_t *spec, const char *path, const char *container_path, const char *permissions,
                         struct error **err)
{
        json_t *devs = json_array();
        int r = get_devices(path, container_path && *container_path ? container_path : NULL, devs, 0, err);
        if (r < 0) {
                json_decref(devs);
                return r;
        }
        json_t *linux_ = child_obj(spec, "linux");
        json_t *ldevs = child_arr(linux_, "devices");
        json_t *rules = child_arr(child_obj(linux_, "resources"), "devices");
        size_t i;
        json_t *d;
        json_array_foreach(devs, i, d)
        {
                json_array_append(ldevs, d);
                json_array_append_new(rules, json_pack("{s:b, s:O, s:O, s:O, s:s}", "allow", 1, "type",
                                                       json_object_get(d, "type"), "major",
                                                       json_object_get(d, "major"), "minor",
                                                       json_object_get(d, "minor"), "access", permissions));
        }
        json_decref(devs);
        return 0;
}

int oci_spec_add_host_devices(json_t *spec, struct error **err)
{
        json_t *devs = child_arr(child_obj(spec, "linux"), "devices");
        return get_devices("/dev", NULL, devs, 0, err);
}

/* --- user namespace --- */

static int parse_u32(const char *s, uint32_t *ret)
{
        /* strconv.ParseUint(s, 0, 32): decimal, 0x hex, 0 octal, 0b binary; no sign, no spaces */
        if (!*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        int base = 10;
        const char *p = s;
        if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
                base = 2;
                p += 2;
        } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
                base = 8;
                p += 2;
        } else if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                base = 16;
                p += 2;
        } else if (p[0] == '0' && p[1]) {
                base = 8;
                p += 1;
        }
        if (!*p || *p == '-' || *p == '+' || *p == ' ')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, base);
        if (errno || *end)
                return -EINVAL;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t)v;
        return 0;
}

int oci_parse_id_mapping(const char *s, struct oci_id_mapping *ret, struct error **err)
{
        _cleanup_strv_free_ char **parts = strv_split(s, ":");
        if (strv_length(parts) != 3)
                return fail(err, EINVAL, "user namespace mappings require the format `container-id:host-id:size`");
        static const char *const what[] = {"container id", "host id", "size"};
        uint32_t v[3];
        for (size_t i = 0; i < 3; i++) {
                int r = parse_u32(parts[i], &v[i]);
                if (r < 0)
                        return fail(err, EINVAL,
                                         "invalid %s for user namespace remapping: strconv.ParseUint: parsing \"%s\": %s",
                                         what[i], parts[i], r == -ERANGE ? "value out of range" : "invalid syntax");
        }
        ret->container_id = v[0];
        ret->host_id = v[1];
        ret->size = v[2];
        return 0;
}

void oci_spec_set_user_namespace(json_t *spec, const struct oci_id_mapping *uid, const struct oci_id_mapping *gid)
{
        json_t *linux_ = child_obj(spec, "linux");
        json_t *nss = child_arr(linux_, "namespaces");
        bool has = false;
        size_t i;
        json_t *v;
        json_array_foreach(nss, i, v)
        {
                const char *t = json_string_value(json_object_get(v, "type"));
                has |= t && strcmp(t, "user") == 0;
        }
        if (!has)
                json_array_append_new(nss, json_pack("{s:s}", "type", "user"));
        json_array_append_new(child_arr(linux_, "uidMappings"),
                              json_pack("{s:I, s:I, s:I}", "containerID", (json_int_t)uid->container_id, "hostID",
                                        (json_int_t)uid->host_id, "size", (json_int_t)uid->size));
        json_array_append_new(child_arr(linux_, "gidMappings"),
                              json_pack("{s:I, s:I, s:I}", "containerID", (json_int_t)gid->container_id, "hostID",
                                        (json_int_t)gid->host_id, "size", (json_int_t)gid->size));
}

/* --- files --- */

static size_t depth_of(const json_t *j, size_t limit)
{
        if (limit == 0)
                return 1;
        size_t best = 0, d;
        const char *k;
        size_t i;
        json_t *v;
        if (json_is_object(j)) {
                json_object_foreach((json_t *)j, k, v)
                {
                        if ((d = depth_of(v, limit - 1)) > best)
                                best = d;
                }
                return best + 1;
        }
        if (json_is_array(j)) {
                json_array_foreach(j, i, v)
                {
                        if ((d = depth_of(v, limit - 1)) > best)
                                best = d;
                }
                return best + 1;
        }
        return 1;
}

/* Reads a bounded JSON object from path. On failure returns -errno with a message of the form
 * "<what>: <reason>" left to the caller's prefix. */
static int load_json_object(const char *path, json_t **ret, char **ret_reason)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                *ret_reason = xasprintf("open %s: %s", path, go_strerror(-r, (char[128]){0}, 128));
                return r;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_SPEC_FILE_BYTES) {
                *ret_reason = xasprintf("read %s: not a regular file of at most %u bytes", path,
                                        MAX_SPEC_FILE_BYTES);
                return -EINVAL;
        }
        json_error_t je;
        json_t *j = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
        if (!j) {
                *ret_reason = xasprintf("%s at line %d", je.text, je.line);
                return -EINVAL;
        }
        if (!json_is_object(j) || depth_of(j, MAX_SPEC_DEPTH + 1) > MAX_SPEC_DEPTH) {
                json_decref(j);
                *ret_reason = xstrdup("not a JSON object, or nested too deeply");
                return -EINVAL;
        }
        *ret = j;
        return 0;
}

int oci_spec_load_file(const char *path, json_t **ret, struct error **err)
{
        _cleanup_free_ char *reason = NULL;
        int r = load_json_object(path, ret, &reason);
        if (r == -EINVAL && strncmp(reason, "read ", 5) != 0)
                return fail(err, EINVAL,
                                 "decoding spec config file failed, current supported OCI runtime-spec : v%s: %s",
                                 OCI_SPEC_VERSION, reason);
        if (r < 0)
                return fail(err, -r, "cannot load spec config file: %s", reason);
        return 0;
}

int oci_spec_set_seccomp_profile(json_t *spec, const char *path, struct error **err)
{
        _cleanup_free_ char *reason = NULL;
        json_t *profile = NULL;
        int r = load_json_object(path, &profile, &reason);
        if (r == -EINVAL && strncmp(reason, "read ", 5) != 0)
                return fail(err, EINVAL, "decoding seccomp profile failed \"%s\": %s", path, reason);
        if (r < 0)
                return fail(err, -r, "cannot load seccomp profile \"%s\": %s", path, reason);
        json_object_set_new(child_obj(spec, "linux"), "seccomp", profile);
        return 0;
}
