/* placeholder */
#include "cli/cli.h"

static int run_stub(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        (void)cmd; (void)argc; (void)argv;
        return cli_failf(g, "not implemented");
}

const struct cli_command cli_events_command = {.name = "events", .usage = "stub", .run = run_stub};
