/* TOML parser tests. Most documents are the examples of the TOML 1.0.0 specification
 * (https://toml.io/en/v1.0.0), valid ones checked value by value, invalid ones required to fail. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/cleanup.h"
#include "util/strv.h"
#include "util/toml.h"

static struct toml_value *parse_ok(const char *doc)
{
        struct toml_value *root = NULL;
        _cleanup_error_ struct error *e = NULL;
        int r = toml_parse(doc, strlen(doc), &root, &e);
        if (r < 0)
                fail_msg("parse failed: %s\n--- document:\n%s", error_str(e), doc);
        assert_non_null(root);
        return root;
}

static void parse_bad(const char *doc)
{
        struct toml_value *root = NULL;
        _cleanup_error_ struct error *e = NULL;
        int r = toml_parse(doc, strlen(doc), &root, &e);
        if (r != -EINVAL)
                fail_msg("expected failure for:\n%s", doc);
        assert_null(root);
        assert_non_null(e);
        assert_int_equal(e->code, EINVAL);
        assert_non_null(strstr(e->msg, "toml: "));
}

static const char *str_at(struct toml_value *root, const char *path)
{
        struct toml_value *v = toml_get_path(root, path);
        if (!v || toml_type(v) != TOML_STRING)
                fail_msg("%s: not a string", path);
        return toml_string(v);
}

static int64_t int_at(struct toml_value *root, const char *path)
{
        struct toml_value *v = toml_get_path(root, path);
        if (!v || toml_type(v) != TOML_INTEGER)
                fail_msg("%s: not an integer", path);
        return toml_integer(v);
}

static double float_at(struct toml_value *root, const char *path)
{
        struct toml_value *v = toml_get_path(root, path);
        if (!v || toml_type(v) != TOML_FLOAT)
                fail_msg("%s: not a float", path);
        return toml_float(v);
}

static void test_toml_spec_comments_and_keys(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r1 = parse_ok(
                "# This is a full-line comment\n"
                "key = \"value\"  # This is a comment at the end of a line\n"
                "another = \"# This is not a comment\"\n");
        assert_string_equal(str_at(r1, "key"), "value");
        assert_string_equal(str_at(r1, "another"), "# This is not a comment");

        _cleanup_toml_ struct toml_value *r2 = parse_ok("key = \"value\"\nbare_key = \"value\"\nbare-key = \"value\"\n"
                                                        "1234 = \"value\"\n");
        assert_string_equal(str_at(r2, "1234"), "value");
        assert_string_equal(str_at(r2, "bare-key"), "value");

        _cleanup_toml_ struct toml_value *r3 = parse_ok(
                "\"127.0.0.1\" = \"value\"\n\"character encoding\" = \"value\"\n\"\xca\x8e\xc7\x9d\xca\x9e\" = \"value\"\n"
                "'key2' = \"value\"\n'quoted \"value\"' = \"value\"\n");
        assert_non_null(toml_table_get(r3, "127.0.0.1"));
        assert_non_null(toml_table_get(r3, "character encoding"));
        assert_non_null(toml_table_get(r3, "\xca\x8e\xc7\x9d\xca\x9e"));
        assert_non_null(toml_table_get(r3, "quoted \"value\""));
        assert_string_equal(str_at(r3, "\"127.0.0.1\""), "value");

        _cleanup_toml_ struct toml_value *r4 = parse_ok("\"\" = \"blank\"\n");
        assert_string_equal(toml_string(toml_table_get(r4, "")), "blank");

        _cleanup_toml_ struct toml_value *r5 = parse_ok(
                "name = \"Orange\"\nphysical.color = \"orange\"\nphysical.shape = \"round\"\nsite.\"google.com\" = true\n"
                "fruit.name = \"banana\"\nfruit. color = \"yellow\"\nfruit . flavor = \"banana\"\n");
        assert_string_equal(str_at(r5, "physical.shape"), "round");
        assert_true(toml_boolean(toml_get_path(r5, "site.\"google.com\"")));
        assert_string_equal(str_at(r5, "fruit.flavor"), "banana");
        /* Document order is kept. */
        assert_string_equal(toml_table_key(r5, 0), "name");
        assert_string_equal(toml_table_key(r5, 1), "physical");
        assert_string_equal(toml_table_key(r5, 2), "site");

        _cleanup_toml_ struct toml_value *r6 = parse_ok("fruit.apple.smooth = true\nfruit.orange = 2\n"
                                                        "apple.type = \"fruit\"\norange.type = \"fruit\"\n"
                                                        "apple.skin = \"thin\"\n3.14159 = \"pi\"\n");
        assert_int_equal(int_at(r6, "fruit.orange"), 2);
        assert_string_equal(str_at(r6, "apple.skin"), "thin");
        assert_string_equal(str_at(r6, "3.14159"), "pi");
        assert_non_null(toml_get_path(r6, "\"3\".\"14159\""));

        parse_bad("key = # INVALID\n");
        parse_bad("first = \"Tom\" last = \"Preston-Werner\" # INVALID\n");
        parse_bad("= \"no key name\"  # INVALID\n");
        parse_bad("name = \"Tom\"\nname = \"Pradyun\"\n");
        parse_bad("spelling = \"favorite\"\n\"spelling\" = \"favourite\"\n");
        parse_bad("fruit.apple = 1\nfruit.apple.smooth = true\n");
        parse_bad("key\n");
        parse_bad("a = 1 # bad \x01 control\n");
        parse_bad("\"a\nb\" = 1\n");
        parse_bad("\"\"\"k\"\"\" = 1\n");
}

