/* SPDX-License-Identifier: MIT */
/* Fixture: init fails with an error message the host must not trust (issue 16, class 1). One
 * source, a variant per lie: BAD_MESSAGE_WILD, a pointer into the never-mapped first page;
 * BAD_MESSAGE_HUGE, a real text with the length SIZE_MAX; BAD_MESSAGE_GUARD, a pointer to a page
 * mapped PROT_NONE (unmapped again when the library is). */
#define _DEFAULT_SOURCE
#include <polyplug/abi.h>

#include <stdint.h>
#include <sys/mman.h>

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

#if defined(BAD_MESSAGE_GUARD)
static void* guard_page = NULL;
__attribute__((destructor)) static void release_guard_page(void) {
    if (guard_page != NULL) munmap(guard_page, 4096);
}
#endif

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    (void)host, (void)ctx;
    AbiError failure = {7, {NULL, 0}};
#if defined(BAD_MESSAGE_WILD)
    failure.message.ptr = (const uint8_t*)16;
    failure.message.len = 10;
#elif defined(BAD_MESSAGE_HUGE)
    failure.message = polyplug_sv("the length of this text is a lie");
    failure.message.len = SIZE_MAX;
#elif defined(BAD_MESSAGE_GUARD)
    if (guard_page == NULL) {
        guard_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_page == MAP_FAILED) guard_page = NULL;
    }
    failure.message.ptr = (const uint8_t*)guard_page;
    failure.message.len = 32;
#else
#error "build with -DBAD_MESSAGE_WILD, -DBAD_MESSAGE_HUGE or -DBAD_MESSAGE_GUARD"
#endif
    return failure;
}
