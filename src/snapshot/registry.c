/* Snapshotter registry; see registry.h. */
#include "snapshot/registry.h"

#include <errno.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"

struct snapshot_registry {
        char *default_name;
        struct snapshotter **v;
        size_t n;
};

struct snapshot_registry *snapshot_registry_new(const char *default_name)
{
        struct snapshot_registry *r = xcalloc(1, sizeof(*r));
        r->default_name = xstrdup(default_name && default_name[0] ? default_name : "overlayfs");
        return r;
}

int snapshot_registry_add(struct snapshot_registry *r, struct snapshotter *s)
{
        for (size_t i = 0; i < r->n; i++) {
                if (strcmp(r->v[i]->name, s->name) == 0) {
                        snapshot_close(s);
                        return -EEXIST;
                }
        }
        r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
        r->v[r->n++] = s;
        return 0;
}

struct snapshotter *snapshot_registry_get(const struct snapshot_registry *r, const char *name)
{
        if (!r)
                return NULL;
        if (!name || !name[0])
                name = r->default_name;
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->v[i]->name, name) == 0)
                        return r->v[i];
        return NULL;
}

const char *snapshot_registry_default(const struct snapshot_registry *r)
{
        return r->default_name;
}

const char *snapshot_registry_name(const struct snapshot_registry *r, size_t i)
{
        return i < r->n ? r->v[i]->name : NULL;
}

void snapshot_registry_free(struct snapshot_registry *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                snapshot_close(r->v[i]);
        free(r->v);
        free(r->default_name);
        free(r);
}

struct snapshot_registry *snapshot_registry_open_default(const char *root, const char *default_name,
                                                         struct error **err)
{
        struct snapshot_registry *r = snapshot_registry_new(default_name);
        struct snapshotter *s = NULL;
        _cleanup_free_ char *ov = xasprintf("%s/io.containerd.snapshotter.v1.overlayfs", root);
        _cleanup_free_ char *na = xasprintf("%s/io.containerd.snapshotter.v1.native", root);

        if (snapshot_overlay_open(ov, &s, err) == 0) {
                /* containerd's overlay plugin also refuses to load where overlayfs cannot be mounted */
                int ok = snapshot_overlay_supported(ov, NULL);
                if (ok == 1)
                        (void)snapshot_registry_add(r, s);
                else {
                        snapshot_close(s);
                        (void)error_set(err, EOPNOTSUPP, "overlayfs snapshotter: overlay mounts unavailable in %s",
                                        ov);
                }
        }
        s = NULL;
        if (snapshot_native_open(na, &s, err) == 0)
                (void)snapshot_registry_add(r, s);
        return r;
}

int snapshot_registry_gc_remove(const char *snapshotter, const char *backend_key, void *userdata)
{
        struct snapshotter *s = snapshot_registry_get(userdata, snapshotter);
        struct error *err = NULL;
        if (!s)
                return -ENOENT;
        int r = snapshot_remove(s, backend_key, &err);
        error_free(&err);
        return r == -ENOENT ? 0 : r;
}
