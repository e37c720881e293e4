/* Image pull (containerd's client.Pull with unpack): resolve -> root manifest or index -> the platform's
 * manifest(s) -> config -> layers, up to max_concurrent_downloads at a time, each streamed from the
 * registry straight into a namespaced content ingest (ref "layer-sha256:..", resumed with Range from the
 * ingest's offset, size and sha256 verified at commit). Already-present blobs are not downloaded.
 * Layers are unpacked through the caller's unpack hook as soon as they and every layer below them are in
 * the store, while later layers still download. The image record is created (or updated) only once
 * everything is fetched and unpacked.
 *
 * GC labels, as containerd sets them: index -> containerd.io/gc.ref.content.m.<i>; manifest ->
 * containerd.io/gc.ref.content.config and containerd.io/gc.ref.content.l.<i>; config ->
 * containerd.io/gc.ref.snapshot.<snapshotter> = top chain ID (after unpack); layers ->
 * containerd.io/uncompressed = diff ID; every blob -> containerd.io/distribution.source.<host> = <repo>.
 * Everything is written under a lease (the caller's, or a temporary one with containerd.io/gc.expire 24h
 * that is deleted when the pull ends, so a failed pull leaves nothing that GC keeps).
 *
 * Blocking: image_pull runs a private libuv loop and returns when done. Call it from a thread of its own
 * (the CLI's main thread, or a uv_thread in the daemon), not from the daemon's loop or uv's worker pool (the
 * unpack steps run on threads image_pull creates). Never logs above debug. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content/store.h"
#include "image/manifest.h"
#include "image/registry.h"
#include "image/resolver.h"
#include "metadata/db.h"

#define IMAGE_PULL_DEFAULT_CONCURRENCY 3

struct image_pull_layer {
        const char *digest; /* compressed blob, committed in the content store */
        const char *media_type;
        const char *diff_id; /* config rootfs.diff_ids[i] */
};

/* Unpacks layers[0..n) into snapshots by chain ID (layers whose chain exists are skipped: the hook is called
 * with growing prefixes of the same list). Runs on a thread image_pull creates; blocking is fine. Returns
 * the top chain ID in *ret_chain_id (new string). services_snapshots_unpack has exactly this contract. */
typedef int (*image_pull_unpack_fn)(const struct image_pull_layer *layers, size_t n, const char *lease,
                                    char **ret_chain_id, void *userdata, struct error **err);

enum image_pull_status {
        IMAGE_PULL_WAITING,     /* queued */
        IMAGE_PULL_DOWNLOADING, /* bytes arriving: offset/total */
        IMAGE_PULL_EXISTS,      /* already in the content store */
        IMAGE_PULL_DONE,        /* downloaded and committed */
        IMAGE_PULL_UNPACKING,
        IMAGE_PULL_UNPACKED,
};

/* Progress for one blob ("layer-sha256:..", "manifest-sha256:.."), on the pull's loop thread. */
typedef void (*image_pull_progress_fn)(const char *ref, const struct image_descriptor *desc, enum image_pull_status st,
                                       int64_t offset, void *userdata);

/* Where a pull puts what it fetches. The pipeline (resolve, concurrent downloads, unpack as layers complete,
 * labels, image record last) is the same for every sink; the daemon writes to its local stores
 * (image_pull_local_sink, used when options.sink is NULL) and the CLI to krilld over content.v1/images.v1
 * (src/cli/pull.c, like ctr). Every function runs on the pull's loop thread and may block (briefly); errors
 * are -errno with err set. `writer` is the sink's own object for one open ingest. */
