// SPDX-License-Identifier: MIT
/**
 * @file dotnet_module.h
 * libpolyplug-loader-dotnet.so, the .NET loader for C hosts: one function returning the loader
 * table that `HostApi.register_loader` takes (the runtime owns it from then on). C11, also C++.
 *
 * @code
 * AbiError err;
 * host->register_loader(host, polyplug_loader_dotnet_create(), &err);
 * @endcode
 */
#pragma once

#include <polyplug/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A new .NET loader table (`loader = "dotnet"` C# bundles, on Mono); NULL when memory runs out. */
POLYPLUG_PLUGIN_EXPORT BundleLoader* polyplug_loader_dotnet_create(void);

#ifdef __cplusplus
} /* extern "C" */
#endif
