// SPDX-License-Identifier: MIT
/// @file dotnet_loader_module.cpp
/// libpolyplug-loader-dotnet.so: the .NET loader (C# bundles on Mono) packaged as a C loader
/// table. The module stays mapped once loaded (-z nodelete): Mono, once started, keeps threads
/// and signal handlers that point into it until the process ends.
#include <polyplug/loaders/dotnet.hpp>

#include <polyplug/loader_table.hpp>
#include <polyplug/loaders/dotnet_module.h>

extern "C" BundleLoader* polyplug_loader_dotnet_create(void) {
    return polyplug::make_loader_table<polyplug::dotnet_loader>();
}