static void test_toml_spec_strings(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "str = \"I'm a string. \\\"You can quote me\\\". Name\\tJos\\u00E9\\nLocation\\tSF.\"\n"
                "str1 = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n"
                "s1 = \"The quick brown fox jumps over the lazy dog.\"\n"
                "s2 = \"\"\"\nThe quick brown \\\n\n\n  fox jumps over \\\n    the lazy dog.\"\"\"\n"
                "s3 = \"\"\"\\\n       The quick brown \\\n       fox jumps over \\\n       the lazy dog.\\\n       \"\"\"\n"
                "str4 = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"\n"
                "str5 = \"\"\"Here are three quotation marks: \"\"\\\".\"\"\"\n"
                "str6 = \"\"\"Here are fifteen quotation marks: \"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\".\"\"\"\n"
                "str7 = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"\n"
                "winpath  = 'C:\\Users\\nodejs\\templates'\n"
                "winpath2 = '\\\\ServerX\\admin$\\system32\\'\n"
                "quoted   = 'Tom \"Dubs\" Preston-Werner'\n"
                "regex    = '<\\i\\c*\\s*>'\n"
                "regex2 = '''I [dw]on't need \\d{2} apples'''\n"
                "lines  = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''\n"
                "quot15 = '''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''\n"
                "apos15 = \"Here are fifteen apostrophes: '''''''''''''''\"\n"
                "str8 = ''''That,' she said, 'is still pointless.''''\n"
                "u8 = \"\\U0001F600\\u00e9\"\n"
                "esc = \"\\b\\t\\n\\f\\r\\\"\\\\\"\n"
                "tab = \"a\tb\"\n");
        assert_string_equal(str_at(r, "str"), "I'm a string. \"You can quote me\". Name\tJos\xc3\xa9\nLocation\tSF.");
        assert_string_equal(str_at(r, "str1"), "Roses are red\nViolets are blue");
        assert_string_equal(str_at(r, "s2"), str_at(r, "s1"));
        assert_string_equal(str_at(r, "s3"), str_at(r, "s1"));
        assert_string_equal(str_at(r, "str4"), "Here are two quotation marks: \"\". Simple enough.");
        assert_string_equal(str_at(r, "str5"), "Here are three quotation marks: \"\"\".");
        assert_string_equal(str_at(r, "str6"), "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\".");
        assert_string_equal(str_at(r, "str7"), "\"This,\" she said, \"is just a pointless statement.\"");
        assert_string_equal(str_at(r, "winpath"), "C:\\Users\\nodejs\\templates");
        assert_string_equal(str_at(r, "winpath2"), "\\\\ServerX\\admin$\\system32\\");
        assert_string_equal(str_at(r, "quoted"), "Tom \"Dubs\" Preston-Werner");
        assert_string_equal(str_at(r, "regex"), "<\\i\\c*\\s*>");
        assert_string_equal(str_at(r, "regex2"), "I [dw]on't need \\d{2} apples");
        assert_string_equal(str_at(r, "lines"),
                            "The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n");
        assert_string_equal(str_at(r, "quot15"), "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"");
        assert_string_equal(str_at(r, "apos15"), "Here are fifteen apostrophes: '''''''''''''''");
        assert_string_equal(str_at(r, "str8"), "'That,' she said, 'is still pointless.'");
        assert_string_equal(str_at(r, "u8"), "\xf0\x9f\x98\x80\xc3\xa9");
        assert_string_equal(str_at(r, "esc"), "\b\t\n\f\r\"\\");
        assert_string_equal(str_at(r, "tab"), "a\tb");

        /* \u0000 is kept, with the length. */
        _cleanup_toml_ struct toml_value *z = parse_ok("z = \"a\\u0000b\"\n");
        assert_int_equal(toml_string_len(toml_table_get(z, "z")), 3);
        assert_memory_equal(toml_string(toml_table_get(z, "z")), "a\0b", 3);

        parse_bad("str5 = \"\"\"Here are three quotation marks: \"\"\".\"\"\"  # INVALID\n");
        parse_bad("apos15 = '''Here are fifteen apostrophes: ''''''''''''''''''  # INVALID\n");
        parse_bad("s = \"bad \\x escape\"\n");
        parse_bad("s = \"\\e\"\n");
        parse_bad("s = \"\\uD800\"\n");
        parse_bad("s = \"\\U00110000\"\n");
        parse_bad("s = \"\\u12\"\n");
        parse_bad("s = \"unterminated\n");
        parse_bad("s = 'unterminated\n");
        parse_bad("s = \"\"\"unterminated\n");
        parse_bad("s = \"a\x01\"\n");
        parse_bad("s = \"a\x7f\"\n");
        parse_bad("s = \"bad utf8 \xc3\x28\"\n");
        parse_bad("s = \"\xed\xa0\x80\"\n"); /* an encoded surrogate */
        parse_bad("s = \"\"\"a\rb\"\"\"\n");
        parse_bad("s = \"\"\"a \\ b\"\"\"\n");
}

