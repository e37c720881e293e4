/* gRPC wire helpers: framing (also split at every chunk boundary), grpc-message percent-encoding and
 * grpc-timeout parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/grpc/grpc-internal.h"
#include "util/alloc.h"

/* google.protobuf.Empty-like and a message with one bytes field, built by hand so the test does not
 * depend on generated code: field 1 (bytes). */
static const ProtobufCFieldDescriptor blob_fields[] = {
    {"data", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_BYTES, 0, sizeof(ProtobufCMessage), NULL, NULL, 0, 0, NULL,
     NULL},
};
static const unsigned blob_field_indices[] = {0};
static const ProtobufCIntRange blob_ranges[] = {{1, 0}, {0, 1}};
struct blob {
        ProtobufCMessage base;
        ProtobufCBinaryData data;
};
static void blob_init(struct blob *b);
static const ProtobufCMessageDescriptor blob_desc = {PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                                     "test.Blob",
                                                     "Blob",
                                                     "Blob",
                                                     "test",
                                                     sizeof(struct blob),
                                                     1,
                                                     blob_fields,
                                                     blob_field_indices,
                                                     1,
                                                     blob_ranges,
                                                     (ProtobufCMessageInit)blob_init,
                                                     NULL,
                                                     NULL,
                                                     NULL};
static void blob_init(struct blob *b)
{
        *b = (struct blob){.base = PROTOBUF_C_MESSAGE_INIT(&blob_desc)};
}

static void test_frame_encode_layout(void **state)
{
        (void)state;
        struct grpc_buf b = {0};
        struct blob m;
        blob_init(&m);
        m.data.data = (uint8_t *)"hello";
        m.data.len = 5;
        size_t n = grpc_frame_append(&b, &m.base);
        /* 0x0a 0x05 "hello" = 7 bytes of protobuf behind a 5-byte prefix. */
        assert_int_equal(n, 12);
        assert_int_equal(grpc_buf_pending(&b), 12);
        static const uint8_t want[] = {0, 0, 0, 0, 7, 0x0a, 5, 'h', 'e', 'l', 'l', 'o'};
        assert_memory_equal(b.data + b.off, want, sizeof(want));

        /* An empty message is still a 5-byte prefix (PROTOCOLS.md 4.2). */
        struct blob e;
        blob_init(&e);
        assert_int_equal(grpc_frame_append(&b, &e.base), 5);
        static const uint8_t zero[5] = {0};
        assert_memory_equal(b.data + b.off + 12, zero, 5);
        grpc_buf_done(&b);
}

/* Encodes several messages, then feeds the byte stream cut into pieces of every size from 1 to the whole
 * length, checking each message comes out whole, in order, exactly once. */
static void test_frame_decode_any_split(void **state)
{
        (void)state;
        struct grpc_buf enc = {0};
        const size_t sizes[] = {0, 1, 300, 70000, 3};
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                struct blob m;
                blob_init(&m);
                uint8_t *d = xmalloc(sizes[i] + 1);
                for (size_t k = 0; k < sizes[i]; k++)
                        d[k] = (uint8_t)(k * 7 + i);
                m.data.data = d;
                m.data.len = sizes[i];
                grpc_frame_append(&enc, &m.base);
                free(d);
        }
        size_t total = grpc_buf_pending(&enc);
        const size_t chunks[] = {1, 2, 3, 4, 5, 6, 7, 13, 4096, 16384, 65535, total};
        for (size_t ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++) {
                struct grpc_buf in = {0};
                size_t got = 0;
                for (size_t off = 0; off < total; off += chunks[ci]) {
                        size_t n = total - off < chunks[ci] ? total - off : chunks[ci];
                        grpc_buf_append(&in, enc.data + enc.off + off, n);
                        for (;;) {
                                const uint8_t *p;
                                size_t len;
                                int r = grpc_frame_next(&in, 1 << 20, &p, &len);
                                assert_true(r >= 0);
                                if (r == 0)
                                        break;
                                assert_true(got < 5);
                                struct blob *m = (struct blob *)protobuf_c_message_unpack(&blob_desc, NULL, len, p);
                                assert_non_null(m);
                                assert_int_equal(m->data.len, sizes[got]);
                                for (size_t k = 0; k < sizes[got]; k++)
                                        assert_int_equal(m->data.data[k], (uint8_t)(k * 7 + got));
                                protobuf_c_message_free_unpacked(&m->base, NULL);
                                grpc_buf_consume(&in, GRPC_PREFIX_LEN + len);
                                got++;
                        }
                }
                assert_int_equal(got, 5);
                assert_int_equal(grpc_buf_pending(&in), 0);
                grpc_buf_done(&in);
        }
        grpc_buf_done(&enc);
}

