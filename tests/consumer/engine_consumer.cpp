// SPDX-License-Identifier: MIT
/// @file engine_consumer.cpp
/// A C++ host that includes one script engine's loader header and got everything it needs from
/// one dependency, `dependency('polyplug-<engine>')`: the runtime and the VM's embedding library.
/// POLYPLUG_CONSUMER_ENGINE selects the engine (1 Lua, 2 Python, 3 JavaScript).
#if POLYPLUG_CONSUMER_ENGINE == 1
#include <polyplug/loaders/lua.hpp>
using engine_loader = polyplug::lua_loader;
#elif POLYPLUG_CONSUMER_ENGINE == 2
#include <polyplug/loaders/python.hpp>
using engine_loader = polyplug::python_loader;
#elif POLYPLUG_CONSUMER_ENGINE == 3
#include <polyplug/loaders/js.hpp>
using engine_loader = polyplug::js_loader;
#else
#error "define POLYPLUG_CONSUMER_ENGINE to 1 (Lua), 2 (Python) or 3 (JavaScript)"
#endif
#include <polyplug/runtime.hpp>

#include <cstdio>
#include <string>
#include <system_error>

int main() {
    polyplug::basic_runtime<polyplug::native_loader, engine_loader> rt;
    const std::string name(rt.loader<engine_loader>().name());
    // The engine's loader is registered and answers for its bundles: a missing one is an error
    // of the load, not of the build.
    std::error_code ec;
    rt.load_bundle("/no/such/bundle", ec);
    std::printf("engine_consumer: loader '%s' registered; load of a missing bundle -> %s\n",
                name.c_str(), ec ? "error (expected)" : "success?!");
    return !name.empty() && ec ? 0 : 1;
}