static void test_toml_spec_numbers(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "int1 = +99\nint2 = 42\nint3 = 0\nint4 = -17\nint5 = 1_000\nint6 = 5_349_221\nint7 = 53_49_221\n"
                "int8 = 1_2_3_4_5\nhex1 = 0xDEADBEEF\nhex2 = 0xdeadbeef\nhex3 = 0xdead_beef\noct1 = 0o01234567\n"
                "oct2 = 0o755\nbin1 = 0b11010110\nmax = 9223372036854775807\nmin = -9223372036854775808\n"
                "zero = -0\npz = +0\n"
                "flt1 = +1.0\nflt2 = 3.1415\nflt3 = -0.01\nflt4 = 5e+22\nflt5 = 1e06\nflt6 = -2E-2\nflt7 = 6.626e-34\n"
                "flt8 = 224_617.445_991_228\nflt9 = -0.0\nflt10 = +0.0\n"
                "sf1 = inf\nsf2 = +inf\nsf3 = -inf\nsf4 = nan\nsf5 = +nan\nsf6 = -nan\n"
                "bool1 = true\nbool2 = false\n");
        assert_int_equal(int_at(r, "int1"), 99);
        assert_int_equal(int_at(r, "int4"), -17);
        assert_int_equal(int_at(r, "int5"), 1000);
        assert_int_equal(int_at(r, "int6"), 5349221);
        assert_int_equal(int_at(r, "int7"), 5349221);
        assert_int_equal(int_at(r, "int8"), 12345);
        assert_int_equal(int_at(r, "hex1"), 0xdeadbeef);
        assert_int_equal(int_at(r, "hex3"), 0xdeadbeef);
        assert_int_equal(int_at(r, "oct1"), 01234567);
        assert_int_equal(int_at(r, "oct2"), 0755);
        assert_int_equal(int_at(r, "bin1"), 214);
        assert_true(int_at(r, "max") == INT64_MAX);
        assert_true(int_at(r, "min") == INT64_MIN);
        assert_int_equal(int_at(r, "zero"), 0);
        assert_true(float_at(r, "flt1") == 1.0);
        assert_true(float_at(r, "flt2") == 3.1415);
        assert_true(float_at(r, "flt3") == -0.01);
        assert_true(float_at(r, "flt4") == 5e22);
        assert_true(float_at(r, "flt5") == 1e6);
        assert_true(float_at(r, "flt6") == -2e-2);
        assert_true(float_at(r, "flt7") == 6.626e-34);
        assert_true(float_at(r, "flt8") == 224617.445991228);
        assert_true(signbit(float_at(r, "flt9")));
        assert_true(isinf(float_at(r, "sf1")) && float_at(r, "sf1") > 0);
        assert_true(isinf(float_at(r, "sf2")) && float_at(r, "sf2") > 0);
        assert_true(isinf(float_at(r, "sf3")) && float_at(r, "sf3") < 0);
        assert_true(isnan(float_at(r, "sf4")));
        assert_true(isnan(float_at(r, "sf5")));
        assert_true(isnan(float_at(r, "sf6")));
        assert_true(toml_boolean(toml_table_get(r, "bool1")));
        assert_int_equal(toml_type(toml_table_get(r, "bool2")), TOML_BOOLEAN);
        assert_false(toml_boolean(toml_table_get(r, "bool2")));

        const char *bad[] = {
                "i = 01\n",        "i = 00\n",          "i = 1__2\n",      "i = _1\n",       "i = 1_\n",
                "i = 0x\n",        "i = +0x1\n",        "i = -0o7\n",      "i = 0xg\n",      "i = 0o8\n",
                "i = 0b2\n",       "i = 0x_1\n",        "i = 9223372036854775808\n",              "i = -9223372036854775809\n",
                "i = 0x8000000000000000\n",             "f = .7\n",        "f = 7.\n",       "f = 3.e+20\n",
                "f = 1e\n",        "f = 1e_1\n",        "f = 1.5.5\n",     "f = 1_.5\n",     "f = 1._5\n",
                "f = infinity\n",  "f = NaN\n",         "f = Inf\n",       "b = True\n",     "b = truex\n",
                "b = fals\n",      "i = 1 2\n",         "i = --1\n",       "i = 1x\n",       "f = 01.5\n",
                "i = +\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_bad(bad[i]);
}

