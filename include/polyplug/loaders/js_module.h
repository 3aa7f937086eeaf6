/* SPDX-License-Identifier: MIT */
/**
 * @file loaders/js_module.h
 * The JavaScript (Duktape) loader module for C hosts: libpolyplug-loader-js.so exports one
 * function returning a new loader table, to hand to HostApi.register_loader (which takes
 * ownership, whether registration succeeds or not). C11, also C++.
 *
 * @code
 * AbiError err = {0};
 * host->register_loader(host, polyplug_loader_js_create(), &err);
 * @endcode
 */
#ifndef POLYPLUG_LOADERS_JS_MODULE_H
#define POLYPLUG_LOADERS_JS_MODULE_H

#include <polyplug/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A new loader table for `loader = "js"` bundles; NULL when memory runs out. */
POLYPLUG_PLUGIN_EXPORT BundleLoader* polyplug_loader_js_create(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_LOADERS_JS_MODULE_H */
