/*
 * core/config.h — what the program skeleton needs from the option table.
 */
#ifndef WEFT_CORE_CONFIG_H
#define WEFT_CORE_CONFIG_H

#include <stddef.h>

#include "weft/weft.h"

/*
 * The value option i of weft_config_options has in cfg, as --help shows it,
 * into buf: 0, or -ENOENT when the option's help states its default itself.
 */
int cfg_option_default(const weft_config *cfg, size_t i, char *buf, size_t len);

/*
 * The value option i has in cfg, as the option would be written to set it
 * (pin "cpu", cpus "0,2"), into buf: 0, or -ENOENT for an option that has
 * no single value (no-pin, listen, io when unset, cpus when unset).
 */
int cfg_option_value(const weft_config *cfg, size_t i, char *buf, size_t len);

#endif
