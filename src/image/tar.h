/* A streaming tar reader for image layers: POSIX ustar, pax extended headers (path, linkpath, size, uid, gid, mtime,
 * atime, SCHILY.xattr.*) and GNU long names and links, as Go's archive/tar writes them for docker, buildkit and
 * containerd. Data is handed out zero-copy from the producer's buffers. Every size in a header is bounded before it
 * is trusted. Why not libarchive: it drags libxml2, ICU and libstdc++ (about 2.5 MB of RSS) into krilld for the one
 * format layers use, and it accepts formats (cpio, zip, ...) a layer must not be. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

/* Hands out the next piece of the (uncompressed) tar stream in *buf (borrowed until the next call): > 0 bytes,
 * 0 at the end, or -errno (the reader passes it on; the producer keeps its own error text). */
typedef ssize_t (*tar_source_fn)(void *userdata, const void **buf);

enum tar_type {
        TAR_REG,
        TAR_HARDLINK, /* linkname: the earlier entry's path */
        TAR_SYMLINK,  /* linkname: the target */
        TAR_CHR,
        TAR_BLK,
        TAR_DIR,
        TAR_FIFO,
};

struct tar_xattr {
        char *name;
        uint8_t *value;
        size_t len;
};

struct tar_entry {
        enum tar_type type;
        char *path;     /* as stored (not cleaned) */
        char *linkname; /* hard link and symlink targets, else NULL */
        uint32_t mode;  /* permission bits including setuid/setgid/sticky (07777) */
        int64_t uid, gid;
        int64_t size; /* data bytes (regular files; 0 otherwise) */
        int64_t mtime_sec;
        long mtime_nsec;
        bool atime_set;
        int64_t atime_sec;
        long atime_nsec;
        uint32_t devmajor, devminor;
        struct tar_xattr *xattrs;
        size_t nxattrs;
};

#define TAR_MAX_PAX_SIZE (1u << 20)      /* a pax header's records, like Go's maxSpecialFileSize */
#define TAR_MAX_LONGNAME (64u << 10)     /* a GNU long name or link */
#define TAR_MAX_XATTRS 1024u             /* per entry */

struct tar_reader;

struct tar_reader *tar_reader_new(tar_source_fn source, void *userdata);
void tar_reader_free(struct tar_reader *r);
/* The next entry (valid until the next call), 0 with *ret NULL at the end of the archive, or -errno: -EINVAL with
 * err set for a malformed or unsupported header, or the source's error (err not set). Unread data of the previous
 * entry is skipped. */
int tar_reader_next(struct tar_reader *r, const struct tar_entry **ret, struct error **err);
/* The next piece of the current entry's data: > 0 bytes in *buf (borrowed until the next call), 0 when the entry's
 * data is done, or -errno (-EINVAL with err set for a stream that ends inside the data). */
ssize_t tar_reader_data(struct tar_reader *r, const void **buf, struct error **err);

/* --- writing (pax where ustar cannot hold a field, as Go's archive/tar does) --- */

/* Receives the archive's bytes: 0, or -errno (passed on; the sink keeps its own error text). */
typedef int (*tar_sink_fn)(void *userdata, const void *buf, size_t len);

struct tar_writer;

struct tar_writer *tar_writer_new(tar_sink_fn sink, void *userdata);
void tar_writer_free(struct tar_writer *w);
/* Writes an entry's header (a pax header first when a path, link target, id, size or time does not fit ustar, or
 * xattrs are given). Regular files must then get exactly e->size bytes through tar_writer_data. -EINVAL with err set
 * for an entry that cannot be written, -EBUSY when the previous entry's data is incomplete. */
int tar_writer_header(struct tar_writer *w, const struct tar_entry *e, struct error **err);
int tar_writer_data(struct tar_writer *w, const void *buf, size_t len, struct error **err);
/* Pads the last entry, writes the end-of-archive blocks and flushes. */
int tar_writer_close(struct tar_writer *w, struct error **err);
