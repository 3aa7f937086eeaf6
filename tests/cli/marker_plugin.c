/* SPDX-License-Identifier: MIT */
/* Fixture: a valid-looking plugin whose static constructor creates the file named by
 * $POLYPLUG_MARKER. `polyplug validate` must leave no marker (it never runs a bundle's code);
 * `polyplug inspect` loads the bundle, so it does (which shows the marker test can fail). */
#include <polyplug/abi.h>

#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void leave_marker(void) {
    const char* path = getenv("POLYPLUG_MARKER");
    if (path == NULL) return;
    FILE* f = fopen(path, "w");
    if (f != NULL) fclose(f);
}

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    AbiError ok = {AbiErrorCode_Ok, {NULL, 0}};
    (void)host;
    (void)ctx;
    return ok;
}
