// SPDX-License-Identifier: MIT
/// @file lua_loader_module.cpp
/// libpolyplug-loader-lua.so: the Lua loader (polyplug/loaders/lua.hpp) as a C loader table, so
/// that C hosts of libpolyplug.so can add it with HostApi.register_loader. Exports exactly
/// polyplug_loader_lua_create (hidden visibility for everything else).
#include <polyplug/loader_table.hpp>
#include <polyplug/loaders/lua.hpp>
#include <polyplug/loaders/lua_module.h>

extern "C" BundleLoader* polyplug_loader_lua_create(void) {
    return polyplug::make_loader_table<polyplug::lua_loader>();
}
