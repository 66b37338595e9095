/* relay.c - `cutover log-relay ID`: the hidden verb the supervisor runs as
 * an instance's log relay (src/supervisor/relay.c does the work).  Not
 * listed in the help and not for use by hand: it expects its input, log
 * file and redactor on descriptors set up by the supervisor.
 */
#include "cli/cli.h"
#include "supervisor/supervisor.h"

int cli_log_relay(int argc, char **argv)
{
	return sup_relay_main(argc, argv);
}
