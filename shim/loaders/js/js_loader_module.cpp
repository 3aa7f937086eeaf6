// SPDX-License-Identifier: MIT
/// @file js_loader_module.cpp
/// libpolyplug-loader-js.so: the JavaScript loader (loaders/js.hpp) as a C loader table, so that
/// C hosts can add it with HostApi.register_loader. Exports exactly polyplug_loader_js_create.
#include <polyplug/loader_table.hpp>
#include <polyplug/loaders/js.hpp>
#include <polyplug/loaders/js_module.h>

extern "C" POLYPLUG_PLUGIN_EXPORT BundleLoader* polyplug_loader_js_create(void) {
    return polyplug::make_loader_table<polyplug::js_loader>();
}
