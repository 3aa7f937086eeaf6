/* SPDX-License-Identifier: MIT */
/**
 * @file python_module.h
 * The entry point of libpolyplug-loader-python.so, the Python loader for C hosts: a new C loader
 * table to hand to HostApi.register_loader (which takes ownership, success or not). C11, also
 * C++.
 *
 * @code
 * AbiError err;
 * host->register_loader(host, polyplug_loader_python_create(), &err);
 * @endcode
 */
#ifndef POLYPLUG_LOADERS_PYTHON_MODULE_H
#define POLYPLUG_LOADERS_PYTHON_MODULE_H

#include <polyplug/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A new Python loader (`loader = "python"`); NULL when memory runs out. */
POLYPLUG_PLUGIN_EXPORT BundleLoader* polyplug_loader_python_create(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_LOADERS_PYTHON_MODULE_H */
