// SPDX-License-Identifier: MIT
/// @file python_loader_module.cpp
/// libpolyplug-loader-python.so: the Python loader packaged as a C loader table.
#include <polyplug/loaders/python.hpp>

#include <polyplug/loader_table.hpp>
#include <polyplug/loaders/python_module.h>

#include <dlfcn.h>

extern "C" BundleLoader* polyplug_loader_python_create(void) {
    // A host that dlopen'ed this module with RTLD_LOCAL left libpython's symbols invisible to
    // the stdlib's extension modules (lib-dynload/*.so), which the interpreter dlopens later and
    // which expect them global: promote the libpython already loaded with us.
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&Py_IsInitialized), &info) != 0 &&
        info.dli_fname != nullptr) {
        // The handle is kept: the interpreter lives until the process ends.
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    }
    return polyplug::make_loader_table<polyplug::python_loader>();
}
