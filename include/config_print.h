/*
 * config_print: the options written out, from config_option's table:
 * --help (config_usage()) and --print-config (config_print(), a
 * configuration file that reads back as it is), both declared in
 * config.h; and the check --print-config needs first.
 */
#ifndef BEEP_CONFIG_PRINT_H
#define BEEP_CONFIG_PRINT_H

#include "config.h"

/*
 * Whether every value of c can be written to a file that reads back as
 * it is (none with a line break).  0, or -1 after saying on stderr which
 * cannot and how else to set it.
 */
int config_print_check(const struct config *c);

#endif
