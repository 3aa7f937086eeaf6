// SPDX-License-Identifier: MIT
/// @file bench/bench_vm.hpp
/// The script bundles the VM rows call (vm_bench.cpp) and the callgrind probe counts
/// (callgrind_vm_probe.cpp): the bench.Vm contract, its implementation in each engine's language,
/// the C argument structs of its functions, and the bundle directory. One definition, so that the
/// timed rows and the instruction counts measure the same scripts.
#pragma once

#include "bench_bundle.hpp"

#include <polyplug/ids.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bench {

inline constexpr std::string_view vm_api = R"(
[[types]]
name = "Tally"
fields = [{ name = "base", type = "i32" }, { name = "scale", type = "i32" }]

[[guest_contract]]
name = "bench.Vm"
version = "1"
[[guest_contract.functions]]
name = "add"
params = [{ name = "a", type = "i32" }, { name = "b", type = "i32" }]
return = "i32"
[[guest_contract.functions]]
name = "echo"
params = [{ name = "s", type = "StringView" }]
return = "StringView"
[[guest_contract.functions]]
name = "weigh"
params = [{ name = "t", type = "Tally" }, { name = "xs", type = "Array<i32>" }]
return = "i32"
)";

inline constexpr std::uint64_t vm_contract = polyplug::guest_contract_id("bench.Vm", 1);
inline constexpr std::uint32_t vm_add_fn = 0;
inline constexpr std::uint32_t vm_echo_fn = 1;
inline constexpr std::uint32_t vm_weigh_fn = 2;
inline constexpr std::string_view vm_echo_text = "a string of thirty-two bytes...!";

/// weigh's array: 8 elements whose sum is 36, so weigh(t, xs) = t.base + 36 * t.scale.
inline constexpr std::int32_t vm_weigh_items[8] = {1, 2, 3, 4, 5, 6, 7, 8};
inline constexpr std::int32_t vm_weigh_sum = 36;

/// The C argument structs of add and weigh (the layouts the contract file computes).
struct vm_add_args {
    std::int32_t a, b;
};
struct vm_tally {
    std::int32_t base, scale;
};
struct vm_i32_array {  // Array<i32>: ArrayOf_i32 {const i32* items; size_t len}
    const std::int32_t* items;
    std::size_t len;
};
struct vm_weigh_args {
    vm_tally t;
    vm_i32_array xs;
};
static_assert(offsetof(vm_weigh_args, xs) == 8 && sizeof(vm_weigh_args) == 24,
              "vm_weigh_args must match the C layout of weigh's parameters (LP64)");

/// bench.Vm in each engine's language. The raw baselines run the same text, plus a line that
/// makes their own instance.
inline const std::string vm_lua_script =
    "local Vm = {}\n"
    "function Vm:add(a, b) return a + b end\n"
    "function Vm:echo(s) return s end\n"
    "function Vm:weigh(t, xs)\n"
    "  local s = 0\n"
    "  for i = 1, #xs do s = s + xs[i] end\n"
    "  return t.base + t.scale * s\n"
    "end\n"
    "contracts = { [\"bench.Vm\"] = Vm }\n";

inline const std::string vm_python_script =
    "class Vm:\n"
    "    def add(self, a, b):\n"
    "        return a + b\n"
    "    def echo(self, s):\n"
    "        return s\n"
    "    def weigh(self, t, xs):\n"
    "        return t[\"base\"] + t[\"scale\"] * sum(xs)\n"
    "contracts = {\"bench.Vm\": Vm}\n";

inline const std::string vm_js_script =
    "function Vm() {}\n"
    "Vm.prototype.add = function (a, b) { return a + b; };\n"
    "Vm.prototype.echo = function (s) { return s; };\n"
    "Vm.prototype.weigh = function (t, xs) {\n"
    "  var s = 0;\n"
    "  for (var i = 0; i < xs.length; i++) s += xs[i];\n"
    "  return t.base + t.scale * s;\n"
    "};\n"
    "contracts = { \"bench.Vm\": Vm };\n";

/// The reload rows' scripts (vm_bench.cpp): bench.Vm as above, plus the state hand-over the
/// loaders look for (`state_schema`, `save_state`, `restore_state`; the state a count of the
/// reloads so far, carried from version to version), plus a `script_version` line. The reload
/// rows alternate two versions, so that every reload, by the runtime or by hand, runs a text
/// that differs from the running one. `add` adds the count in, so that `add(0, 0)` through the
/// runtime shows that the state was handed over on every reload.
inline std::string vm_lua_reload_script(int version) {
    return vm_lua_script +
           "reloads = 0\n"
           "state_schema = 1\n"
           "function save_state() return tostring(reloads) end\n"
           "function restore_state(schema, data) reloads = tonumber(data) + 1 end\n"
           "function Vm:add(a, b) return a + b + reloads end\n"
           "script_version = " +
           std::to_string(version) + "\n";
}

inline std::string vm_python_reload_script(int version) {
    return vm_python_script +
           "reloads = 0\n"
           "state_schema = 1\n"
           "def save_state():\n"
           "    return str(reloads)\n"
           "def restore_state(schema, data):\n"
           "    global reloads\n"
           "    reloads = int(data) + 1\n"
           "Vm.add = lambda self, a, b: a + b + reloads\n"
           "script_version = " +
           std::to_string(version) + "\n";
}

inline std::string vm_js_reload_script(int version) {
    return vm_js_script +
           "var reloads = 0;\n"
           "var state_schema = 1;\n"
           "function save_state() { return String(reloads); }\n"
           "function restore_state(schema, data) { reloads = Number(data) + 1; }\n"
           "Vm.prototype.add = function (a, b) { return a + b + reloads; };\n"
           "var script_version = " +
           std::to_string(version) + ";\n";
}

/// A script bundle `<root>/<name>` implementing bench.Vm in `script`.
inline fs::path make_script_bundle(const fs::path& root, const std::string& name,
                                   const std::string& loader, const std::string& file,
                                   const std::string& script) {
    const fs::path dir = root / name;
    fs::create_directories(dir);
    write_text(dir / "bench.api.toml", std::string(vm_api));
    write_text(dir / file, script);
    write_text(dir / "manifest.toml",
               "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) + "\"\nname = \"" + name +
                   "\"\nversion = \"1.0.0\"\nloader = \"" + loader + "\"\nfile = \"" + file +
                   "\"\napi = \"bench.api.toml\"\nprovides = [\"bench.Vm@1\"]\n"
                   "function_count = { \"bench.Vm@1\" = 3 }\n");
    return dir;
}

}  // namespace bench
