#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "util/cleanup.h"
#include "util/digest.h"
#include "util/sha256.h"

#define EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_digest_known_vectors(void **state)
{
        (void)state;
        _cleanup_free_ char *e = digest_from_buf("", 0);
        _cleanup_free_ char *a = digest_from_buf("abc", 3);
        assert_string_equal(e, EMPTY);
        assert_string_equal(a, ABC);
        assert_int_equal(strlen(a), DIGEST_SHA256_STRING_LEN);
}

static void test_digest_streaming_matches_oneshot(void **state)
{
        (void)state;
        _cleanup_digester_ struct digester *d = digester_new();
        digester_update(d, "a", 1);
        _cleanup_free_ char *partial = digester_digest(d);
        assert_string_equal(partial, "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
        digester_update(d, "bc", 2);
        digester_update(d, NULL, 0);
        _cleanup_free_ char *full = digester_digest(d);
        assert_string_equal(full, ABC);
        assert_int_equal(digester_size(d), 3);
        assert_null(digester_free(NULL));
}

static void test_sha256_fips_vectors(void **state)
{
        (void)state;
        /* FIPS 180-2 appendix B.2 and B.3 */
        const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        _cleanup_free_ char *d2 = digest_from_buf(two, strlen(two));
        assert_string_equal(d2, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        _cleanup_digester_ struct digester *d = digester_new();
        char a[1000];
        memset(a, 'a', sizeof(a));
        for (int i = 0; i < 1000; i++)
                digester_update(d, a, sizeof(a));
        _cleanup_free_ char *m = digester_digest(d);
        assert_string_equal(m, "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        assert_int_equal(digester_size(d), 1000000);
}

/* Every length around the block and padding boundaries, fed in uneven pieces, through the CPU's SHA instructions
 * (where present), the portable rounds and OpenSSL: all three must agree. */
static void test_sha256_matches_openssl(void **state)
{
        (void)state;
        static uint8_t buf[4096 + 64];
        uint32_t x = 12345;
        for (size_t i = 0; i < sizeof(buf); i++) {
                x = x * 1103515245 + 12345;
                buf[i] = (uint8_t)(x >> 16);
        }
        for (size_t len = 0; len <= sizeof(buf); len += len < 300 ? 1 : 61) {
                uint8_t want[32], got[32], port[32];
                unsigned int n = 0;
                assert_int_equal(EVP_Digest(buf, len, want, &n, EVP_sha256(), NULL), 1);
                struct sha256 s, p;
                sha256_init(&s);
                sha256_init(&p);
                for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 % 97 + 1) {
                        size_t k = step < len - off ? step : len - off;
                        sha256_update(&s, buf + off, k);
                        sha256_portable_only(&p, buf + off, k);
                }
                sha256_final(&s, got);
                sha256_final(&p, port);
                assert_memory_equal(got, want, 32);
                assert_memory_equal(port, want, 32);
                assert_int_equal(s.bytes, len);
        }
}

static void test_base64(void **state)
{
        (void)state;
        /* RFC 4648 section 10 */
        const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
        const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        for (size_t i = 0; i < 7; i++) {
                _cleanup_free_ char *b = base64_encode_new(in[i], strlen(in[i]));
                assert_string_equal(b, out[i]);
        }
        const uint8_t bin[] = {0xfb, 0xff, 0x00};
        _cleanup_free_ char *b = base64_encode_new(bin, 3);
        assert_string_equal(b, "+/8A");
        for (size_t i = 0; i < 7; i++) {
                char *d = NULL;
                size_t n = 99;
                assert_int_equal(base64_decode_new(out[i], &d, &n), 0);
                assert_int_equal(n, strlen(in[i]));
                assert_memory_equal(d, in[i], n);
                free(d);
        }
        char *d = NULL;
        size_t n;
        assert_int_equal(base64_decode_new("Zm9vYg", &d, &n), 0); /* padding optional */
        assert_string_equal(d, "foob");
        free(d);
        assert_int_equal(base64_decode_new("Zm9v!", &d, &n), -EINVAL);
        assert_int_equal(base64_decode_new("Zm9vY", &d, &n), -EINVAL);
}

static void test_digest_from_fd(void **state)
{
        (void)state;
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "abc", 3), 3);
        close(p[1]);
        char *d = NULL;
        uint64_t size = 0;
        assert_int_equal(digest_from_fd(p[0], &d, &size, NULL), 0);
        close(p[0]);
        assert_string_equal(d, ABC);
        assert_int_equal(size, 3);
        free(d);
}

static void test_digest_validate_ok(void **state)
{
        (void)state;
        const char *alg = NULL, *hex = NULL;
        size_t alen = 0;
        assert_int_equal(digest_parse(ABC, &alg, &alen, &hex, NULL), 0);
        assert_int_equal(alen, 6);
        assert_memory_equal(alg, "sha256", 6);
        assert_string_equal(hex, ABC + 7);
        assert_string_equal(digest_hex(ABC), ABC + 7);
        assert_true(digest_equal(ABC, ABC));
        assert_false(digest_equal(ABC, EMPTY));
}

static void expect_invalid(const char *s, const char *msg)
{
        _cleanup_error_ struct error *e = NULL;
        assert_int_equal(digest_validate(s, &e), -EINVAL);
        assert_non_null(e);
        assert_int_equal(e->code, EINVAL);
        assert_string_equal(error_str(e), msg);
        assert_null(digest_hex(s));
}

static void test_digest_validate_errors(void **state)
{
        (void)state;
        expect_invalid("x", "invalid digest \"x\": invalid checksum digest format: invalid argument");
        expect_invalid("sha256:", "invalid digest \"sha256:\": invalid checksum digest format: invalid argument");
        expect_invalid(":abc", "invalid digest \":abc\": invalid checksum digest format: invalid argument");
        expect_invalid("sha512:abc", "invalid digest \"sha512:abc\": unsupported digest algorithm: invalid argument");
        expect_invalid("sha256:abc", "invalid digest \"sha256:abc\": invalid checksum digest length: invalid argument");
        expect_invalid("SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                       "invalid digest \"SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\": "
                       "invalid checksum digest format: invalid argument");
        /* Upper-case hex is rejected, as go-digest's [a-f0-9] does. */
        expect_invalid("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                       "invalid digest \"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\": "
                       "invalid checksum digest format: invalid argument");
        assert_int_equal(digest_validate(NULL, NULL), -EINVAL);
}

static void test_hex_roundtrip(void **state)
{
        (void)state;
        const uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
        char out[9];
        uint8_t back[4];
        hex_encode(in, sizeof(in), out);
        assert_string_equal(out, "0001abff");
        assert_int_equal(hex_decode("0001ABff", 8, back, 4), 0);
        assert_memory_equal(back, in, 4);
        assert_int_equal(hex_decode("0g", 2, back, 1), -EINVAL);
        assert_int_equal(hex_decode("000", 3, back, 1), -EINVAL);
        _cleanup_free_ char *n = hex_encode_new(in, 2);
        assert_string_equal(n, "0001");
        assert_true(hex_is_lower("09af", 4));
        assert_false(hex_is_lower("09aF", 4));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_digest_known_vectors),   cmocka_unit_test(test_sha256_fips_vectors),
                cmocka_unit_test(test_sha256_matches_openssl), cmocka_unit_test(test_base64),   cmocka_unit_test(test_digest_streaming_matches_oneshot),
                cmocka_unit_test(test_digest_from_fd),         cmocka_unit_test(test_digest_validate_ok),
                cmocka_unit_test(test_digest_validate_errors), cmocka_unit_test(test_hex_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
