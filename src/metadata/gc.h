/* Garbage collection, mark and sweep as containerd's metadata/gc.go:
 * roots   images (target digest + their gc.ref labels), containers (snapshot + gc.ref labels), resources of
 *         leases that have not expired, content and snapshots labelled containerd.io/gc.root;
 * edges   labels containerd.io/gc.ref.content[.*] = digest and containerd.io/gc.ref.snapshot.<snapshotter>[/...]
 *         = key on content, snapshots, images and containers; a snapshot's parent;
 * sweep   unreachable content references and snapshot references are removed, expired leases deleted,
 *         then blobs that no namespace references are deleted from the content store and the snapshot
 *         callback is told which backend snapshots to remove (children before parents); ingests whose lease
 *         is gone, and unleased ingests idle for METADATA_GC_INGEST_EXPIRE_NS, are aborted.
 * Marking runs in a read transaction; the write transaction that deletes is short (marking is redone inside
 * it only if something was written in between). Blocking: run on a worker thread. Thread-safe; one
 * collection runs at a time. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "content/store.h"
#include "metadata/db.h"

/* containerd expires unleased ingests after 24 hours. */
#define METADATA_GC_INGEST_EXPIRE_NS (24LL * 3600 * 1000000000LL)

#define METADATA_LABEL_GC_ROOT "containerd.io/gc.root"
#define METADATA_LABEL_GC_REF_CONTENT "containerd.io/gc.ref.content"
#define METADATA_LABEL_GC_REF_SNAPSHOT "containerd.io/gc.ref.snapshot."

/* Removes one backend snapshot; errors are counted, not fatal. Called after the metadata commit. */
typedef int (*metadata_gc_snapshot_fn)(const char *snapshotter, const char *backend_key, void *userdata);

struct metadata_gc_stats {
        size_t content_refs; /* namespace content references removed */
        size_t blobs;        /* blobs deleted from the store */
        size_t snapshots;    /* snapshot references removed */
        size_t leases;       /* expired leases removed */
        size_t ingests;      /* ingests aborted: their lease is gone, or unleased and idle for 24 hours */
        size_t errors;       /* blob or snapshot removals that failed */
        int64_t duration_ns;
};

/* cs may be NULL (no blob sweep); snapshot_fn may be NULL. stats may be NULL. */
int metadata_gc_run(struct metadata_db *db, struct content_store *cs, metadata_gc_snapshot_fn snapshot_fn,
                    void *userdata, struct metadata_gc_stats *stats, struct error **err);
