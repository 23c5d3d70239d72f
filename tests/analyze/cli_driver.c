/* cli_driver.c — runs `report` and `export` the way src/cli/main.c dispatches them (command
 * name set for messages, argv[0] the subcommand), for builds without the heaptrail tool:
 * ht_analyze_cli report FILE ..., ht_analyze_cli export FILE .... */
#include <stdio.h>
#include <string.h>

#include "cli/cli_common.h"
#include "cli/commands.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "report") == 0) {
        ht_cli_set_command("report");
        return ht_cli_report(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "export") == 0) {
        ht_cli_set_command("export");
        return ht_cli_export(argc - 1, argv + 1);
    }
    fprintf(stderr, "usage: ht_analyze_cli report|export FILE [options]\n");
    return 1;
}
