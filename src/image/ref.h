/* Image references, parsed and normalised the way docker/distribution's reference package (as vendored by
 * containerd 1.6 in reference/docker) does it:
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] component ( "/" component )*
 *   domain     := domain-component ( "." domain-component )* [ ":" port ]
 *   component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"* ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     := algorithm ":" hex   (validated like go-digest: sha256 needs 64 lowercase hex)
 *
 * Normalisation (ParseDockerRef): `busybox` -> `docker.io/library/busybox:latest`, `foo/bar` ->
 * `docker.io/foo/bar:latest`, `index.docker.io` -> `docker.io`; a reference with both a tag and a digest
 * keeps only the digest. The first path element is a domain only if it contains '.' or ':' or is
 * "localhost".
 *
 * Errors are -EINVAL with docker's texts (`invalid reference format`, `repository name must be lowercase`,
 * `repository name must not be more than 255 characters`, ...). error_set_literal is used so no class
 * suffix is appended. Pure functions: any thread. Never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define IMAGE_REF_NAME_MAX 255   /* NameTotalLengthMax */
#define IMAGE_REF_INPUT_MAX 1024 /* longer input cannot be a valid reference: refused before parsing */
#define IMAGE_REF_DEFAULT_DOMAIN "docker.io"
#define IMAGE_REF_DEFAULT_TAG "latest"

struct image_ref {
        char *domain; /* may be NULL for an unnormalised reference without a domain */
        char *path;   /* "library/busybox" */
        char *tag;    /* NULL if none */
        char *digest; /* NULL if none; "sha256:<hex>" */
};

void image_ref_clear(struct image_ref *r);
static inline void image_ref_clearp(struct image_ref *r)
{
        image_ref_clear(r);
}

/* docker reference.Parse: no normalisation (the domain is split off only when the first element looks
 * like a host). *ret is filled (new strings) only on success. */
int image_ref_parse(const char *s, struct image_ref *ret, struct error **err);

/* docker reference.ParseNormalizedNamed: adds docker.io and library/, refuses uppercase in the remote name
 * and 64-hex identifiers; no default tag. */
int image_ref_parse_normalized_named(const char *s, struct image_ref *ret, struct error **err);

/* containerd reference/docker.ParseDockerRef: ParseNormalizedNamed, then a tagged+digested reference keeps
 * only its digest, and a name-only reference gets ":latest". This is what pulls use. */
int image_ref_parse_docker(const char *s, struct image_ref *ret, struct error **err);

/* "domain/path" (or "path" without a domain), new string. */
char *image_ref_name(const struct image_ref *r);
/* "domain/path[:tag][@digest]", new string. */
char *image_ref_string(const struct image_ref *r);
/* docker's FamiliarString: docker.io and library/ removed, new string. */
char *image_ref_familiar_string(const struct image_ref *r);

/* Matchers for single grammar elements (exposed for the registry client and tests). */
bool image_ref_tag_valid(const char *s);
bool image_ref_domain_valid(const char *s, size_t n);
/* go-digest digest.Parse + Validate: -EINVAL with go-digest's texts (`invalid checksum digest format`,
 * `unsupported digest algorithm`, `invalid checksum digest length`). */
int image_ref_digest_validate(const char *s, struct error **err);
