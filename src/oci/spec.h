/* OCI runtime spec generation, as containerd's oci package does it for `ctr run` (oci/spec.go,
 * spec_opts.go): a default Linux spec, then options applied in ctr's order. Specs are jansson objects
 * (json_t *, owned by the caller) because the spec travels as JSON (Container.spec Any,
 * types.containerd.io/opencontainers/runtime-spec/1/Spec) and the runtime reads config.json.
 * Used by the krill CLI (client-side, like ctr) and by CRI later. No function logs; all return -errno. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

#define OCI_SPEC_VERSION "1.0.2-dev" /* runtime-spec as vendored by containerd 1.6 */

/* containerd's populateDefaultUnixSpec + WithDefaultUnixDevices: root "rootfs", cwd "/", 14 default caps,
 * RLIMIT_NOFILE 1024, masked/readonly paths, cgroupsPath "/<ns>/<id>", pid/ipc/uts/mount/network
 * namespaces, default mounts (proc, /dev tmpfs, devpts, shm, mqueue, sysfs ro, /run tmpfs), device
 * cgroup deny-all + the default unix devices. Returns a new object. */
json_t *oci_spec_new_default(const char *ns, const char *id);

/* The parts of an OCI image config (image-spec config.json "config" object) a spec needs. */
struct oci_image_config {
        char **env;        /* NULL-terminated or NULL */
        char **entrypoint; /* NULL-terminated or NULL */
        char **cmd;        /* NULL-terminated or NULL */
        char *working_dir;
        char *user;
        char *stop_signal;
        char **labels; /* "k=v" pairs, NULL-terminated or NULL */
};

/* Parses an image config blob (bounded: at most 4 MiB, depth 64). Fills *ret (free with
 * oci_image_config_done). Unknown media types are the caller's concern. */
int oci_image_config_parse(const char *data, size_t len, struct oci_image_config *ret, struct error **err);
void oci_image_config_done(struct oci_image_config *c);

/* WithImageConfigArgs: env (image env, or the default PATH, then the spec's own values replace/append),
 * args = entrypoint + (args if given, else cmd), cwd, user (resolved in rootfs_path when not numeric;
 * additional gids from rootfs /etc/group). rootfs_path may be NULL when nothing needs resolving; a
 * symbolic user without a rootfs is an error. */
int oci_spec_apply_image_config(json_t *spec, const struct oci_image_config *ic, char *const *args,
                                const char *rootfs_path, struct error **err);

/* WithUser(userstr): "uid", "name", "uid:gid", "name:group", ... resolved against rootfs_path's
 * /etc/passwd and /etc/group (read beneath the rootfs: image content is untrusted). */
int oci_spec_set_user(json_t *spec, const char *user, const char *rootfs_path, struct error **err);

/* replaceOrAppendEnvValues(spec env, overrides): "K=V" replaces or appends, a bare "K" removes K. */
void oci_spec_set_env(json_t *spec, char *const *env);
void oci_spec_set_args(json_t *spec, char *const *args);
void oci_spec_set_cwd(json_t *spec, const char *cwd);
void oci_spec_set_tty(json_t *spec);          /* terminal true, TERM=xterm */
void oci_spec_set_readonly_rootfs(json_t *spec);
void oci_spec_set_memory_limit(json_t *spec, int64_t bytes);
void oci_spec_set_cpus(json_t *spec, double cpus); /* CFS quota = cpus * 100000, period 100000 */
/* --net-host: host network namespace (removes the netns entry), host /etc/hosts and /etc/resolv.conf
 * read-only binds, HOSTNAME env. */
void oci_spec_set_host_network(json_t *spec, const char *hostname);
/* --privileged: all current capabilities, no masked/readonly paths, writable sysfs/cgroupfs, no seccomp,
 * all devices allowed, host devices added. */
int oci_spec_set_privileged(json_t *spec, struct error **err);
void oci_spec_set_annotation(json_t *spec, const char *key, const char *value);
/* ctr's --mount "type=bind,src=/a,dst=/b,options=rbind:ro" syntax. */
int oci_spec_add_mount_string(json_t *spec, const char *mount, struct error **err);
void oci_spec_add_mount(json_t *spec, const char *type, const char *source, const char *dest,
                        char *const *options);
/* Serialises compactly (what goes into the Any and config.json). Returns a new string. */
char *oci_spec_dump(const json_t *spec);

/* --- spec_opts.c: the rest of ctr run's options --- */

/* WithAddedCapabilities / WithDroppedCapabilities: bounding, effective and permitted sets ("CAP_X" names). */
void oci_spec_add_capabilities(json_t *spec, char *const *caps);
void oci_spec_drop_capabilities(json_t *spec, char *const *caps);
/* ctr's check: "capabilities must be specified with 'CAP_' prefix". */
int oci_check_capability_names(char *const *caps, struct error **err);
/* WithCgroup: linux.cgroupsPath; "" removes it (Go omits the empty string): the runtime picks its default. */
void oci_spec_set_cgroups_path(json_t *spec, const char *path);
/* noNewPrivileges (--allow-new-privs sets false). */
void oci_spec_set_no_new_privileges(json_t *spec, bool on);
void oci_spec_set_rootfs_propagation(json_t *spec, const char *propagation);
/* WithRootFSPath: root.path (absolute for a --rootfs directory). */
void oci_spec_set_root_path(json_t *spec, const char *path);
/* WithLinuxNamespace: replaces the namespace of that type or appends it; path may be NULL. */
void oci_spec_set_namespace(json_t *spec, const char *type, const char *path);
/* --with-ns "nstype:path" with ctr's validation and messages. */
int oci_parse_with_ns(const char *arg, char **ret_type, char **ret_path, struct error **err);
void oci_spec_set_cpu_shares(json_t *spec, uint64_t shares);
void oci_spec_set_cpu_cfs(json_t *spec, int64_t quota, uint64_t period);
/* WithDevices(path, containerPath, permissions): a device node, or every device below a directory (ctr's
 * getDevices: pts, shm, fd, mqueue, .lxc, .lxd-mounts, .udev skipped, console skipped), added to
 * linux.devices with an allow rule each. */
int oci_spec_add_devices(json_t *spec, const char *path, const char *container_path, const char *permissions,
                         struct error **err);

/* WithHostDevices: every device under /dev (getDevices' order: sorted by name, depth first) appended to
 * linux.devices, no cgroup rules. */
int oci_spec_add_host_devices(json_t *spec, struct error **err);

struct oci_id_mapping {
        uint32_t container_id, host_id, size;
};
/* "container-id:host-id:size" (Go ParseUint base 0). */
int oci_parse_id_mapping(const char *s, struct oci_id_mapping *ret, struct error **err);
/* WithUserNamespace: a user namespace (unless present) and one uid and one gid mapping appended. */
void oci_spec_set_user_namespace(json_t *spec, const struct oci_id_mapping *uid, const struct oci_id_mapping *gid);

/* WithSpecFromFile: the whole spec read from a JSON file (bounded: 16 MiB, depth 64). */
int oci_spec_load_file(const char *path, json_t **ret, struct error **err);
/* seccomp.WithProfile: linux.seccomp = the JSON object in path. */
int oci_spec_set_seccomp_profile(json_t *spec, const char *path, struct error **err);
/* seccomp.DefaultProfile(spec): containerd's default profile for this architecture, kernel and the spec's
 * bounding capabilities (so apply it after capability changes, as ctr does). Returns a new object. */
json_t *oci_seccomp_default_profile(const json_t *spec);