static void test_toml_spec_datetimes(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "odt1 = 1979-05-27T07:32:00Z\nodt2 = 1979-05-27T00:32:00-07:00\nodt3 = 1979-05-27T00:32:00.999999-07:00\n"
                "odt4 = 1979-05-27 07:32:00Z\nldt1 = 1979-05-27T07:32:00\nldt2 = 1979-05-27T00:32:00.999999\n"
                "ld1 = 1979-05-27\nlt1 = 07:32:00\nlt2 = 00:32:00.999999\nleap = 2000-02-29\n"
                "lower = 1979-05-27t07:32:00z\nd_comment = 1979-05-27 # a date\narr = [1979-05-27, 07:32:00]\n");
        struct {
                const char *key, *text;
                enum toml_datetime_kind kind;
        } want[] = {
                {"odt1", "1979-05-27T07:32:00Z", TOML_DATETIME_OFFSET},
                {"odt2", "1979-05-27T00:32:00-07:00", TOML_DATETIME_OFFSET},
                {"odt3", "1979-05-27T00:32:00.999999-07:00", TOML_DATETIME_OFFSET},
                {"odt4", "1979-05-27 07:32:00Z", TOML_DATETIME_OFFSET},
                {"ldt1", "1979-05-27T07:32:00", TOML_DATETIME_LOCAL},
                {"ldt2", "1979-05-27T00:32:00.999999", TOML_DATETIME_LOCAL},
                {"ld1", "1979-05-27", TOML_DATE_LOCAL},
                {"lt1", "07:32:00", TOML_TIME_LOCAL},
                {"lt2", "00:32:00.999999", TOML_TIME_LOCAL},
                {"lower", "1979-05-27t07:32:00z", TOML_DATETIME_OFFSET},
                {"d_comment", "1979-05-27", TOML_DATE_LOCAL},
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                struct toml_value *v = toml_table_get(r, want[i].key);
                assert_non_null(v);
                assert_int_equal(toml_type(v), TOML_DATETIME);
                assert_string_equal(toml_string(v), want[i].text);
                assert_int_equal(toml_datetime_kind(v), want[i].kind);
        }
        assert_int_equal(toml_array_size(toml_table_get(r, "arr")), 2);
        const char *bad[] = {"d = 1979-13-27\n",       "d = 1979-02-30\n",         "d = 2001-02-29\n",
                             "d = 1979-05-27T25:00:00\n", "d = 1979-05-27T07:60:00\n", "d = 1979-05-27T07:32\n",
                             "d = 1979-05-27T07:32:00+7:00\n", "d = 1979-05-27T07:32:00.\n", "t = 07:32\n",
                             "d = 1979-05-27X\n",       "d = 1979-5-27\n"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_bad(bad[i]);
}

static void test_toml_spec_arrays(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "integers = [ 1, 2, 3 ]\ncolors = [ \"red\", \"yellow\", \"green\" ]\n"
                "nested_arrays_of_ints = [ [ 1, 2 ], [3, 4, 5] ]\nnested_mixed_array = [ [ 1, 2 ], [\"a\", \"b\", \"c\"] ]\n"
                "string_array = [ \"all\", 'strings', \"\"\"are the same\"\"\", '''type''' ]\n"
                "numbers = [ 0.1, 0.2, 0.5, 1, 2, 5 ]\n"
                "contributors = [\n  \"Foo Bar <foo@example.com>\",\n"
                "  { name = \"Baz Qux\", email = \"bazqux@example.com\", url = \"https://example.com/bazqux\" }\n]\n"
                "integers2 = [\n  1, 2, 3\n]\nintegers3 = [\n  1,\n  2, # this is ok\n]\nempty = [ ]\n"
                "commented = [ # c1\n # c2\n 1 # c3\n , # c4\n ]\n");
        struct toml_value *a = toml_table_get(r, "nested_arrays_of_ints");
        assert_int_equal(toml_array_size(a), 2);
        assert_int_equal(toml_array_size(toml_array_get(a, 1)), 3);
        assert_int_equal(toml_integer(toml_array_get(toml_array_get(a, 1), 2)), 5);
        struct toml_value *s = toml_table_get(r, "string_array");
        assert_string_equal(toml_string(toml_array_get(s, 2)), "are the same");
        struct toml_value *c = toml_table_get(r, "contributors");
        assert_int_equal(toml_type(toml_array_get(c, 1)), TOML_TABLE);
        assert_string_equal(toml_string(toml_table_get(toml_array_get(c, 1), "url")), "https://example.com/bazqux");
        assert_int_equal(toml_array_size(toml_table_get(r, "integers3")), 2);
        assert_int_equal(toml_array_size(toml_table_get(r, "empty")), 0);
        assert_int_equal(toml_array_size(toml_table_get(r, "commented")), 1);
        assert_null(toml_array_get(c, 2));

        parse_bad("a = [1 2]\n");
        parse_bad("a = [1,,2]\n");
        parse_bad("a = [,]\n");
        parse_bad("a = [1\n");
        parse_bad("a = [\n1,\n2\n");
        parse_bad("a = ]\n");
}

