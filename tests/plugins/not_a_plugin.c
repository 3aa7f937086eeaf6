/* SPDX-License-Identifier: MIT */
/* Fixture: an ordinary shared library that exports no polyplug symbol at all. */
#include <polyplug/abi.h>

POLYPLUG_PLUGIN_EXPORT int fixture_something_else(void) {
    return 7;
}
