/* status.c: errno <-> gRPC code in both directions and the client-side message rebasing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/status.h"
#include "util/alloc.h"

static void test_status_from_errno_containerd_classes(void **state)
{
        (void)state;
        assert_int_equal(status_from_errno(0), GRPC_OK);
        assert_int_equal(status_from_errno(ENOENT), GRPC_NOT_FOUND);
        assert_int_equal(status_from_errno(-ENOENT), GRPC_NOT_FOUND); /* sign does not matter */
        assert_int_equal(status_from_errno(EEXIST), GRPC_ALREADY_EXISTS);
        assert_int_equal(status_from_errno(EINVAL), GRPC_INVALID_ARGUMENT);
        assert_int_equal(status_from_errno(EBUSY), GRPC_FAILED_PRECONDITION);
        assert_int_equal(status_from_errno(ENOTEMPTY), GRPC_FAILED_PRECONDITION);
        assert_int_equal(status_from_errno(EAGAIN), GRPC_UNAVAILABLE);
        assert_int_equal(status_from_errno(ECONNREFUSED), GRPC_UNAVAILABLE);
        assert_int_equal(status_from_errno(ENOSYS), GRPC_UNIMPLEMENTED);
        assert_int_equal(status_from_errno(EOPNOTSUPP), GRPC_UNIMPLEMENTED);
        assert_int_equal(status_from_errno(ECANCELED), GRPC_CANCELLED);
        assert_int_equal(status_from_errno(ETIMEDOUT), GRPC_DEADLINE_EXCEEDED);
        assert_int_equal(status_from_errno(EPERM), GRPC_PERMISSION_DENIED);
        assert_int_equal(status_from_errno(EACCES), GRPC_PERMISSION_DENIED);
        assert_int_equal(status_from_errno(ENOSPC), GRPC_RESOURCE_EXHAUSTED);
        assert_int_equal(status_from_errno(EDQUOT), GRPC_RESOURCE_EXHAUSTED);
        assert_int_equal(status_from_errno(EIO), GRPC_UNKNOWN);
        assert_int_equal(status_from_errno(EXDEV), GRPC_UNKNOWN);
}

static void test_status_to_errno_roundtrip(void **state)
{
        (void)state;
        /* Every errno containerd distinguishes survives errno -> code -> errno. */
        static const int classes[] = {ENOENT,    EEXIST,    EINVAL, EBUSY,  EAGAIN, ENOSYS,
                                      ECANCELED, ETIMEDOUT, EACCES, ENOSPC, ERANGE};
        for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
                assert_int_equal(status_to_errno(status_from_errno(classes[i])), classes[i]);
        assert_int_equal(status_to_errno(GRPC_OK), 0);
        assert_int_equal(status_to_errno(GRPC_UNKNOWN), EIO);
        assert_int_equal(status_to_errno(GRPC_INTERNAL), EIO);
        assert_int_equal(status_to_errno(GRPC_DATA_LOSS), EIO);
        assert_int_equal(status_to_errno(GRPC_UNAUTHENTICATED), EACCES);
        assert_int_equal(status_to_errno((enum grpc_code)99), EIO);
}

static void test_status_code_names_match_grpc_go(void **state)
{
        (void)state;
        assert_string_equal(status_code_name(GRPC_NOT_FOUND), "NotFound");
        assert_string_equal(status_code_name(GRPC_CANCELLED), "Canceled");
        assert_string_equal(status_code_name(GRPC_UNIMPLEMENTED), "Unimplemented");
        assert_string_equal(status_code_name(GRPC_UNAUTHENTICATED), "Unauthenticated");
        assert_string_equal(status_code_name((enum grpc_code)42), "Unknown");
}

static void test_status_to_error_strips_class_suffix(void **state)
{
        (void)state;
        struct error *e = NULL;
        assert_int_equal(status_to_error(GRPC_NOT_FOUND, "image \"docker.io/library/busybox:x\": not found", &e),
                         -ENOENT);
        assert_non_null(e);
        assert_int_equal(e->code, ENOENT);
        assert_string_equal(e->msg, "image \"docker.io/library/busybox:x\"");
        char *m = error_message(e);
        /* Rendering adds the class text back exactly once. */
        assert_string_equal(m, "image \"docker.io/library/busybox:x\": not found");
        free(m);
        error_free(&e);

        assert_int_equal(status_to_error(GRPC_ALREADY_EXISTS, "already exists", &e), -EEXIST);
        m = error_message(e);
        assert_string_equal(m, "already exists");
        free(m);
        error_free(&e);
}

static void test_status_to_error_codes_for_other_messages(void **state)
{
        (void)state;
        struct error *e = NULL;
        /* Only the codes are asserted here: how a message without the class suffix is rendered is an open
         * question (Go's errdefs.FromGRPC always appends the class text, "x: not implemented"). */
        assert_int_equal(status_to_error(GRPC_NOT_FOUND, "missing thing", &e), -ENOENT);
        assert_int_equal(e->code, ENOENT);
        char *m = error_message(e);
        assert_non_null(strstr(m, "missing thing"));
        free(m);
        error_free(&e);

        /* Unknown/Internal are not containerd classes: the suffix is never stripped. */
        assert_int_equal(status_to_error(GRPC_UNKNOWN, "x: not found", &e), -EIO);
        m = error_message(e);
        assert_non_null(strstr(m, "x: not found"));
        free(m);
        error_free(&e);

        assert_int_equal(status_to_error(GRPC_UNIMPLEMENTED, "unknown service foo.Bar", &e), -ENOSYS);
        m = error_message(e);
        assert_non_null(strstr(m, "unknown service foo.Bar"));
        free(m);
        error_free(&e);

        /* NULL message and NULL err are accepted. */
        assert_int_equal(status_to_error(GRPC_DEADLINE_EXCEEDED, NULL, NULL), -ETIMEDOUT);
        assert_int_equal(status_to_error(GRPC_OK, "odd", &e), -EIO); /* OK is not an error: still fails */
        error_free(&e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_status_from_errno_containerd_classes),
            cmocka_unit_test(test_status_to_errno_roundtrip),
            cmocka_unit_test(test_status_code_names_match_grpc_go),
            cmocka_unit_test(test_status_to_error_strips_class_suffix),
            cmocka_unit_test(test_status_to_error_codes_for_other_messages),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