static void test_toml_spec_tables(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "top = 1\n[table]\n[table-1]\nkey1 = \"some string\"\nkey2 = 123\n\n[table-2]\nkey1 = \"another string\"\n"
                "key2 = 456\n[dog.\"tater.man\"]\ntype.name = \"pug\"\n[a.b.c]\n[ d.e.f ]\n[ g .  h  . i ]\n"
                "[ j . \"\xca\x9e\" . 'l' ]\n[x.y.z.w]\n[x]\n"
                "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true\n");
        assert_int_equal(int_at(r, "top"), 1);
        assert_int_equal(int_at(r, "table-2.key2"), 456);
        assert_string_equal(str_at(r, "dog.\"tater.man\".type.name"), "pug");
        assert_int_equal(toml_type(toml_get_path(r, "g.h.i")), TOML_TABLE);
        assert_non_null(toml_get_path(r, "j.\"\xca\x9e\".l"));
        assert_non_null(toml_get_path(r, "x.y.z.w"));
        assert_true(toml_boolean(toml_get_path(r, "fruit.apple.taste.sweet")));
        assert_true(toml_boolean(toml_get_path(r, "fruit.apple.texture.smooth")));
        assert_null(toml_get_path(r, "fruit.nope"));
        assert_null(toml_get_path(r, "top.x"));
        assert_null(toml_get_path(r, "bad key"));
        assert_null(toml_get_path(r, ""));

        parse_bad("[fruit]\napple = \"red\"\n\n[fruit]\norange = \"orange\"\n");
        parse_bad("[fruit]\napple = \"red\"\n\n[fruit.apple]\ntexture = \"smooth\"\n");
        parse_bad("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple]  # INVALID\n");
        parse_bad("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.taste]  # INVALID\n");
        parse_bad("[a.b.c]\nz = 9\n[a]\nb.c.t = \"no\"\n");
        parse_bad("[a.b.c.d]\nz = 9\n[a]\nb.c.d.k.t = \"no\"\n");
        parse_bad("a.b = 1\n[a]\n");
        parse_bad("[]\n");
        parse_bad("[a.]\n");
        parse_bad("[a\n");
        parse_bad("[a] b = 1\n");
        parse_bad("[ [a]]\n");
        parse_bad("[[a] ]\n");
        parse_bad("a = 1\n[a]\n");
        parse_bad("a = 1\n[a.b]\n");
}

static void test_toml_spec_inline_tables(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "name = { first = \"Tom\", last = \"Preston-Werner\" }\npoint = { x = 1, y = 2 }\n"
                "animal = { type.name = \"pug\" }\nempty = {}\nnested = { a = { b = [ { c = 1 } ] } }\n"
                "multi = { a = [\n 1,\n 2 ] }\n");
        assert_string_equal(str_at(r, "name.last"), "Preston-Werner");
        assert_int_equal(int_at(r, "point.y"), 2);
        assert_string_equal(str_at(r, "animal.type.name"), "pug");
        assert_int_equal(toml_table_size(toml_table_get(r, "empty")), 0);
        assert_int_equal(toml_array_size(toml_get_path(r, "multi.a")), 2);

        parse_bad("[product]\ntype = { name = \"Nail\" }\ntype.edible = false  # INVALID\n");
        parse_bad("[product]\ntype.name = \"Nail\"\ntype = { edible = false }  # INVALID\n");
        parse_bad("a = { b = 1, b = 2 }\n");
        parse_bad("a = { b = 1, }\n");
        parse_bad("a = { b = 1\n}\n");
        parse_bad("a = {\n}\n");
        parse_bad("a = { b = 1 c = 2 }\n");
        parse_bad("a = { b.c = 1, b = 2 }\n");
        parse_bad("a = {}\n[a]\n");
        parse_bad("a = {}\n[a.b]\n");
        parse_bad("a = { b = {} }\n[a.b]\n");
        parse_bad("a = { b = {} }\na.b.c = 1\n");
}

static void test_toml_spec_array_of_tables(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "[[products]]\nname = \"Hammer\"\nsku = 738594937\n\n[[products]]  # empty table within the array\n\n"
                "[[products]]\nname = \"Nail\"\nsku = 284758393\n\ncolor = \"gray\"\n"
                "[[fruits]]\nname = \"apple\"\n\n[fruits.physical]  # subtable\ncolor = \"red\"\nshape = \"round\"\n\n"
                "[[fruits.varieties]]  # nested array of tables\nname = \"red delicious\"\n\n[[fruits.varieties]]\n"
                "name = \"granny smith\"\n\n\n[[fruits]]\nname = \"banana\"\n\n[[fruits.varieties]]\nname = \"plantain\"\n"
                "points = [ { x = 1, y = 2, z = 3 },\n           { x = 7, y = 8, z = 9 },\n           { x = 2, y = 4, z = 8 } ]\n");
        struct toml_value *p = toml_table_get(r, "products");
        assert_int_equal(toml_array_size(p), 3);
        assert_int_equal(toml_table_size(toml_array_get(p, 1)), 0);
        assert_string_equal(toml_string(toml_table_get(toml_array_get(p, 2), "color")), "gray");
        struct toml_value *f = toml_table_get(r, "fruits");
        assert_int_equal(toml_array_size(f), 2);
        struct toml_value *apple = toml_array_get(f, 0), *banana = toml_array_get(f, 1);
        assert_string_equal(str_at(apple, "physical.shape"), "round");
        assert_int_equal(toml_array_size(toml_table_get(apple, "varieties")), 2);
        assert_string_equal(toml_string(toml_table_get(toml_array_get(toml_table_get(apple, "varieties"), 1), "name")),
                            "granny smith");
        assert_int_equal(toml_array_size(toml_table_get(banana, "varieties")), 1);
        /* "points" follows [[fruits.varieties]], so it belongs to banana's last variety. */
        assert_int_equal(toml_array_size(toml_table_get(toml_array_get(toml_table_get(banana, "varieties"), 0), "points")), 3);

        parse_bad("[fruit.physical]\ncolor = \"red\"\n\n[[fruit]]\nname = \"apple\"\n");
        parse_bad("fruits = []\n\n[[fruits]] # Not allowed\n");
        parse_bad("[[fruits]]\nname = \"apple\"\n\n[[fruits.varieties]]\nname = \"red delicious\"\n\n"
                  "[fruits.varieties]\nname = \"granny smith\"\n");
        parse_bad("[[fruits]]\nname = \"apple\"\n\n[fruits.physical]\ncolor = \"red\"\n\n[[fruits.physical]]\ncolor = \"green\"\n");
        parse_bad("[[a]]\n[a]\n");
        parse_bad("[[a]]\na = 1\n[[a]]\n[[a.a]\n");
}

