// SPDX-License-Identifier: MIT
/// @file bench/vm_bench.cpp
/// VM calls per loader, each against the raw embedding call of the same function with the same
/// marshalling (DESIGN.md: within 15%). The VM loaders are issue 6: until they land, the rows are
/// listed as not built. When a loader lands, replace its two lines with measured rows (a batch
/// calling through the runtime, a batch calling lua_pcall / PyObject_Vectorcall / duk_pcall
/// directly) and add_compared with budget {"<= 1.15x raw embedding call", 1.15, 0}.
#include "suite.hpp"

namespace bench {

void run_vm_calls(suite& s) {
    const std::string group = "VM calls";
    add_not_built(s, group, "Lua: scalar function vs lua_pcall", "issue 6");
    add_not_built(s, group, "Lua: string function vs lua_pcall", "issue 6");
    add_not_built(s, group, "Python: scalar function vs PyObject_Vectorcall", "issue 6");
    add_not_built(s, group, "Python: string function vs PyObject_Vectorcall", "issue 6");
    add_not_built(s, group, "JavaScript: scalar function vs duk_pcall", "issue 6");
    add_not_built(s, group, "JavaScript: string function vs duk_pcall", "issue 6");
}

}  // namespace bench
