/* Shim socket address hashing and grouping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shim/shim.h"

static void test_sha256_vectors(void **state)
{
        char hex[65];
        (void)state;
        shim_sha256_hex("", 0, hex);
        assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        shim_sha256_hex("abc", 3, hex);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        /* 56 bytes: padding spills into a second block */
        shim_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
        assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        /* FIPS 180-2 appendix B.3: one million 'a' */
        {
                char *m = malloc(1000000);
                assert_non_null(m);
                memset(m, 'a', 1000000);
                shim_sha256_hex(m, 1000000, hex);
                free(m);
                assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        }
        /* block edges: 55 bytes fit one padded block, 64 need a second one */
        shim_sha256_hex("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 55, hex);
        assert_string_equal(hex, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
        shim_sha256_hex("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 64, hex);
        assert_string_equal(hex, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
}

static void test_socket_path_matches_containerd(void **state)
{
        char *p;
        (void)state;
        /* PROTOCOLS.md 3.2: printf %s /run/proto-ctd/containerd.sock/protons/t3 | sha256sum */
        p = shim_socket_path("/run/proto-ctd/containerd.sock", "protons", "t3");
        assert_non_null(p);
        char hex[65];
        const char *key = "/run/proto-ctd/containerd.sock/protons/t3";
        shim_sha256_hex(key, strlen(key), hex);
        char *want = NULL;
        assert_true(asprintf(&want, "/run/proto-ctd/s/%s", hex) > 0);
        assert_string_equal(p, want);
        free(want);
        free(p);
        /* a unix:// scheme is hashed as given but the directory drops it */
        p = shim_socket_path("unix:///run/k/krill.sock", "default", "x");
        assert_non_null(p);
        assert_memory_equal(p, "/run/k/s/", 9);
        assert_int_equal(strlen(p), 9 + 64);
        free(p);
}

static void test_socket_path_too_long(void **state)
{
        char addr[200];
        (void)state;
        memset(addr, 'a', sizeof(addr) - 1);
        addr[0] = '/';
        addr[sizeof(addr) - 1] = '\0';
        addr[100] = '/';
        assert_null(shim_socket_path(addr, "ns", "id"));
}

static void test_group_id(void **state)
{
        const char *cri = "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"sb1\","
                          "\"io.containerd.runc.v2.group\":\"g\"}}";
        const char *grp = "{\"annotations\":{\"io.containerd.runc.v2.group\":\"g1\"}}";
        const char *none = "{\"annotations\":{\"other\":\"x\"}}";
        char *g;
        (void)state;
        g = shim_group_id(cri, strlen(cri), "c1");
        assert_string_equal(g, "sb1");
        free(g);
        g = shim_group_id(grp, strlen(grp), "c1");
        assert_string_equal(g, "g1");
        free(g);
        g = shim_group_id(none, strlen(none), "c1");
        assert_string_equal(g, "c1");
        free(g);
        g = shim_group_id("not json", 8, "c2");
        assert_string_equal(g, "c2");
        free(g);
        g = shim_group_id(NULL, 0, "c3");
        assert_string_equal(g, "c3");
        free(g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sha256_vectors),
            cmocka_unit_test(test_socket_path_matches_containerd),
            cmocka_unit_test(test_socket_path_too_long),
            cmocka_unit_test(test_group_id),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
