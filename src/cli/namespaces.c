/* krill namespaces (ns, namespace): create, list, remove, label (ctr namespaces). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/tabwriter.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/identifiers.h"
#include "util/log.h"

#define NS_PATH(m) "/containerd.services.namespaces.v1.Namespaces/" m

typedef Containerd__Services__Namespaces__V1__Namespace Namespace;
typedef Containerd__Services__Namespaces__V1__Namespace__LabelsEntry LabelsEntry;

static int run_create(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        const char *name;
        int optind_;

        int r = cli_parse_flags(g, cmd, "krill namespaces create", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        cli_object_with_labels(argc - optind_, argv + optind_, &name, &labels);
        if (name[0] == '\0')
                return cli_failf(g, "please specify a namespace");
        if (cli_connect(g, &c) < 0)
                return 1;

        size_t n = 0;
        while (labels && labels[2 * n])
                n++;
        _cleanup_free_ LabelsEntry *entries = xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ LabelsEntry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                containerd__services__namespaces__v1__namespace__labels_entry__init(&entries[i]);
                entries[i].key = labels[2 * i];
                entries[i].value = labels[2 * i + 1];
                ptrs[i] = &entries[i];
        }
        Namespace ns = CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
        ns.name = (char *)name;
        ns.n_labels = n;
        ns.labels = ptrs;
        Containerd__Services__Namespaces__V1__CreateNamespaceRequest req =
                CONTAINERD__SERVICES__NAMESPACES__V1__CREATE_NAMESPACE_REQUEST__INIT;
        req.namespace_ = &ns;
        r = grpc_client_unary(c, NS_PATH("Create"), NULL, &req.base,
                              &containerd__services__namespaces__v1__create_namespace_response__descriptor, &resp,
                              &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        bool quiet = false;
        int optind_;
        const struct cli_flag flags[] = {{"quiet", 'q', false, &quiet, NULL}, {NULL, 0, false, NULL, NULL}};

        int r = cli_begin(g, cmd, "krill namespaces list", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        Containerd__Services__Namespaces__V1__ListNamespacesRequest req =
                CONTAINERD__SERVICES__NAMESPACES__V1__LIST_NAMESPACES_REQUEST__INIT;
        r = grpc_client_unary(c, NS_PATH("List"), NULL, &req.base,
                              &containerd__services__namespaces__v1__list_namespaces_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Containerd__Services__Namespaces__V1__ListNamespacesResponse *list = (void *)resp;

        if (quiet) {
                for (size_t i = 0; i < list->n_namespaces; i++)
                        printf("%s\n", list->namespaces[i]->name);
                protobuf_c_message_free_unpacked(resp, NULL);
                return 0;
        }
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 1, ' ');
        cli_tabwriter_write(tw, "NAME\tLABELS\t\n");
        for (size_t i = 0; i < list->n_namespaces; i++) {
                Namespace *ns = list->namespaces[i];
                _cleanup_free_ char **kv = xcalloc(ns->n_labels + 1, sizeof(char *));
                for (size_t j = 0; j < ns->n_labels; j++)
                        kv[j] = xasprintf("%s=%s", ns->labels[j]->key, ns->labels[j]->value);
                qsort(kv, ns->n_labels, sizeof(char *), cmp_str);
                cli_tabwriter_printf(tw, "%s\t", ns->name);
                for (size_t j = 0; j < ns->n_labels; j++) {
                        cli_tabwriter_printf(tw, "%s%s", j ? "," : "", kv[j]);
                        free(kv[j]);
                }
                cli_tabwriter_write(tw, "\t\n");
        }
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(resp, NULL);
        return r < 0 ? 1 : 0;
}

/* Removes a cgroup directory and the child cgroups below it, depth first, as containerd's cgroups.remove does with
 * os.RemoveAll: the control files cannot be unlinked but go with their directory; a cgroup holding processes
 * cannot be removed (EBUSY). A missing directory is fine. */