static void test_toml_example_document(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "# This is a TOML document\n\ntitle = \"TOML Example\"\n\n[owner]\nname = \"Tom Preston-Werner\"\n"
                "dob = 1979-05-27T07:32:00-08:00\n\n[database]\nenabled = true\nports = [ 8000, 8001, 8002 ]\n"
                "data = [ [\"delta\", \"phi\"], [3.14] ]\ntemp_targets = { cpu = 79.5, case = 72.0 }\n\n[servers]\n\n"
                "[servers.alpha]\nip = \"10.0.0.1\"\nrole = \"frontend\"\n\n[servers.beta]\nip = \"10.0.0.2\"\n"
                "role = \"backend\"\n");
        assert_string_equal(str_at(r, "title"), "TOML Example");
        assert_string_equal(toml_string(toml_get_path(r, "owner.dob")), "1979-05-27T07:32:00-08:00");
        assert_int_equal(toml_integer(toml_array_get(toml_get_path(r, "database.ports"), 2)), 8002);
        assert_true(float_at(r, "database.temp_targets.case") == 72.0);
        assert_string_equal(str_at(r, "servers.beta.role"), "backend");
        /* Positions are recorded. */
        struct toml_value *ip = toml_get_path(r, "servers.beta.ip");
        assert_int_equal(toml_line(ip), 22);
        assert_int_equal(toml_column(ip), 6);
        _cleanup_free_ char *path = toml_value_path(ip);
        assert_string_equal(path, "servers.beta.ip");
}

static void test_toml_error_positions(void **state)
{
        (void)state;
        struct toml_value *root = NULL;
        _cleanup_error_ struct error *e = NULL;
        const char *doc = "a = 1\n[t]\n  x = \"\"\"\nmulti\nline\"\"\"\n  x = 2\n";
        assert_int_equal(toml_parse(doc, strlen(doc), &root, &e), -EINVAL);
        assert_string_equal(error_str(e), "toml: line 6 column 3: duplicate key x: invalid argument");
        error_free(&e);
        doc = "[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = 1\n[plugins.\"io.containerd.grpc.v1.cri\"]\n";
        assert_int_equal(toml_parse(doc, strlen(doc), &root, &e), -EINVAL);
        assert_string_equal(error_str(e),
                            "toml: line 3 column 1: duplicate table plugins.\"io.containerd.grpc.v1.cri\": invalid argument");
        error_free(&e);
        doc = "a = 1\nb = @\n";
        assert_int_equal(toml_parse(doc, strlen(doc), &root, &e), -EINVAL);
        assert_string_equal(error_str(e), "toml: line 2 column 5: invalid value: invalid argument");
}

