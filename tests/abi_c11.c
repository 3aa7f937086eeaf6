/* SPDX-License-Identifier: MIT */
/* abi.h compiled as C11 (with -pedantic): its _Static_asserts run, and its inline helpers agree
 * with the spec's test vectors when called from C. */
#include <polyplug/abi.h>

#include <stdio.h>

int main(void) {
    int failures = 0;
    failures += polyplug_guest_contract_id("test.add", 8, 1) != 0x40244DF59FCBECB6ull;
    failures += polyplug_host_contract_id("host.logger", 11, 1) != 0xF53EB5F2845853BBull;
    failures += polyplug_bundle_id("polyplug-core", 13) != 0x6EF4AEE714F5F991ull;
    failures += sizeof(HostApi) != 184;
    failures += polyplug_handle_pack(polyplug_null_handle()) != UINT64_MAX;
    printf("abi_c11: %s\n", failures == 0 ? "ok" : "FAILED");
    return failures;
}
