// SPDX-License-Identifier: MIT
/// @file polyplug.cpp
/// libpolyplug.so: the header-only runtime compiled once. Exports exactly
/// polyplug_runtime_create and polyplug_runtime_destroy (hidden visibility + version script);
/// no C++ exception or foreign unwind crosses them.
#include <polyplug/runtime.hpp>

extern "C" {

POLYPLUG_PLUGIN_EXPORT const HostApi* polyplug_runtime_create(const RuntimeConfig* config) {
    try {
        auto* runtime = new polyplug::runtime(config);
        return runtime->host_api();
    } catch (...) {
        return nullptr;
    }
}

POLYPLUG_PLUGIN_EXPORT void polyplug_runtime_destroy(const HostApi* host) {
    polyplug::runtime_core* core = polyplug::runtime_core::from_host_api(host);
    if (core == nullptr) return;  // null, or a runtime destroyed already
    try {
        delete static_cast<polyplug::runtime*>(core->owner());
    } catch (...) {
        // Teardown must never unwind into the C caller.
    }
}

}  // extern "C"