static void test_toml_crlf_bom_and_limits(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok("\xef\xbb\xbfkey = \"value\"\r\n[t]\r\nv = \"\"\"a\r\nb\"\"\" # c\r\n");
        assert_string_equal(str_at(r, "key"), "value");
        assert_string_equal(str_at(r, "t.v"), "a\nb");
        parse_bad("a = 1\rb = 2\n");
        parse_bad("a = \"x\0y\"\n"); /* strlen stops at the NUL: unterminated string */

        /* Nesting depth is bounded. */
        char deep[2 * TOML_MAX_DEPTH + 32];
        size_t n = 0;
        n += (size_t)sprintf(deep, "a = ");
        for (unsigned i = 0; i < TOML_MAX_DEPTH + 1; i++)
                deep[n++] = '[';
        for (unsigned i = 0; i < TOML_MAX_DEPTH + 1; i++)
                deep[n++] = ']';
        deep[n] = '\0';
        parse_bad(deep);
        /* Just under the bound is fine. */
        n = (size_t)sprintf(deep, "a = ");
        for (unsigned i = 0; i < TOML_MAX_DEPTH - 1; i++)
                deep[n++] = '[';
        for (unsigned i = 0; i < TOML_MAX_DEPTH - 1; i++)
                deep[n++] = ']';
        deep[n] = '\0';
        _cleanup_toml_ struct toml_value *ok = parse_ok(deep);

        /* Dotted keys and headers cannot make deeper trees either. */
        _cleanup_free_ char *dotted = malloc(4 * TOML_MAX_DEPTH + 16);
        n = 0;
        n += (size_t)sprintf(dotted, "[");
        for (unsigned i = 0; i < TOML_MAX_DEPTH + 2; i++)
                n += (size_t)sprintf(dotted + n, "%sk", i ? "." : "");
        sprintf(dotted + n, "]\n");
        parse_bad(dotted);

        _cleanup_free_ char *big = malloc(TOML_MAX_INPUT + 2);
        memset(big, '#', TOML_MAX_INPUT + 1);
        struct toml_value *root = NULL;
        _cleanup_error_ struct error *e = NULL;
        assert_int_equal(toml_parse(big, TOML_MAX_INPUT + 1, &root, &e), -EINVAL);
        assert_null(root);

        /* Many keys in one table stay fast (hash index) and are all found. */
        size_t keys = 50000;
        _cleanup_free_ char *many = malloc(keys * 16);
        n = 0;
        for (size_t i = 0; i < keys; i++)
                n += (size_t)sprintf(many + n, "k%zu = %zu\n", i, i);
        _cleanup_toml_ struct toml_value *m = NULL;
        assert_int_equal(toml_parse(many, n, &m, NULL), 0);
        assert_int_equal(toml_table_size(m), keys);
        assert_int_equal(toml_integer(toml_table_get(m, "k49999")), 49999);
        assert_int_equal(toml_integer(toml_table_get(m, "k17")), 17);
        assert_null(toml_table_get(m, "k50000"));
        memcpy(many + n, "k123 = 1\n", 10);
        assert_int_equal(toml_parse(many, n + 9, &root, NULL), -EINVAL);
}

static void test_toml_getters_and_unused_keys(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = parse_ok(
                "version = 2\nroot = \"/var/lib/krill\"\nbogus = 1\n[grpc]\naddress = \"/run/k.sock\"\nuid = 0\n"
                "max = 1.5\nunknown_grpc = true\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"p\"\n"
                "deep.x = 1\n[plugins.other]\nx = 1\n[[list]]\na = 1\nb = 2\n[[list]]\na = 3\n"
                "[strs]\ns = [\"a\", \"b\"]\nbad = [\"a\", 1]\n");
        struct toml_value *grpc = NULL, *plugins = NULL, *cri = NULL, *list = NULL, *strs = NULL;
        const char *s = NULL;
        int64_t i = 0;
        double d = 0;
        bool b = false;
        _cleanup_error_ struct error *e = NULL;

        assert_int_equal(toml_get_int(r, "version", &i, NULL), 1);
        assert_int_equal(i, 2);
        assert_int_equal(toml_get_string(r, "root", &s, NULL), 1);
        assert_string_equal(s, "/var/lib/krill");
        assert_int_equal(toml_get_string(r, "missing", &s, NULL), 0);
        assert_string_equal(s, "/var/lib/krill");
        assert_int_equal(toml_get_table(r, "grpc", &grpc, NULL), 1);
        assert_int_equal(toml_get_string(grpc, "address", &s, NULL), 1);
        assert_int_equal(toml_get_int_range(grpc, "uid", 0, 65535, &i, NULL), 1);
        assert_int_equal(toml_get_float(grpc, "max", &d, NULL), 1);
        assert_true(d == 1.5);
        assert_int_equal(toml_get_float(r, "version", &d, NULL), 1);
        assert_true(d == 2.0);
        assert_int_equal(toml_get_bool(grpc, "address", &b, &e), -EINVAL);
        assert_string_equal(error_str(e),
                            "toml: line 5 column 11: grpc.address: expected boolean, got string: invalid argument");
        error_free(&e);
        assert_int_equal(toml_get_int_range(r, "version", 3, 4, &i, &e), -EINVAL);
        assert_string_equal(error_str(e), "toml: line 1 column 11: version: value 2 out of range: invalid argument");
        error_free(&e);
        assert_int_equal(toml_get_table(r, "plugins", &plugins, NULL), 1);
        assert_int_equal(toml_get_table(plugins, "io.containerd.grpc.v1.cri", &cri, NULL), 1);
        assert_int_equal(toml_get_string(cri, "sandbox_image", &s, NULL), 1);
        assert_int_equal(toml_get_array(r, "list", &list, NULL), 1);
        assert_int_equal(toml_get_int(toml_array_get(list, 0), "a", &i, NULL), 1);
        assert_int_equal(toml_get_int(toml_array_get(list, 1), "a", &i, NULL), 1);
        assert_int_equal(i, 3);
        assert_int_equal(toml_get_table(r, "strs", &strs, NULL), 1);
        _cleanup_strv_free_ char **sv = NULL;
        assert_int_equal(toml_get_string_array(strs, "s", &sv, NULL), 1);
        assert_int_equal(strv_length(sv), 2);
        char **bad = NULL;
        assert_int_equal(toml_get_string_array(strs, "bad", &bad, &e), -EINVAL);
        assert_null(bad);
        assert_string_equal(error_str(e), "toml: line 21 column 13: strs.bad: expected string, got integer: invalid argument");
        assert_int_equal(toml_get_string(NULL, "x", &s, NULL), 0);

        _cleanup_strv_free_ char **unused = toml_unused_keys(r);
        _cleanup_free_ char *joined = strv_join(unused, " ");
        assert_string_equal(joined, "bogus grpc.unknown_grpc plugins.\"io.containerd.grpc.v1.cri\".deep plugins.other "
                                    "list.b");
        toml_mark_used(toml_get_path(r, "plugins.other"), true);
        toml_mark_used(toml_table_get(r, "bogus"), false);
        assert_true(toml_is_used(toml_get_path(r, "plugins.other.x")));
        strv_free(unused);
        unused = toml_unused_keys(r);
        assert_int_equal(strv_length(unused), 3);
}

