/* SPDX-License-Identifier: MIT */
/* A C host that got libpolyplug.so from a Meson subproject or pkg-config. */
#include <polyplug/abi.h>

#include <stdio.h>

int main(void) {
    const HostApi* host = polyplug_runtime_create(NULL);
    if (host == NULL) return 1;
    const int ok = polyplug_handle_is_null(host->find_guest_contract(host, 1, 0));
    polyplug_runtime_destroy(host);
    printf("c_consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
