// SPDX-License-Identifier: MIT
/// @file ctor_throws.cpp
/// Fixture: a C++ plugin whose static constructor throws. The exception cannot leave dlopen
/// (glibc's loader frames have no unwind path to the caller), so std::terminate ends the process
/// that opens it: tests/preflight.cpp shows the pre-flight option containing that.
#include <polyplug/abi.h>

#include <stdexcept>

namespace {
struct fails_to_initialise {
    fails_to_initialise() { throw std::runtime_error("static constructor failed on purpose"); }
};
const fails_to_initialise g_instance;
}  // namespace

extern "C" {
POLYPLUG_PLUGIN_EXPORT std::uint32_t polyplug_abi_version() {
    return POLYPLUG_ABI_VERSION;
}
POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi*, const BundleInitContext*) {
    return AbiError{AbiErrorCode_Ok, {nullptr, 0}};
}
}