static int rmdir_cgroup_tree(int dirfd_, const char *name, int depth)
{
        if (depth > 64)
                return -ELOOP;
        int fd = openat(dirfd_, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -ENOMEM;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_type == DT_DIR && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        (void)rmdir_cgroup_tree(dirfd(d), de->d_name, depth + 1);
        closedir(d);
        if (unlinkat(dirfd_, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* `--cgroup` (ctr's runtime/opts.WithNamespaceCgroupDeletion): like ctr, the client removes the namespace's cgroup
 * before it asks for the namespace's deletion, and a failure keeps the namespace. On a cgroup2-only host that is
 * <root>/<ns>; otherwise (v1 or this machine's hybrid layout) <ns> in every v1 hierarchy mounted under root, where a
 * hierarchy without it is fine, as cgroups.Load skips deleted paths. The unified mount of a hybrid host is left
 * alone, as containerd leaves it. Only valid names become paths. */
static int delete_ns_cgroup(const char *root, const char *ns, struct error **err)
{
        struct statfs sf;
        if (!identifier_is_valid(ns))
                return 0; /* no such namespace, so no cgroup of it; the Delete call reports the name */
        if (statfs(root, &sf) < 0)
                return error_set(err, errno, "statfs %s", root);
        if (sf.f_type == CGROUP2_SUPER_MAGIC) {
                _cleanup_free_ char *p = xasprintf("%s/%s", root, ns);
                int r = rmdir_cgroup_tree(AT_FDCWD, p, 0);
                return r < 0 ? error_set(err, -r, "rmdir %s", p) : 0;
        }
        _cleanup_(closedirp) DIR *d = opendir(root);
        if (!d)
                return error_set(err, errno, "open %s", root);
        _cleanup_free_ char *failed = NULL;
        int first = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISDIR(st.st_mode))
                        continue; /* cpu -> cpu,cpuacct style links name a hierarchy twice */
                _cleanup_free_ char *h = xasprintf("%s/%s", root, de->d_name);
                if (statfs(h, &sf) < 0 || sf.f_type != CGROUP_SUPER_MAGIC)
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", h, ns);
                int r = rmdir_cgroup_tree(AT_FDCWD, p, 0);
                if (r == 0)
                        continue;
                if (!first)
                        first = -r;
                char *more = xasprintf("%s%s%s", failed ? failed : "", failed ? ", " : "", p);
                free(failed);
                failed = more;
        }
        if (failed)
                return error_set(err, first, "cgroups: unable to remove paths %s", failed);
        return 0;
}

static int run_remove(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        struct grpc_client *c = NULL;
        _cleanup_free_ char *exit_err = NULL;
        bool cgroup = false;
        int optind_;
        const struct cli_flag flags[] = {{"cgroup", 'c', false, &cgroup, NULL}, {NULL, 0, false, NULL, NULL}};

        int r = cli_begin(g, cmd, "krill namespaces remove", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        for (int i = optind_; i < argc; i++) {
                _cleanup_error_ struct error *err = NULL;
                ProtobufCMessage *resp = NULL;
                Containerd__Services__Namespaces__V1__DeleteNamespaceRequest req =
                        CONTAINERD__SERVICES__NAMESPACES__V1__DELETE_NAMESPACE_REQUEST__INIT;
                req.name = argv[i];
                r = cgroup ? delete_ns_cgroup("/sys/fs/cgroup", argv[i], &err) : 0;
                if (r == 0)
                        r = grpc_client_unary(c, NS_PATH("Delete"), NULL, &req.base, &google__protobuf__empty__descriptor,
                                              &resp, &err);
                if (r < 0 && r != -ENOENT) {
                        /* ctr logs each failure, keeps going, and fails with the first one at the end; a namespace
                         * that is already gone counts as removed */
                        _cleanup_free_ char *m = error_message(err);
                        const struct log_field f[] = {{"error", m}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_ERROR, f, "unable to delete %s", argv[i]);
                        if (!exit_err)
                                exit_err = xasprintf("unable to delete %s: %s", argv[i], m);
                        continue;
                }
                if (resp)
                        protobuf_c_message_free_unpacked(resp, NULL);
                printf("%s\n", argv[i]);
                fflush(stdout);
        }
        grpc_client_free(c);
        if (exit_err)
                return cli_failf(g, "%s", exit_err);
        return 0;
}

static int run_label(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_strv_free_ char **labels = NULL;
        struct grpc_client *c = NULL;
        const char *name;
        int optind_;

        int r = cli_parse_flags(g, cmd, "krill namespaces label", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        cli_object_with_labels(argc - optind_, argv + optind_, &name, &labels);
        if (name[0] == '\0')
                return cli_failf(g, "please specify a namespace");
        if (cli_connect(g, &c) < 0)
                return 1;
        /* the containerd client's SetLabel: one Update per label, masked to "labels.<key>" */
        for (size_t i = 0; labels && labels[i]; i += 2) {
                _cleanup_error_ struct error *err = NULL;
                _cleanup_free_ char *path = xasprintf("labels.%s", labels[i]);
                ProtobufCMessage *resp = NULL;
                LabelsEntry e = CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__LABELS_ENTRY__INIT;
                LabelsEntry *ep = &e;
                e.key = labels[i];
                e.value = labels[i + 1];
                Namespace ns = CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
                ns.name = (char *)name;
                ns.n_labels = 1;
                ns.labels = &ep;
                Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
                char *paths[] = {path};
                mask.n_paths = 1;
                mask.paths = paths;
                Containerd__Services__Namespaces__V1__UpdateNamespaceRequest req =
                        CONTAINERD__SERVICES__NAMESPACES__V1__UPDATE_NAMESPACE_REQUEST__INIT;
                req.namespace_ = &ns;
                req.update_mask = &mask;
                r = grpc_client_unary(c, NS_PATH("Update"), NULL, &req.base,
                                      &containerd__services__namespaces__v1__update_namespace_response__descriptor,
                                      &resp, &err);
                if (r < 0) {
                        grpc_client_free(c);
                        return cli_fail(g, err);
                }
                protobuf_c_message_free_unpacked(resp, NULL);
        }
        grpc_client_free(c);
        return 0;
}

static const struct cli_command create_command = {
        .name = "create",
        .aliases = (const char *const[]){"c", NULL},
        .usage = "create a new namespace",
        .args_usage = "<name> [<key>=<value>]",
        .run = run_create,
};

static const struct cli_command list_command = {
        .name = "list",
        .aliases = (const char *const[]){"ls", NULL},
        .usage = "list namespaces",
        .args_usage = "[flags]",
        .flags_help = "   --quiet, -q  print only the namespace name\n",
        .run = run_list,
};

static const struct cli_command remove_command = {
        .name = "remove",
        .aliases = (const char *const[]){"rm", NULL},
        .usage = "remove one or more namespaces",
        .args_usage = "<name> [<name>, ...]",
        .flags_help = "   --cgroup, -c  delete the namespace's cgroup\n",
        .run = run_remove,
};

static const struct cli_command label_command = {
        .name = "label",
        .usage = "set and clear labels for a namespace",
        .args_usage = "<name> [<key>=<value>, ...]",
        .run = run_label,
};

const struct cli_command cli_namespaces_command = {
        .name = "namespaces",
        .aliases = (const char *const[]){"namespace", "ns", NULL},
        .usage = "manage namespaces",
        .subcommands = (const struct cli_command *const[]){&create_command, &list_command, &remove_command,
                                                           &label_command, NULL},
};
