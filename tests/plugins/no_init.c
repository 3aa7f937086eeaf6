/* SPDX-License-Identifier: MIT */
/* Fixture: a valid polyplug ABI version but no polyplug_init. */
#include <polyplug/abi.h>

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}
POLYPLUG_PLUGIN_EXPORT int fixture_not_an_init(void) {
    return 0;
}
