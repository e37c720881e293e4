/* Plugin table mechanics: containerd's dependency order (plugin.Graph), initialisation with containerd's log
 * lines, and lookups. The table itself is in builtins.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

const struct plugin_info *daemon_plugin_find(const struct daemon *d, const char *type, const char *id)
{
        for (size_t i = 0; i < d->registry.n; i++) {
                const struct plugin_info *p = &d->registry.plugins[i];
                if (strcmp(p->type, type) == 0 && (!id || strcmp(p->id, id) == 0))
                        return p;
        }
        return NULL;
}

bool daemon_plugin_type_ready(const struct daemon *d, const char *type)
{
        for (size_t i = 0; i < d->registry.n; i++) {
                const struct plugin_info *p = &d->registry.plugins[i];
                if (strcmp(p->type, type) == 0 && p->init_err == 0)
                        return true;
        }
        return false;
}

/* containerd plugin.Graph children(): for each required type in order, every plugin of that type ("*": every
 * plugin) in table order goes first, recursively; a plugin is placed once. Upstream has no cycle guard; the
 * `placing` marks make a cycle end instead of recursing forever. */
static void place(const struct daemon_plugin *table, size_t n, size_t i, bool *placed, bool *placing, size_t *out,
                  size_t *k)
{
        if (placed[i] || placing[i])
                return;
        placing[i] = true;
        for (size_t r = 0; table[i].requires && table[i].requires[r]; r++) {
                const char *t = table[i].requires[r];
                for (size_t j = 0; j < n; j++)
                        if (j != i && (strcmp(t, "*") == 0 || strcmp(table[j].type, t) == 0))
                                place(table, n, j, placed, placing, out, k);
        }
        placing[i] = false;
        placed[i] = true;
        out[(*k)++] = i;
}

void daemon_plugins_order(const struct daemon_plugin *table, size_t n, size_t **ret)
{
        _cleanup_free_ bool *placed = xcalloc(n + 1, sizeof(bool));
        _cleanup_free_ bool *placing = xcalloc(n + 1, sizeof(bool));
        size_t *out = xcalloc(n + 1, sizeof(size_t));
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                place(table, n, i, placed, placing, out, &k);
        *ret = out;
}

static bool strv_has(char *const *v, const char *s)
{
        for (size_t i = 0; v && v[i]; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

int daemon_plugins_init(struct daemon *d, const struct daemon_plugin *table, size_t n, struct error **err)
{
        _cleanup_free_ size_t *order = NULL;
        char *const *disabled = d->config ? d->config->disabled_plugins : NULL;
        char *const *required = d->config ? d->config->required_plugins : NULL;
        int ret = 0;

        daemon_plugins_order(table, n, &order);
        for (size_t k = 0; k < n; k++) {
                const struct daemon_plugin *dp = &table[order[k]];
                _cleanup_error_ struct error *perr = NULL;
                _cleanup_free_ char *full = xasprintf("%s.%s", dp->type, dp->id);
                const struct log_field f[] = {{"type", dp->type}, {NULL, NULL}};

                if (strv_has(disabled, full)) {
                        log_fields(LOG_LEVEL_INFO, f, "skip loading plugin \"%s\"...", full);
                        continue;
                }
                log_fields(LOG_LEVEL_INFO, f, "loading plugin \"%s\"...", full);
                struct plugin_info *self = services_plugin_registry_add(&d->registry, dp->type, dp->id);
                self->has_platform = dp->platform;
                for (size_t i = 0; dp->requires && dp->requires[i]; i++) {
                        char **v = self->requires;
                        size_t m = 0;
                        while (v && v[m])
                                m++;
                        v = xreallocarray(v, m + 2, sizeof(char *));
                        v[m] = xstrdup(dp->requires[i]);
                        v[m + 1] = NULL;
                        self->requires = v;
                }
                int r = dp->init(d, self, &perr);
                if (r < 0) {
                        services_plugin_info_set_error(self, r, perr);
                        const struct log_field ef[] = {{"error", self->init_msg}, {"type", dp->type}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_WARN, ef, "failed to load plugin %s", full);
                        if (ret == 0 && strv_has(required, full))
                                ret = error_set(err, -r, "load required plugin %s: %s", full, self->init_msg);
                }
        }
        /* containerd: every required plugin must have been loaded */
        for (size_t i = 0; ret == 0 && required && required[i]; i++) {
                bool found = false;
                for (size_t j = 0; j < d->registry.n && !found; j++) {
                        _cleanup_free_ char *full = xasprintf("%s.%s", d->registry.plugins[j].type,
                                                              d->registry.plugins[j].id);
                        found = strcmp(full, required[i]) == 0;
                }
                if (!found)
                        ret = error_set(err, ENOENT, "required plugin %s not included", required[i]);
        }
        return ret;
}