struct image_pull_sink {
        /* 0 if the namespace has the blob, -ENOENT if not (err untouched then) */
        int (*has)(void *sink, const char *digest, struct error **err);
        /* Adds/replaces labels (strv of key, value pairs; an empty value removes the label) on a present blob. */
        int (*add_labels)(void *sink, const char *digest, char *const *labels, struct error **err);
        /* Reads a present blob of the given size (NUL-terminated copy). */
        int (*read)(void *sink, const char *digest, int64_t size, char **ret, size_t *ret_n, struct error **err);
        /* Opens (or resumes) the ingest ref for a blob of total bytes and expected digest, under lease; *ret_offset
         * is the number of bytes already in the ingest (the next write goes there). -EEXIST: the blob is
         * present; -EAGAIN: another writer holds the ref (the pull retries later). */
        int (*open)(void *sink, const char *ref, int64_t total, const char *expected, const char *lease,
                    void **ret_writer, int64_t *ret_offset, struct error **err);
        /* Appends at the current offset (may be buffered or pipelined; errors may surface at a later call). */
        int (*write)(void *writer, const void *data, size_t n, struct error **err);
        /* Starts the ingest over at offset 0. */
        int (*truncate)(void *writer, struct error **err);
        /* Verifies size and digest (the sink's side) and commits with labels (pairs); -EEXIST if the blob was
         * already there (labels then not applied), -EBUSY on a size or digest mismatch. */
        int (*commit)(void *writer, int64_t size, const char *expected, char *const *labels, struct error **err);
        /* Closes the writer, keeping an uncommitted ingest for a later resume. NULL-safe. */
        void (*close)(void *writer);
        /* Removes the ingest ref (after a verification failure). */
        int (*abort)(void *sink, const char *ref, struct error **err);
        /* Creates the image record, or updates its target if it exists. */
        int (*image_put)(void *sink, const char *name, const struct image_descriptor *target, struct error **err);
        /* A temporary lease (containerd.io/gc.expire 24 h), used when options.lease is NULL; *ret_id new
         * string. May be NULL in a sink whose callers always pass a lease. */
        int (*lease_create)(void *sink, char **ret_id, struct error **err);
        int (*lease_delete)(void *sink, const char *id, struct error **err);
};

/* The local stores of one namespace (what the daemon uses). db, cs and ns are borrowed. */
struct image_pull_local {
        struct metadata_db *db;
        struct content_store *cs;
        const char *ns;
};
extern const struct image_pull_sink image_pull_local_sink; /* sink data: struct image_pull_local * */

struct image_pull_options {
        const char *ref; /* "busybox", "127.0.0.1:5000/test/busybox:1", normalised like docker */
        const char *ns;  /* namespace (for the local sink) */
        struct metadata_db *db;    /* local sink: required when sink is NULL */
        struct content_store *cs;
        const struct image_pull_sink *sink; /* NULL: the local sink over db, cs, ns */
        void *sink_data;
        const char *lease; /* NULL: a temporary lease */
        struct image_resolver_options resolver;
        image_registry_credentials_fn creds; /* NULL: anonymous */
        void *creds_userdata;
        const char *platform;              /* NULL: the host's (image_platform_default) */
        bool all_platforms;                /* fetch every platform (unpack then only for the default/selected one) */
        unsigned max_concurrent_downloads; /* 0: IMAGE_PULL_DEFAULT_CONCURRENCY */
        image_pull_unpack_fn unpack;       /* NULL: no unpack */
        void *unpack_userdata;
        const char *snapshotter; /* for the gc.ref.snapshot label, e.g. "overlayfs" */
        bool no_image;           /* do not create the image record (ctr content fetch) */
        /* containerd's discard_unpacked_layers: after unpack, drop the manifest's gc.ref.content.l.* labels so
         * that GC frees the compressed layers */
        bool discard_unpacked_layers;
        image_pull_progress_fn progress;
        void *progress_userdata;
        const char *user_agent;
};

struct image_pull_result {
        char *name;                     /* image name, e.g. "docker.io/library/busybox:latest" */
        struct image_descriptor target; /* root descriptor (index or manifest) */
        char *chain_id;                 /* top snapshot chain ID, NULL without unpack */
        int64_t bytes_fetched;          /* bytes downloaded (not counting blobs already present) */
};

void image_pull_result_clear(struct image_pull_result *r);

/* A lease id like "pull-<time>-<random hex>" and the RFC 3339 time 24 h ahead for containerd.io/gc.expire
 * (new strings), for sinks that create the temporary lease. */
char *image_pull_lease_id(void);
char *image_pull_lease_expiry(void);

/* Pulls. Errors (-errno, err set), wrapped like containerd's: `failed to resolve reference "x": ...`,
 * `no match for platform in manifest: not found` (the message lists the available platforms), registry
 * status errors, `failed to commit layer-sha256:..: unexpected commit digest ..` (digest mismatch), disk
 * errors. *ret (may be NULL) is filled only on success. */
int image_pull(const struct image_pull_options *o, struct image_pull_result *ret, struct error **err);

/* Daemon entry point: runs image_pull on a thread of its own and calls done on loop (the caller's loop
 * thread) when it ends. The strings of o are copied; o->db, o->cs and the callbacks' userdata must stay
 * valid until done runs; the progress and unpack callbacks run on the pull's threads, not on loop. res and
 * err are borrowed for the call (NULL res on failure). Returns -errno if the thread cannot start. */
typedef void (*image_pull_done_fn)(const struct image_pull_result *res, const struct error *err, void *userdata);
int image_pull_start(uv_loop_t *loop, const struct image_pull_options *o, image_pull_done_fn done, void *userdata,
                     struct error **err);
