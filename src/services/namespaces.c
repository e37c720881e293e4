/* namespaces.v1 logic: thin, because the metadata store already speaks containerd's rules and messages. */
#include "services/namespaces.h"

#include <errno.h>
#include <stdlib.h>

#include "metadata/namespaces.h"
#include "util/alloc.h"
#include "util/cleanup.h"

void services_namespace_done(struct services_namespace *ns)
{
        if (!ns)
                return;
        free(ns->name);
        strv_free(ns->labels);
        ns->name = NULL;
        ns->labels = NULL;
}

int services_namespaces_get(struct metadata_db *db, const char *name, struct services_namespace *ret,
                            struct error **err)
{
        _cleanup_error_ struct error *e = NULL;
        char **labels = NULL;

        int r = metadata_namespace_get(db, name, &labels, &e);
        if (r == -ENOENT) {
                /* containerd's store.Labels() of a missing namespace is an empty map, not NotFound */
                labels = xcalloc(1, sizeof(char *));
        } else if (r < 0) {
                *err = TAKE_PTR(e);
                return r;
        }
        ret->name = xstrdup(name);
        ret->labels = labels;
        return 0;
}

int services_namespaces_list(struct metadata_db *db, struct services_namespace **ret, size_t *ret_n,
                             struct error **err)
{
        _cleanup_strv_free_ char **names = NULL;
        int r = metadata_namespace_list(db, &names, err);
        if (r < 0)
                return r;

        size_t n = 0;
        while (names[n])
                n++;
        struct services_namespace *out = xcalloc(n ? n : 1, sizeof(*out));
        for (size_t i = 0; i < n; i++) {
                r = services_namespaces_get(db, names[i], &out[i], err);
                if (r < 0) {
                        for (size_t j = 0; j < i; j++)
                                services_namespace_done(&out[j]);
                        free(out);
                        return r;
                }
        }
        *ret = out;
        *ret_n = n;
        return 0;
}

int services_namespaces_create(struct metadata_db *db, const char *name, char *const *labels, struct error **err)
{
        return metadata_namespace_create(db, name ? name : "", labels, err);
}

int services_namespaces_update(struct metadata_db *db, const char *name, char *const *labels, char *const *paths,
                               size_t n_paths, struct error **err)
{
        return metadata_namespace_update(db, name ? name : "", labels, paths, n_paths, err);
}

int services_namespaces_delete(struct metadata_db *db, const char *name, struct error **err)
{
        return metadata_namespace_delete(db, name ? name : "", err);
}
