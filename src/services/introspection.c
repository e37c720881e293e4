/* introspection.v1 logic: the plugin registry, the persistent server UUID, filtered plugin lists. */
#include "services/introspection.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "metadata/filters.h"
#include "util/alloc.h"
#include "util/cleanup.h"

/* containerd keeps the UUID in the service plugin's own directory (ic.Root): <root>/<type>.<id>/uuid */
#define UUID_DIR "io.containerd.service.v1.introspection-service"
#define UUID_LEN 36

static char **strv_push(char **v, const char *s)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        v = xreallocarray(v, n + 2, sizeof(char *));
        v[n] = xstrdup(s);
        v[n + 1] = NULL;
        return v;
}

struct plugin_info *services_plugin_registry_add(struct plugin_registry *reg, const char *type, const char *id)
{
        if (reg->n == reg->cap) {
                reg->cap = reg->cap ? reg->cap * 2 : 32;
                reg->plugins = xreallocarray(reg->plugins, reg->cap, sizeof(struct plugin_info));
        }
        struct plugin_info *p = &reg->plugins[reg->n++];
        memset(p, 0, sizeof(*p));
        p->type = xstrdup(type);
        p->id = xstrdup(id);
        return p;
}

void services_plugin_info_export(struct plugin_info *p, const char *key, const char *value)
{
        p->exports = strv_push(p->exports, key);
        p->exports = strv_push(p->exports, value);
}

void services_plugin_info_set_error(struct plugin_info *p, int r, const struct error *e)
{
        p->init_err = r < 0 ? r : -EIO;
        free(p->init_msg);
        p->init_msg = e ? error_message(e) : xstrdup(error_class_text(-p->init_err));
}

void services_plugin_registry_clear(struct plugin_registry *reg)
{
        if (!reg)
                return;
        for (size_t i = 0; i < reg->n; i++) {
                struct plugin_info *p = &reg->plugins[i];
                free(p->type);
                free(p->id);
                strv_free(p->requires);
                strv_free(p->exports);
                strv_free(p->capabilities);
                free(p->init_msg);
        }
        free(reg->plugins);
        reg->plugins = NULL;
        reg->n = reg->cap = 0;
}

void services_introspection_platform(const char **os, const char **arch, const char **variant)
{
        /* GOARCH spelling, which is what containerd's platforms.DefaultSpec() reports */
#if defined(__x86_64__)
        static const char *const a = "amd64", *const v = "";
#elif defined(__aarch64__)
        static const char *const a = "arm64", *const v = "v8";
#elif defined(__i386__)
        static const char *const a = "386", *const v = "";
#elif defined(__arm__)
        static const char *const a = "arm", *const v = "v7";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        static const char *const a = "ppc64le", *const v = "";
#elif defined(__s390x__)
        static const char *const a = "s390x", *const v = "";
#elif defined(__riscv) && __riscv_xlen == 64
        static const char *const a = "riscv64", *const v = "";
#else
        static const char *const a = "unknown", *const v = "";
#endif
        *os = "linux";
        *arch = a;
        *variant = v;
}

static bool uuid_valid(const char *s, size_t n)
{
        if (n != UUID_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]) || s[i] == '\0')
                        return false;
        }
        return true;
}

static int uuid_generate(char out[UUID_LEN + 1], struct error **err)
{
        unsigned char b[16];
        size_t got = 0;

        while (got < sizeof(b)) {
                ssize_t k = getrandom(b + got, sizeof(b) - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(err, errno, "generate server uuid");
                }
                got += (size_t)k;
        }
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        snprintf(out, UUID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

int services_introspection_uuid(const char *root, char **ret, struct error **err)
{
        _cleanup_close_ int rootfd = -1, dirfd = -1, fd = -1;
        char buf[UUID_LEN + 2];
        ssize_t n;

        rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return error_set(err, errno, "open root %s", root);
        if (mkdirat(rootfd, UUID_DIR, 0700) < 0 && errno != EEXIST)
                return error_set(err, errno, "mkdir %s/%s", root, UUID_DIR);
        dirfd = openat(rootfd, UUID_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dirfd < 0)
                return error_set(err, errno, "open %s/%s", root, UUID_DIR);

        fd = openat(dirfd, "uuid", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
                n = read(fd, buf, sizeof(buf));
                if (n < 0)
                        return error_set(err, errno, "read %s/%s/uuid", root, UUID_DIR);
                if (!uuid_valid(buf, (size_t)n))
                        return error_set(err, EINVAL, "invalid UUID in %s/%s/uuid", root, UUID_DIR);
                *ret = xstrndup(buf, (size_t)n);
                return 0;
        }
        if (errno != ENOENT)
                return error_set(err, errno, "open %s/%s/uuid", root, UUID_DIR);

        char u[UUID_LEN + 1];
        int r = uuid_generate(u, err);
        if (r < 0)
                return r;
        /* write-to-temp plus rename: a crash never leaves a half-written UUID behind */
        fd = openat(dirfd, "uuid.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return error_set(err, errno, "create %s/%s/uuid", root, UUID_DIR);
        n = write(fd, u, UUID_LEN);
        if (n != UUID_LEN || fsync(fd) < 0) {
                r = error_set(err, n < 0 || errno ? errno : EIO, "write %s/%s/uuid", root, UUID_DIR);
                (void)unlinkat(dirfd, "uuid.tmp", 0);
                return r;
        }
        if (renameat(dirfd, "uuid.tmp", dirfd, "uuid") < 0) {
                r = error_set(err, errno, "rename %s/%s/uuid", root, UUID_DIR);
                (void)unlinkat(dirfd, "uuid.tmp", 0);
                return r;
        }
        *ret = xstrdup(u);
        return 0;
}

/* The fields containerd's introspection adaptor exposes: type and id (platforms and capabilities are
 * accepted by the parser but never present, as upstream). */
static bool plugin_field(const char *const *path, size_t n, const char **ret_value, void *data)
{
        const struct plugin_info *p = data;
        const char *v = NULL;

        if (n == 0)
                return false;
        if (strcmp(path[0], "type") == 0)
                v = p->type;
        else if (strcmp(path[0], "id") == 0)
                v = p->id;
        if (!v || v[0] == '\0')
                return false;
        *ret_value = v;
        return true;
}

int services_introspection_plugins(const struct plugin_registry *reg, const char *const *filters, size_t n_filters,
                                   const struct plugin_info ***ret, size_t *ret_n, struct error **err)
{
        _cleanup_(filter_freep) struct filter *f = NULL;
        _cleanup_error_ struct error *perr = NULL;

        int r = filter_parse((char *const *)filters, n_filters, &f, &perr);
        if (r < 0) {
                /* containerd wraps the parse error once more (ToGRPCf(ErrInvalidArgument, err.Error())), so the
                 * client sees "...: invalid argument: invalid argument" */
                _cleanup_free_ char *msg = error_message(perr);
                return error_set(err, EINVAL, "%s", msg);
        }

        const struct plugin_info **out = xcalloc(reg->n ? reg->n : 1, sizeof(*out));
        size_t k = 0;
        for (size_t i = 0; i < reg->n; i++)
                if (filter_match(f, plugin_field, (void *)&reg->plugins[i]))
                        out[k++] = &reg->plugins[i];
        *ret = out;
        *ret_n = k;
        return 0;
}
