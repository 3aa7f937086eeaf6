/* SPDX-License-Identifier: MIT */
/* Fixture: reports ABI version 2; its init must never run. */
#include <polyplug/abi.h>

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return 2;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    (void)host, (void)ctx;
    /* Reaching here is a runtime bug: crash loudly so the test cannot miss it. */
    __builtin_trap();
}