static void test_toml_format_and_dump_roundtrip(void **state)
{
        (void)state;
        _cleanup_free_ char *k1 = toml_format_key("bare_key-1");
        _cleanup_free_ char *k2 = toml_format_key("io.containerd.grpc.v1.cri");
        _cleanup_free_ char *k3 = toml_format_key("");
        assert_string_equal(k1, "bare_key-1");
        assert_string_equal(k2, "\"io.containerd.grpc.v1.cri\"");
        assert_string_equal(k3, "\"\"");
        _cleanup_free_ char *s = toml_format_string("a\"\\\n\x01\xc3\xa9", 7);
        assert_string_equal(s, "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"");

        const char *doc = "a = 1\nb = \"x\\u0000y\"\nc = [1.5, -0.0, inf, -nan, 1e300, 0.1]\n"
                          "[t.\"u.v\"]\nd = 1979-05-27T07:32:00Z\ne = { f = [true, false], g = {} }\n[[h]]\ni = 'j'\n[[h]]\n";
        _cleanup_toml_ struct toml_value *r1 = parse_ok(doc);
        _cleanup_free_ char *d1 = toml_dump(r1);
        _cleanup_toml_ struct toml_value *r2 = parse_ok(d1);
        _cleanup_free_ char *d2 = toml_dump(r2);
        assert_string_equal(d1, d2);
        assert_string_equal(d1, "a = 1\nb = \"x\\u0000y\"\nc = [1.5, -0.0, inf, -nan, 1.0000000000000001e+300, "
                                "0.10000000000000001]\nt = {\"u.v\" = {d = 1979-05-27T07:32:00Z, e = {f = [true, false], "
                                "g = {}}}}\nh = [{i = \"j\"}, {}]\n");
}

static void test_toml_containerd_default_config(void **state)
{
        (void)state;
        _cleanup_toml_ struct toml_value *r = NULL;
        _cleanup_error_ struct error *e = NULL;
        int r0 = toml_parse_file(AT_FDCWD, FUZZ_CORPUS_DIR "/toml/containerd-default.toml", &r, &e);
        if (r0 < 0)
                fail_msg("%s", error_str(e));
        assert_int_equal(int_at(r, "version"), 2);
        assert_string_equal(str_at(r, "grpc.address"), "/run/containerd/containerd.sock");
        assert_int_equal(int_at(r, "grpc.max_recv_message_size"), 16777216);
        assert_string_equal(str_at(r, "plugins.\"io.containerd.grpc.v1.cri\".sandbox_image"), "registry.k8s.io/pause:3.6");
        assert_string_equal(
                str_at(r, "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.runtime_type"),
                "io.containerd.runc.v2");
        assert_true(float_at(r, "plugins.\"io.containerd.gc.v1.scheduler\".pause_threshold") == 0.02);
        assert_string_equal(str_at(r, "timeouts.\"io.containerd.timeout.shim.load\""), "5s");
        assert_int_equal(toml_array_size(toml_get_path(r, "stream_processors.\"io.containerd.ocicrypt.decoder.v1.tar\".args")),
                         2);

        _cleanup_toml_ struct toml_value *missing = NULL;
        assert_int_equal(toml_parse_file(AT_FDCWD, "/nonexistent/config.toml", &missing, NULL), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_toml_spec_comments_and_keys),
                cmocka_unit_test(test_toml_spec_strings),
                cmocka_unit_test(test_toml_spec_numbers),
                cmocka_unit_test(test_toml_spec_datetimes),
                cmocka_unit_test(test_toml_spec_arrays),
                cmocka_unit_test(test_toml_spec_tables),
                cmocka_unit_test(test_toml_spec_inline_tables),
                cmocka_unit_test(test_toml_spec_array_of_tables),
                cmocka_unit_test(test_toml_example_document),
                cmocka_unit_test(test_toml_error_positions),
                cmocka_unit_test(test_toml_crlf_bom_and_limits),
                cmocka_unit_test(test_toml_getters_and_unused_keys),
                cmocka_unit_test(test_toml_format_and_dump_roundtrip),
                cmocka_unit_test(test_toml_containerd_default_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