static void test_frame_decode_limits_and_flags(void **state)
{
        (void)state;
        struct grpc_buf b = {0};
        const uint8_t *p;
        size_t len = 0;

        /* The size check happens on the prefix alone, before any body byte is buffered. */
        static const uint8_t big[] = {0, 0x01, 0x00, 0x00, 0x01}; /* 16 MiB + 1 */
        grpc_buf_append(&b, big, 5);
        assert_int_equal(grpc_frame_next(&b, 16u << 20, &p, &len), -EMSGSIZE);
        assert_int_equal(len, (16u << 20) + 1);
        grpc_buf_done(&b);

        static const uint8_t exact[] = {0, 0, 0, 0, 3, 1, 2};
        grpc_buf_append(&b, exact, sizeof(exact));
        assert_int_equal(grpc_frame_next(&b, 3, &p, &len), 0); /* needs one more byte */
        grpc_buf_append(&b, "\x03", 1);
        assert_int_equal(grpc_frame_next(&b, 3, &p, &len), 1);
        assert_int_equal(len, 3);
        grpc_buf_done(&b);

        static const uint8_t compressed[] = {1, 0, 0, 0, 0};
        grpc_buf_append(&b, compressed, 5);
        assert_int_equal(grpc_frame_next(&b, 100, &p, &len), -EPROTO);
        grpc_buf_done(&b);

        static const uint8_t badflag[] = {7, 0, 0, 0, 0};
        grpc_buf_append(&b, badflag, 5);
        assert_int_equal(grpc_frame_next(&b, 100, &p, &len), -EBADMSG);
        grpc_buf_done(&b);

        grpc_buf_append(&b, "\0\0\0", 3);
        assert_int_equal(grpc_frame_next(&b, 100, &p, &len), 0);
        grpc_buf_done(&b);
}

static void test_percent_encoding(void **state)
{
        (void)state;
        char *s = grpc_percent_encode("100% done");
        assert_string_equal(s, "100%25 done");
        char *d = grpc_percent_decode(s);
        assert_string_equal(d, "100% done");
        free(s);
        free(d);

        s = grpc_percent_encode("image \"x\": not found\n\t\xc3\xa9~");
        assert_string_equal(s, "image \"x\": not found%0A%09%C3%A9~");
        d = grpc_percent_decode(s);
        assert_string_equal(d, "image \"x\": not found\n\t\xc3\xa9~");
        free(s);
        free(d);

        s = grpc_percent_encode("");
        assert_string_equal(s, "");
        free(s);

        /* Malformed escapes are kept as they are, like grpc-go. */
        d = grpc_percent_decode("50%zz %4 %");
        assert_string_equal(d, "50%zz %4 %");
        free(d);
        d = grpc_percent_decode("%2f%2F");
        assert_string_equal(d, "//");
        free(d);
}

static void test_timeout_parse_units(void **state)
{
        (void)state;
        uint64_t ms = 0;
        assert_int_equal(grpc_timeout_parse("2H", &ms), 0);
        assert_int_equal(ms, 2 * 3600 * 1000);
        assert_int_equal(grpc_timeout_parse("3M", &ms), 0);
        assert_int_equal(ms, 180000);
        assert_int_equal(grpc_timeout_parse("10S", &ms), 0);
        assert_int_equal(ms, 10000);
        assert_int_equal(grpc_timeout_parse("250m", &ms), 0);
        assert_int_equal(ms, 250);
        assert_int_equal(grpc_timeout_parse("2999708u", &ms), 0); /* grpc-go's usual form */
        assert_int_equal(ms, 3000);
        assert_int_equal(grpc_timeout_parse("1n", &ms), 0);
        assert_int_equal(ms, 1); /* rounded up, never 0 for a positive timeout */
        assert_int_equal(grpc_timeout_parse("0m", &ms), 0);
        assert_int_equal(ms, 0);
        assert_int_equal(grpc_timeout_parse("99999999H", &ms), 0);
        assert_int_equal(ms, 99999999ull * 3600000ull);

        assert_int_equal(grpc_timeout_parse("123456789m", &ms), -EINVAL); /* more than 8 digits */
        assert_int_equal(grpc_timeout_parse("m", &ms), -EINVAL);
        assert_int_equal(grpc_timeout_parse("", &ms), -EINVAL);
        assert_int_equal(grpc_timeout_parse(NULL, &ms), -EINVAL);
        assert_int_equal(grpc_timeout_parse("10s", &ms), -EINVAL);
        assert_int_equal(grpc_timeout_parse("1 S", &ms), -EINVAL);
        assert_int_equal(grpc_timeout_parse("-1S", &ms), -EINVAL);
}

static void test_timeout_format_roundtrip(void **state)
{
        (void)state;
        const uint64_t v[] = {1, 999, 99999999, 100000000, 5000000000ull, 99999999ull * 3600000ull};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                char buf[32];
                uint64_t ms;
                grpc_timeout_format(v[i], buf, sizeof(buf));
                assert_true(strlen(buf) <= 9);
                assert_int_equal(grpc_timeout_parse(buf, &ms), 0);
                assert_true(ms >= v[i]); /* never shorter than asked */
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_frame_encode_layout),           cmocka_unit_test(test_frame_decode_any_split),
            cmocka_unit_test(test_frame_decode_limits_and_flags), cmocka_unit_test(test_percent_encoding),
            cmocka_unit_test(test_timeout_parse_units),           cmocka_unit_test(test_timeout_format_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
