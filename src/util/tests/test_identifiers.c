#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/identifiers.h"

static void test_identifier_valid(void **state)
{
        (void)state;
        /* From containerd identifiers/validate_test.go. */
        const char *ok[] = {"default", "Default", "k8s.io", "containerd.io", "foo.boo", "swarmkit.docker.io",
                            "0912341234", "task.0.0123456789", "container.system-75-f19a.00",
                            "underscores_are_allowed",
                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                assert_int_equal(identifier_validate(ok[i], NULL), 0);
                assert_true(identifier_is_valid(ok[i]));
        }
        const char *bad[] = {".foo..foo", "foo/foo", "foo/..", "foo..foo", "foo.-boo", "-foo.boo", "foo.boo-",
                             "but__only_tasteful_underscores", "zn--e9.org", "default--default", "a ",
                             ".", "a.", ""};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(identifier_validate(bad[i], NULL), -EINVAL);
                assert_false(identifier_is_valid(bad[i]));
        }
}

static void test_identifier_messages(void **state)
{
        (void)state;
        _cleanup_error_ struct error *e = NULL;
        assert_int_equal(identifier_validate("", &e), -EINVAL);
        assert_string_equal(error_str(e), "identifier must not be empty: invalid argument");
        error_free(&e);
        assert_int_equal(identifier_validate("a/b", &e), -EINVAL);
        assert_string_equal(error_str(e),
                            "identifier \"a/b\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$: invalid argument");
        error_free(&e);
        char longid[78];
        memset(longid, 'a', 77);
        longid[77] = '\0';
        assert_int_equal(identifier_validate(longid, &e), -EINVAL);
        char *want = NULL;
        assert_true(asprintf(&want, "identifier \"%s\" greater than maximum length (76 characters): invalid argument",
                             longid) > 0);
        assert_string_equal(error_str(e), want);
        free(want);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identifier_valid),
                cmocka_unit_test(test_identifier_messages),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
