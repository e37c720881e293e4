/* Go text/tabwriter emulation, checked against ctr 1.6.20's own output (captured against containerd 1.6.20). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/tabwriter.h"
#include "util/cleanup.h"

/* Runs writes through a tabwriter into a memory stream and returns the output (new string). */
static char *render(int minwidth, int tabwidth, int padding, const char *const *writes)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        struct cli_tabwriter *tw = cli_tabwriter_new(f, minwidth, tabwidth, padding, ' ');
        for (size_t i = 0; writes[i]; i++)
                cli_tabwriter_write(tw, writes[i]);
        assert_int_equal(cli_tabwriter_flush(tw), 0);
        cli_tabwriter_free(tw);
        fclose(f);
        return buf;
}

static void test_tabwriter_namespaces_ls(void **state)
{
        (void)state;
        /* `ctr namespaces ls` with no namespace, one, and two */
        _cleanup_free_ char *a = render(1, 8, 1, (const char *const[]){"NAME\tLABELS\t\n", NULL});
        assert_string_equal(a, "NAME LABELS \n");
        _cleanup_free_ char *b = render(1, 8, 1, (const char *const[]){"NAME\tLABELS\t\n", "foo\ta=b,c=d\t\n", NULL});
        assert_string_equal(b, "NAME LABELS  \n"
                               "foo  a=b,c=d \n");
        _cleanup_free_ char *c =
                render(1, 8, 1, (const char *const[]){"NAME\tLABELS\t\n", "foo\tc=d,e=f\t\n", "ghost\tx=y\t\n", NULL});
        assert_string_equal(c, "NAME  LABELS  \n"
                               "foo   c=d,e=f \n"
                               "ghost x=y     \n");
}

static void test_tabwriter_plugins_ls(void **state)
{
        (void)state;
        static const char *const ids[] = {"introspection", "containers", "content", "diff", "events",
                                          "healthcheck",   "images",     "leases",  "namespaces", "snapshots",
                                          "tasks",         "version"};
        const char *writes[32];
        char lines[16][128];
        size_t n = 0;
        writes[n++] = "TYPE\tID\tPLATFORMS\tSTATUS\t\n";
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
                snprintf(lines[i], sizeof(lines[i]), "io.containerd.grpc.v1\t%s\t-\tok\t\n", ids[i]);
                writes[n++] = lines[i];
        }
        writes[n++] = "io.containerd.grpc.v1\tcri\tlinux/amd64\tok\t\n";
        writes[n] = NULL;
        _cleanup_free_ char *out = render(4, 8, 4, writes);
        /* `ctr plugins ls type==io.containerd.grpc.v1` against containerd 1.6.20 */
        assert_string_equal(out, "TYPE                     ID               PLATFORMS      STATUS    \n"
                                 "io.containerd.grpc.v1    introspection    -              ok        \n"
                                 "io.containerd.grpc.v1    containers       -              ok        \n"
                                 "io.containerd.grpc.v1    content          -              ok        \n"
                                 "io.containerd.grpc.v1    diff             -              ok        \n"
                                 "io.containerd.grpc.v1    events           -              ok        \n"
                                 "io.containerd.grpc.v1    healthcheck      -              ok        \n"
                                 "io.containerd.grpc.v1    images           -              ok        \n"
                                 "io.containerd.grpc.v1    leases           -              ok        \n"
                                 "io.containerd.grpc.v1    namespaces       -              ok        \n"
                                 "io.containerd.grpc.v1    snapshots        -              ok        \n"
                                 "io.containerd.grpc.v1    tasks            -              ok        \n"
                                 "io.containerd.grpc.v1    version          -              ok        \n"
                                 "io.containerd.grpc.v1    cri              linux/amd64    ok        \n");
}

static void test_tabwriter_plugins_detailed(void **state)
{
        (void)state;
        /* ctr's Fprintln calls for the first two plugins of `ctr plugins ls -d` */
        const char *const writes[] = {
                "Type:\t io.containerd.content.v1\n",
                "ID:\t content\n",
                "Exports:\t\n",
                "\t root \t /r/io.containerd.content.v1.content\n",
                "\t\t\t\n",
                "Type:\t io.containerd.snapshotter.v1\n",
                "ID:\t aufs\n",
                "Platforms:\t linux/amd64\n",
                "Exports:\t\n",
                "\t root \t /r/io.containerd.snapshotter.v1.aufs\n",
                "Error:\t\n",
                "\t Code:\t Unknown\n",
                "\t Message:\t aufs is not supported: skip plugin\n",
                NULL,
        };
        _cleanup_free_ char *out = render(4, 8, 4, writes);
        assert_string_equal(out, "Type:          io.containerd.content.v1\n"
                                 "ID:            content\n"
                                 "Exports:      \n"
                                 "               root      /r/io.containerd.content.v1.content\n"
                                 "                            \n"
                                 "Type:          io.containerd.snapshotter.v1\n"
                                 "ID:            aufs\n"
                                 "Platforms:     linux/amd64\n"
                                 "Exports:      \n"
                                 "               root      /r/io.containerd.snapshotter.v1.aufs\n"
                                 "Error:        \n"
                                 "               Code:        Unknown\n"
                                 "               Message:     aufs is not supported: skip plugin\n");
}

static void test_tabwriter_line_without_tabs_ends_blocks(void **state)
{
        (void)state;
        _cleanup_free_ char *out =
                render(1, 8, 1, (const char *const[]){"a\tb\t\n", "plain line\n", "longer\tx\t\n", "partial", NULL});
        assert_string_equal(out, "a b \n"
                                 "plain line\n"
                                 "longer x \n"
                                 "partial");
        /* widths count runes, not bytes */
        _cleanup_free_ char *u = render(1, 8, 1, (const char *const[]){"\xc3\xa9t\xc3\xa9\tx\t\n", "ab\ty\t\n", NULL});
        assert_string_equal(u, "\xc3\xa9t\xc3\xa9 x \n"
                               "ab  y \n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tabwriter_namespaces_ls),
                cmocka_unit_test(test_tabwriter_plugins_ls),
                cmocka_unit_test(test_tabwriter_plugins_detailed),
                cmocka_unit_test(test_tabwriter_line_without_tabs_ends_blocks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
