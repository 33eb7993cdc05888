/*
 * core/version.c — the library's version, for a program that links it.
 */
#include "weft/weft.h"

const char *weft_version(void) { return WEFT_VERSION; }
