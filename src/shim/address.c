/* Shim socket addresses: sha256(grpc address + "/" + ns + "/" + group) as containerd's shim computes it
 * (PROTOCOLS.md 3.2), placed under the daemon's own run dir instead of a hard-coded /run/containerd/s.
 * sha256 is util's own (no crypto library; it also builds with musl). */
#include <string.h>
#include <sys/un.h>

#include "shim/shim.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/sha256.h"

void shim_sha256_hex(const void *buf, size_t len, char out[65])
{
        struct sha256 s;
        uint8_t md[SHA256_SIZE];
        sha256_init(&s);
        sha256_update(&s, buf, len);
        sha256_final(&s, md);
        for (int i = 0; i < SHA256_SIZE; i++) {
                out[2 * i] = "0123456789abcdef"[md[i] >> 4];
                out[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
        }
        out[64] = '\0';
}

char *shim_socket_path(const char *grpc_address, const char *ns, const char *group)
{
        _cleanup_free_ char *key = NULL, *dir = NULL;
        const char *addr = grpc_address, *slash;
        char hex[65];
        char *path;

        /* containerd hashes the address as given; the directory comes from the path without a scheme */
        key = xasprintf("%s/%s/%s", grpc_address, ns, group);
        shim_sha256_hex(key, strlen(key), hex);
        if (strncmp(addr, "unix://", 7) == 0)
                addr += 7;
        slash = strrchr(addr, '/');
        if (!slash)
                dir = xstrdup(".");
        else if (slash == addr)
                dir = xstrdup("");
        else
                dir = xstrndup(addr, (size_t)(slash - addr));
        path = xasprintf("%s/s/%s", dir, hex);
        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
                free(path);
                return NULL;
        }
        return path;
}

char *shim_group_id(const char *config_json, size_t len, const char *id)
{
        static const char *const keys[] = {"io.kubernetes.cri.sandbox-id", "io.containerd.runc.v2.group"};
        struct shim_json root, ann, v;
        char *ret = NULL;

        if (!config_json || shim_json_parse(config_json, len, &root) < 0 ||
            shim_json_member(&root, "annotations", &ann) < 0)
                return xstrdup(id);
        for (size_t i = 0; i < ELEMENTSOF(keys) && !ret; i++)
                if (shim_json_member(&ann, keys[i], &v) == 0) {
                        ret = shim_json_strdup(&v);
                        if (ret && !*ret) {
                                free(ret);
                                ret = NULL;
                        }
                }
        return ret ? ret : xstrdup(id);
}
