// SPDX-License-Identifier: MIT
/// @file scaffold.hpp
/// `polyplug new`: the files of a new bundle folder in one of the six languages (a contract file,
/// bundle.toml, a plugin stub that builds and validates as written, the language's build, a C++
/// host and a README), and writing them whole or not at all.
#pragma once

#include "names.hpp"

#include <polyplug/contract_file.hpp>
#include <polyplug/ids.hpp>

#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace polyplug::tools {

/// The languages `polyplug new` writes a plugin stub in.
enum class scaffold_language { c, cpp, rust, lua, python, js };

/// Their spellings on the command line, in the order the help lists them.
inline constexpr std::array<std::string_view, 6> scaffold_language_names = {"c",   "cpp",    "rust",
                                                                            "lua", "python", "js"};

[[nodiscard]] inline std::optional<scaffold_language> parse_scaffold_language(
    std::string_view text) noexcept {
    for (std::size_t i = 0; i < scaffold_language_names.size(); ++i) {
        if (scaffold_language_names[i] == text) return static_cast<scaffold_language>(i);
    }
    return std::nullopt;
}

/// "c, cpp, rust, lua, python, js": for messages.
[[nodiscard]] inline std::string scaffold_language_list() {
    std::string out;
    for (const std::string_view name : scaffold_language_names) {
        out += (out.empty() ? "" : ", ") + std::string(name);
    }
    return out;
}

/// The bundle name as an identifier: '-' becomes '_' ("hello-world" gives "hello_world"). It
/// names the library, the script, the generated headers and the contract's first part.
[[nodiscard]] inline std::string scaffold_identifier(std::string_view name) {
    std::string out(name);
    for (char& c : out) {
        if (c == '-') c = '_';
    }
    return out;
}

/// The contract a new bundle provides: "hello_world.greeter" for "hello-world".
[[nodiscard]] inline std::string scaffold_contract_name(std::string_view name) {
    return scaffold_identifier(name) + ".greeter";
}

/// Why `name` cannot name a new bundle, or "" when it can. The runtime asks only for a non-empty
/// name, but the scaffold also makes a folder, file names, a contract name and identifiers in six
/// languages from it: so a letter first, then letters, digits, '_' and '-' (at most 64), and its
/// identifier form must not be a reserved word of any language the contract file can target
/// (the contract-file parser's own list).
[[nodiscard]] inline std::string scaffold_name_problem(std::string_view name) {
    if (name.empty()) return "the bundle name is empty";
    if (name.size() > 64) return "the bundle name is longer than 64 characters";
    const auto is_letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (!is_letter(name[0])) return "a bundle name starts with a letter";
    for (const char c : name) {
        if (!is_letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-') {
            return "a bundle name has only letters, digits, '_' and '-'";
        }
    }
    const std::string identifier = scaffold_identifier(name);
    if (polyplug::is_reserved_word(identifier)) {
        return "'" + identifier + "' is a reserved word in a language the scaffold writes";
    }
    return {};
}

/// One file of the scaffold: its path relative to the bundle folder and its text.
struct scaffold_file {
    std::string path;
    std::string text;
    bool executable = false;
};

namespace detail_scaffold {

/// Replaces every "{{key}}" of `text` by its value. Braces, not '@', because meson.build
/// templates are full of Meson's own @INPUT@ and @OUTDIR@.
[[nodiscard]] inline std::string fill(std::string_view text,
                                      const std::map<std::string, std::string>& values) {
    std::string out;
    std::size_t at = 0;
    while (true) {
        const std::size_t open = text.find("{{", at);
        if (open == std::string_view::npos) break;
        const std::size_t close = text.find("}}", open);
        if (close == std::string_view::npos) break;
        const auto found = values.find(std::string(text.substr(open + 2, close - open - 2)));
        if (found == values.end()) throw std::logic_error("scaffold: no value for a placeholder");
        out.append(text.substr(at, open - at));
        out += found->second;
        at = close + 2;
    }
    out.append(text.substr(at));
    return out;
}

constexpr std::string_view contract_file =
    R"tpl(# The contract of the {{name}} bundle: the functions its plugin provides and hosts call. Every
# language implements it from this one file; `polyplug validate --api {{name}}.api.toml` checks it
# and `polyplug generate` makes the C and C++ headers. Rename and extend it as you need.

[[guest_contract]]
name = "{{contract}}"
version = "1.0.0"
docs = "What the {{name}} bundle provides."

[[guest_contract.functions]]
name = "greet"
docs = "a static UTF-8 greeting naming the plugin"
return = "StringView"

[[guest_contract.functions]]
name = "add"
docs = "a + b, wrapping on overflow"
params = [{ name = "a", type = "i32" }, { name = "b", type = "i32" }]
return = "i32"
)tpl";

constexpr std::string_view bundle_file =
    R"tpl(# Build input of the {{name}} bundle: `polyplug manifest --bundle bundle.toml [--out DIR]` writes
# DIR/manifest.toml (the bundle id, provides and function counts computed from the contract file).
[bundle]
name = "{{name}}"
version = "0.1.0"
api = "{{name}}.api.toml"
loader = "{{loader}}"
file = "{{artifact}}"

[[plugin]]
name = "{{name}}"
implements = ["{{contract}}@1"]
)tpl";

constexpr std::string_view c_plugin =
    R"tpl(/* The {{name}} bundle in C11: the {{contract}}@1 contract of {{name}}.api.toml and the two
 * entry points the runtime looks for. {{ident}}.h is generated from the contract file by
 * `polyplug generate` (ids, the argument structs and their layout checks). */
#include "{{ident}}.h"

#include <polyplug/abi.h>

#include <string.h>

static const char k_greeting[] = "Hello from {{name}} (C)";

static void set_error(AbiError* out_err, uint32_t code, const char* static_message) {
    out_err->code = code;
    out_err->message = polyplug_sv(static_message);
}

/* The plugin keeps no state, so an instance needs no memory: a NULL `data` is a legal one. */
static void on_create(VmLoaderData loader_data, const HostApi* host, const void* args,
                      GuestContractInstance* out_instance) {
    (void)loader_data, (void)host, (void)args;
    out_instance->data = NULL;
    out_instance->contract_id = {{upper}}_CONTRACT_ID;
}

static void on_destroy(VmLoaderData loader_data, const HostApi* host,
                       GuestContractInstance instance) {
    (void)loader_data, (void)host, (void)instance;
}

/* A view of static text: results that are views must outlive the call. */
static void on_greet(GuestContractInstance instance, const void* args, void* out,
                     AbiError* out_err) {
    (void)instance, (void)args;
    if (out == NULL) {
        set_error(out_err, AbiErrorCode_InvalidPointer, "{{name}} greet: out must be set");
        return;
    }
    StringView* view = (StringView*)out;
    view->ptr = (const uint8_t*)k_greeting;
    view->len = sizeof k_greeting - 1;
    set_error(out_err, AbiErrorCode_Ok, NULL);
}

/* Signed overflow is undefined in C, so the sum is taken unsigned and reinterpreted. */
static void on_add(GuestContractInstance instance, const void* args, void* out,
                   AbiError* out_err) {
    (void)instance;
    if (args == NULL || out == NULL) {
        set_error(out_err, AbiErrorCode_InvalidPointer, "{{name}} add: args and out must be set");
        return;
    }
    const {{pascal}}AddArgs* in = (const {{pascal}}AddArgs*)args;
    const uint32_t sum = (uint32_t)in->a + (uint32_t)in->b;
    int32_t result;
    memcpy(&result, &sum, sizeof result);
    *(int32_t*)out = result;
    set_error(out_err, AbiErrorCode_Ok, NULL);
}

/* Indexed by function id, in the contract file's order. */
static const GuestContractFn k_functions[{{upper}}_FUNCTION_COUNT] = {
    [{{upper}}_FN_GREET] = on_greet,
    [{{upper}}_FN_ADD] = on_add,
};

static const GuestContractInterface k_interface = {
    .contract_id = {{upper}}_CONTRACT_ID,
    .contract_version = { {{upper}}_VERSION_MAJOR, {{upper}}_VERSION_MINOR,
                          {{upper}}_VERSION_PATCH },
    .dispatch_type = DispatchType_Native,
    .create_instance = on_create,
    .destroy_instance = on_destroy,
    .dispatch = {.native = {.function_count = {{upper}}_FUNCTION_COUNT,
                            .functions = (const void* const*)k_functions}},
};

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    (void)ctx;
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    const PluginDescriptor descriptor = {
        .name = polyplug_sv("{{name}}"),
        .contract_name = polyplug_sv({{upper}}_NAME),
        .version = {0, 1, 0},
    };
    host->register_guest_contract(host, &descriptor, &k_interface, &err);
    return err;
}
)tpl";

constexpr std::string_view cpp_plugin =
    R"tpl(// The {{name}} bundle in C++20: the {{contract}}@1 contract of {{name}}.api.toml as a plain
// class. {{ident}}.hpp is generated from the contract file by `polyplug generate`; the
// trampolines, the function table and both entry points come from polyplug/guest.hpp.
#include "{{ident}}.hpp"

#include <polyplug/guest.hpp>

#include <cstdint>
#include <string_view>

namespace {

class {{ident}}_plugin {
public:
    // A view of static text: results that are views must outlive the call.
    std::string_view greet() const noexcept { return "Hello from {{name}} (C++)"; }

    // Wrapping, as the contract says: unsigned arithmetic wraps, and the conversion back is
    // modular since C++20.
    std::int32_t add(std::int32_t a, std::int32_t b) const noexcept {
        return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) +
                                         static_cast<std::uint32_t>(b));
    }
};

}  // namespace

// The member functions in the contract file's order.
POLYPLUG_EXPORT_BUNDLE("{{name}}",
                       polyplug::implementation<contracts::greeter, {{ident}}_plugin,
                                                &{{ident}}_plugin::greet, &{{ident}}_plugin::add>);
)tpl";

constexpr std::string_view native_meson =
    R"tpl(# Builds the {{name}} bundle: {{artifact}} beside manifest.toml in the build directory, so the
# build directory is the bundle (`polyplug validate build`), and the host that calls it.
# polyplug comes installed (pkg-config and the `polyplug` tool on PATH) or as a subproject
# (subprojects/polyplug plus polyplug.wrap from its packaging/ folder).
project('{{name}}', ['c', 'cpp'], version: '0.1.0',
  default_options: ['c_std=c11', 'cpp_std=c++20'])

# Asked first: in subproject mode this configures polyplug, which provides the tool for
# find_program (meson.override_find_program).
polyplug_dep = dependency('polyplug')
polyplug = find_program('polyplug')

contract = files('{{name}}.api.toml')
{{ident}}_h = custom_target('{{ident}}.h',
  input: contract,
  output: '{{ident}}.h',
  command: [polyplug, 'generate', '--api', '@INPUT@', '--lang', 'c', '--header', '{{ident}}',
            '--out', '@OUTDIR@'])
{{ident}}_hpp = custom_target('{{ident}}.hpp',
  input: contract,
  output: '{{ident}}.hpp',
  command: [polyplug, 'generate', '--api', '@INPUT@', '--lang', 'cpp', '--header', '{{ident}}',
            '--out', '@OUTDIR@'])

# The plugin needs polyplug's headers only (abi.h{{guest_header}}): nothing to link.
shared_module('{{ident}}', '{{plugin_source}}', {{plugin_header}},
  name_prefix: 'lib',
  dependencies: polyplug_dep.partial_dependency(compile_args: true, includes: true),
  gnu_symbol_visibility: 'hidden')
custom_target('manifest.toml',
  input: ['bundle.toml', contract],
  output: 'manifest.toml',
  command: [polyplug, 'manifest', '--bundle', '@INPUT0@', '--out', '@OUTDIR@'],
  build_by_default: true)

executable('host', 'host.cpp', {{ident}}_hpp, dependencies: polyplug_dep)
)tpl";

constexpr std::string_view rust_cargo =
    R"tpl(# The {{name}} bundle in Rust: a cdylib with no dependencies (builds offline).
# ./build-bundle.sh builds it and assembles the bundle folder bundle/ with its manifest.
[package]
name = "{{name}}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
name = "{{ident}}"
path = "src/lib.rs"
crate-type = ["cdylib"]

[dependencies]

# Nothing may unwind into the C caller.
[profile.dev]
panic = "abort"

[profile.release]
panic = "abort"

# Its own workspace, even when created inside another Cargo project.
[workspace]
)tpl";

constexpr std::string_view rust_build_script = R"tpl(#!/bin/sh
# Builds the {{name}} bundle into bundle/: the library Cargo builds beside the manifest that
# `polyplug manifest` writes from bundle.toml. POLYPLUG names the tool (default: polyplug on PATH).
set -eu
cd "$(dirname "$0")"
cargo build --release --offline
mkdir -p bundle
cp target/release/{{artifact}} bundle/
"${POLYPLUG:-polyplug}" manifest --bundle bundle.toml --out bundle
)tpl";

constexpr std::string_view rust_plugin =
    R"tpl(// The {{name}} bundle in Rust: the {{contract}}@1 contract of {{name}}.api.toml with no
// crates, through #[repr(C)] mirrors of polyplug/abi.h and two #[no_mangle] entry points.
// Nothing here can panic (wrapping arithmetic, checked pointers), so nothing unwinds into C.

use core::ffi::c_void;
use core::mem::size_of;

// ---- the part of polyplug/abi.h this plugin uses (sizes checked below) ------------------------

#[repr(C)]
#[derive(Clone, Copy)]
pub struct StringView {
    ptr: *const u8,
    len: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

#[repr(C)]
pub struct AbiError {
    code: u32,
    message: StringView,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct GuestContractInstance {
    data: *mut c_void,
    contract_id: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmLoaderData {
    data: *mut c_void,
}

type GuestContractFn =
    unsafe extern "C" fn(GuestContractInstance, *const c_void, *mut c_void, *mut AbiError);
type CreateInstanceFn =
    unsafe extern "C" fn(VmLoaderData, *const HostApi, *const c_void, *mut GuestContractInstance);
type DestroyInstanceFn = unsafe extern "C" fn(VmLoaderData, *const HostApi, GuestContractInstance);

/// The native member of the C DispatchMechanisms union (both members are 16 bytes, align 8).
#[repr(C)]
pub struct NativeDispatch {
    function_count: u32,
    functions: *const GuestContractFn,
}

#[repr(C)]
pub struct GuestContractInterface {
    contract_id: u64,
    contract_version: Version,
    dispatch_type: u32,
    create_instance: CreateInstanceFn,
    destroy_instance: DestroyInstanceFn,
    dispatch: NativeDispatch,
}

#[repr(C)]
pub struct PluginDescriptor {
    name: StringView,
    contract_name: StringView,
    version: Version,
}

#[repr(C)]
pub struct BundleInitContext {
    bundle_id: u64,
    bundle_path: StringView,
}

type RegisterGuestContractFn = unsafe extern "C" fn(
    *const HostApi,
    *const PluginDescriptor,
    *const GuestContractInterface,
    *mut AbiError,
);

/// The first two fields of HostApi: all this plugin calls. The runtime owns the whole table and
/// only ever hands out a pointer, so mirroring its start is enough.
#[repr(C)]
pub struct HostApi {
    runtime: *mut c_void,
    register_guest_contract: Option<RegisterGuestContractFn>,
}

const _: () = {
    assert!(size_of::<StringView>() == 16);
    assert!(size_of::<Version>() == 12);
    assert!(size_of::<AbiError>() == 24);
    assert!(size_of::<GuestContractInstance>() == 16);
    assert!(size_of::<NativeDispatch>() == 16);
    assert!(size_of::<GuestContractInterface>() == 56);
    assert!(size_of::<PluginDescriptor>() == 48);
    assert!(size_of::<BundleInitContext>() == 24);
};

const ABI_VERSION: u32 = 1; // POLYPLUG_ABI_VERSION
const CODE_OK: u32 = 0;
const CODE_INVALID_POINTER: u32 = 8;
const DISPATCH_NATIVE: u32 = 0;

// ---- the contract -----------------------------------------------------------------------------

/// fnv1a64, the hash behind every polyplug id, evaluated at compile time.
const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const CONTRACT_NAME: &str = "{{contract}}";
/// guest_contract_id("{{contract}}", 1); `polyplug id {{contract}}@1` prints it.
const CONTRACT_ID: u64 = fnv1a64(b"guest_contract:{{contract}}@1");
const _: () = assert!(CONTRACT_ID == {{contract_id}});

const PLUGIN_NAME: &str = "{{name}}";
const GREETING: &str = "Hello from {{name}} (Rust)";

/// The argument struct of add(a: i32, b: i32), laid out as the C header's.
#[repr(C)]
struct AddArgs {
    a: i32,
    b: i32,
}

const fn view(text: &'static str) -> StringView {
    StringView { ptr: text.as_ptr(), len: text.len() }
}

const NO_ERROR: AbiError =
    AbiError { code: CODE_OK, message: StringView { ptr: core::ptr::null(), len: 0 } };

unsafe fn report(out_err: *mut AbiError, error: AbiError) {
    if let Some(err) = out_err.as_mut() {
        *err = error;
    }
}

/// The plugin keeps no state, so an instance needs no memory: a null `data` is a legal one.
unsafe extern "C" fn on_create(
    _loader_data: VmLoaderData,
    _host: *const HostApi,
    _args: *const c_void,
    out_instance: *mut GuestContractInstance,
) {
    if let Some(out) = out_instance.as_mut() {
        *out = GuestContractInstance { data: core::ptr::null_mut(), contract_id: CONTRACT_ID };
    }
}

unsafe extern "C" fn on_destroy(_: VmLoaderData, _: *const HostApi, _: GuestContractInstance) {}

/// A view of static text: results that are views must outlive the call.
unsafe extern "C" fn on_greet(
    _instance: GuestContractInstance,
    _args: *const c_void,
    out: *mut c_void,
    out_err: *mut AbiError,
) {
    match (out as *mut StringView).as_mut() {
        Some(out) => {
            *out = view(GREETING);
            report(out_err, NO_ERROR);
        }
        None => report(
            out_err,
            AbiError { code: CODE_INVALID_POINTER, message: view("greet: out must be set") },
        ),
    }
}

unsafe extern "C" fn on_add(
    _instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
    out_err: *mut AbiError,
) {
    match ((args as *const AddArgs).as_ref(), (out as *mut i32).as_mut()) {
        (Some(args), Some(out)) => {
            *out = args.a.wrapping_add(args.b);
            report(out_err, NO_ERROR);
        }
        _ => report(
            out_err,
            AbiError { code: CODE_INVALID_POINTER, message: view("add: args and out must be set") },
        ),
    }
}

/// Raw pointers are not Sync; these statics are immutable, so sharing them is sound.
struct Shared<T>(T);
unsafe impl<T> Sync for Shared<T> {}

/// Indexed by function id, in the contract file's order: 0 = greet, 1 = add.
static FUNCTIONS: [GuestContractFn; 2] = [on_greet, on_add];

static INTERFACE: Shared<GuestContractInterface> = Shared(GuestContractInterface {
    contract_id: CONTRACT_ID,
    contract_version: Version { major: 1, minor: 0, patch: 0 },
    dispatch_type: DISPATCH_NATIVE,
    create_instance: on_create,
    destroy_instance: on_destroy,
    dispatch: NativeDispatch { function_count: 2, functions: FUNCTIONS.as_ptr() },
});

// ---- entry points -----------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn polyplug_abi_version() -> u32 {
    ABI_VERSION
}

/// # Safety
/// Called by the runtime with a valid HostApi; `_ctx` is valid during the call only.
#[no_mangle]
pub unsafe extern "C" fn polyplug_init(
    host: *const HostApi,
    _ctx: *const BundleInitContext,
) -> AbiError {
    let register = match host.as_ref().and_then(|host| host.register_guest_contract) {
        Some(register) => register,
        None => {
            return AbiError {
                code: CODE_INVALID_POINTER,
                message: view("{{name}}: no HostApi.register_guest_contract"),
            }
        }
    };
    let descriptor = PluginDescriptor {
        name: view(PLUGIN_NAME),
        contract_name: view(CONTRACT_NAME),
        version: Version { major: 0, minor: 1, patch: 0 },
    };
    let mut err = NO_ERROR;
    register(host, &descriptor, &INTERFACE.0, &mut err);
    err
}
)tpl";

constexpr std::string_view lua_plugin =
    R"tpl(-- The {{name}} bundle in Lua: the {{contract}}@1 contract of {{name}}.api.toml. No generated
-- code: the Lua loader reads the contract file and converts arguments and results itself.
local Greeter = {}

function Greeter:greet()
    return "Hello from {{name}} (Lua)"
end

-- Lua integers are 64-bit; the contract's i32 add wraps at 32 bits.
function Greeter:add(a, b)
    local sum = (a + b) % 4294967296
    if sum >= 2147483648 then sum = sum - 4294967296 end
    return sum
end

contracts = { ["{{contract}}"] = Greeter }
)tpl";

constexpr std::string_view python_plugin =
    R"tpl(# The {{name}} bundle in Python: the {{contract}}@1 contract of {{name}}.api.toml. No generated
# code: the Python loader reads the contract file and converts arguments and results itself.


class Greeter:
    def greet(self):
        return "Hello from {{name}} (Python)"

    def add(self, a, b):
        # Python integers do not overflow; the contract's i32 add wraps at 32 bits.
        return (a + b + 2**31) % 2**32 - 2**31


contracts = {"{{contract}}": Greeter}
)tpl";

constexpr std::string_view js_plugin =
    R"tpl(// The {{name}} bundle in JavaScript (ES5.1, Duktape): the {{contract}}@1 contract of
// {{name}}.api.toml. No generated code: the JS loader reads the contract file and converts
// arguments and results itself.
function Greeter() {}

Greeter.prototype.greet = function () {
    return "Hello from {{name}} (JavaScript)";
};

// `| 0` wraps to 32 bits, as the contract's i32 add says.
Greeter.prototype.add = function (a, b) {
    return (a + b) | 0;
};

contracts = { "{{contract}}": Greeter };
)tpl";

constexpr std::string_view host_program =
    R"tpl(// A host for the {{name}} bundle: loads the bundle folder given on the command line, calls both
// functions of {{contract}}@1 through the typed API ({{ident}}.hpp, generated by `polyplug
// generate --lang cpp`) and prints the answers.
#include "{{ident}}.hpp"

#include <polyplug/client.hpp>
{{loader_include}}#include <polyplug/runtime.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string_view>

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s BUNDLE_DIR\n", argv[0]);
        return 2;
    }
    polyplug::runtime rt;
{{loader_registration}}    rt.load_bundle(argv[1]);

    // The first provider of {{contract}}@1; the instance lives as long as the client.
    polyplug::client<contracts::greeter> greeter(rt);
    const std::string_view greeting = greeter.call(contracts::greeter::greet);
    std::printf("greet() = %.*s\n", static_cast<int>(greeting.size()), greeting.data());
    const std::int32_t sum = greeter.call(contracts::greeter::add, 2, 40);
    std::printf("add(2, 40) = %d\n", static_cast<int>(sum));
    return sum == 42 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "host: %s\n", e.what());
    return 1;
}
)tpl";

// The runtime knows native bundles only; a script bundle's loader comes from its loader module
// (libpolyplug-loader-<lang>.so), which the host links and registers as a C host would.
constexpr std::string_view loader_registration =
    R"tpl(    // Script bundles load through the {{loader}} loader module, which the runtime then owns.
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    rt.host_api()->register_loader(rt.host_api(), polyplug_loader_{{loader}}_create(), &err);
    if (err.code != AbiErrorCode_Ok) {
        std::fprintf(stderr, "host: the {{loader}} loader was refused: %.*s\n",
                     static_cast<int>(err.message.len),
                     reinterpret_cast<const char*>(err.message.ptr));
        return 1;
    }
)tpl";

constexpr std::string_view native_readme = R"tpl(# {{name}}

A polyplug bundle in {{language}}, created by `polyplug new {{name}} --lang {{lang}}`. It provides
the contract `{{contract}}@1` declared in [`{{name}}.api.toml`]({{name}}.api.toml): `greet()` and
`add(a, b)`.

| file | what it is |
|---|---|
| `{{name}}.api.toml` | the contract: the functions the plugin provides |
| `bundle.toml` | input of `polyplug manifest`, which writes the bundle's `manifest.toml` |
| `{{plugin_source}}` | the plugin |
| `meson.build` | builds the plugin, its manifest and the host into `build/` |
| `host.cpp` | a host that loads the bundle and calls it |

## Build, validate, run

polyplug must be installed (`pkg-config polyplug` and `polyplug` on `PATH`), or be a subproject:
copy or clone polyplug into `subprojects/polyplug/` and put its `packaging/polyplug.wrap` in
`subprojects/`.

```sh
meson setup build && meson compile -C build    # {{artifact}}, manifest.toml, host
polyplug validate build                        # the build directory is the bundle
polyplug inspect build                         # loads it and lists what it registers
./build/host build                             # greet() = Hello from {{name}} ({{language}})
                                               # add(2, 40) = 42
```

Change the contract in `{{name}}.api.toml`, then the plugin to match: the build regenerates the
header (`{{ident}}.h`{{cpp_header_note}}) and the manifest from it.
)tpl";

constexpr std::string_view rust_readme = R"tpl(# {{name}}

A polyplug bundle in Rust, created by `polyplug new {{name}} --lang rust`. It provides the
contract `{{contract}}@1` declared in [`{{name}}.api.toml`]({{name}}.api.toml): `greet()` and
`add(a, b)`.

| file | what it is |
|---|---|
| `{{name}}.api.toml` | the contract: the functions the plugin provides |
| `bundle.toml` | input of `polyplug manifest`, which writes the bundle's `manifest.toml` |
| `Cargo.toml`, `src/lib.rs` | the plugin: a cdylib without dependencies |
| `build-bundle.sh` | `cargo build --release --offline`, then the bundle folder `bundle/` |
| `host.cpp` | a host that loads the bundle and calls it |

## Build, validate, run

```sh
./build-bundle.sh                  # bundle/{{artifact}} and bundle/manifest.toml
polyplug validate bundle           # checks it without running it
polyplug inspect bundle            # loads it and lists what it registers
polyplug generate --api {{name}}.api.toml --lang cpp --header {{ident}} --out .
c++ -std=c++20 $(pkg-config --cflags polyplug) -I. host.cpp -o host \
    $(pkg-config --libs polyplug)
./host bundle                      # greet() = Hello from {{name}} (Rust)
                                   # add(2, 40) = 42
```

`build-bundle.sh` runs the tool as `$POLYPLUG` when that is set. The contract's id is computed
in `src/lib.rs` and checked at compile time against the value `polyplug id {{contract}}@1`
prints: change both together when you rename the contract.
)tpl";

constexpr std::string_view script_readme = R"tpl(# {{name}}

A polyplug bundle in {{language}}, created by `polyplug new {{name}} --lang {{lang}}`. It provides
the contract `{{contract}}@1` declared in [`{{name}}.api.toml`]({{name}}.api.toml): `greet()` and
`add(a, b)`. The folder itself is the bundle: nothing is compiled, the {{lang}} loader reads the
contract file and runs `{{plugin_source}}`.

| file | what it is |
|---|---|
| `{{name}}.api.toml` | the contract: the functions the script provides |
| `bundle.toml` | input of `polyplug manifest`, which writes the bundle's `manifest.toml` |
| `{{plugin_source}}` | the plugin |
| `host.cpp` | a host that loads the bundle and calls it |

## Build, validate, run

The one build step writes `manifest.toml` into this folder:

```sh
polyplug manifest --bundle bundle.toml
polyplug validate .                # manifest and contract file, without starting {{language}}
polyplug inspect .                 # loads it through libpolyplug-loader-{{loader}}.so
```

The host links that loader module (LOADER_DIR: where it is installed, or
`build/shim/loaders/{{loader}}` in a polyplug build tree):

```sh
polyplug generate --api {{name}}.api.toml --lang cpp --header {{ident}} --out .
c++ -std=c++20 $(pkg-config --cflags polyplug) -I. host.cpp -o host \
    -L"$LOADER_DIR" -Wl,-rpath,"$LOADER_DIR" -lpolyplug-loader-{{loader}} $(pkg-config --libs polyplug)
./host .                           # greet() = Hello from {{name}} ({{language}})
                                   # add(2, 40) = 42
```
)tpl";

}  // namespace detail_scaffold

/// The files of a new bundle named `name` (which scaffold_name_problem accepts) in `language`.
[[nodiscard]] inline std::vector<scaffold_file> scaffold_files(std::string_view name,
                                                               scaffold_language language) {
    namespace t = detail_scaffold;
    const std::string ident = scaffold_identifier(name);
    const std::string contract = scaffold_contract_name(name);
    const bool native = language == scaffold_language::c || language == scaffold_language::cpp ||
                        language == scaffold_language::rust;
    const std::string lang(scaffold_language_names[static_cast<std::size_t>(language)]);
    std::map<std::string, std::string> v{
        {"name", std::string(name)},
        {"ident", ident},
        {"contract", contract},
        {"contract_id", format_id(guest_contract_id(contract, 1))},
        {"upper", upper_snake(contract)},
        {"pascal", pascal_case(contract)},
        {"lang", lang},
        {"loader", native ? "native" : lang},
        {"artifact", "lib" + ident + ".so"},
    };
    switch (language) {
        case scaffold_language::c:
            v["language"] = "C";
            v["plugin_source"] = ident + ".c";
            break;
        case scaffold_language::cpp:
            v["language"] = "C++";
            v["plugin_source"] = ident + ".cpp";
            break;
        case scaffold_language::rust:
            v["language"] = "Rust";
            break;
        case scaffold_language::lua:
            v["language"] = "Lua";
            v["plugin_source"] = ident + ".lua";
            break;
        case scaffold_language::python:
            v["language"] = "Python";
            v["plugin_source"] = ident + ".py";
            break;
        case scaffold_language::js:
            v["language"] = "JavaScript";
            v["plugin_source"] = ident + ".js";
            break;
    }
    if (!native) v["artifact"] = v["plugin_source"];
    const bool is_cpp = language == scaffold_language::cpp;
    v["guest_header"] = is_cpp ? ", guest.hpp" : "";
    v["plugin_header"] = ident + (is_cpp ? "_hpp" : "_h");
    v["cpp_header_note"] = is_cpp ? "" : ", and `" + ident + ".hpp` for the host";
    if (native) {
        v["loader_include"] = "";
        v["loader_registration"] = "";
    } else {
        v["loader_include"] = t::fill("#include <polyplug/loaders/{{loader}}_module.h>\n", v);
        v["loader_registration"] = t::fill(t::loader_registration, v) + "\n";
    }

    std::vector<scaffold_file> files;
    files.push_back({std::string(name) + ".api.toml", t::fill(t::contract_file, v)});
    files.push_back({"bundle.toml", t::fill(t::bundle_file, v)});
    files.push_back({"host.cpp", t::fill(t::host_program, v)});
    switch (language) {
        case scaffold_language::c:
        case scaffold_language::cpp:
            files.push_back({v["plugin_source"], t::fill(is_cpp ? t::cpp_plugin : t::c_plugin, v)});
            files.push_back({"meson.build", t::fill(t::native_meson, v)});
            files.push_back({"README.md", t::fill(t::native_readme, v)});
            break;
        case scaffold_language::rust:
            files.push_back({"Cargo.toml", t::fill(t::rust_cargo, v)});
            files.push_back({"src/lib.rs", t::fill(t::rust_plugin, v)});
            files.push_back({"build-bundle.sh", t::fill(t::rust_build_script, v), true});
            files.push_back({"README.md", t::fill(t::rust_readme, v)});
            break;
        case scaffold_language::lua:
        case scaffold_language::python:
        case scaffold_language::js: {
            const std::string_view script = language == scaffold_language::lua ? t::lua_plugin
                                            : language == scaffold_language::python
                                                ? t::python_plugin
                                                : t::js_plugin;
            files.push_back({v["plugin_source"], t::fill(script, v)});
            files.push_back({"README.md", t::fill(t::script_readme, v)});
            break;
        }
    }
    return files;
}

/// Writes `files` into the new folder `dir`, whole or not at all: everything goes into a hidden
/// sibling folder first, which is renamed to `dir` once complete, so an error (a full disk, a
/// permission) leaves no half-written bundle behind. Throws std::filesystem::filesystem_error
/// or std::runtime_error naming what failed; refuses a `dir` that exists.
inline void write_scaffold(const std::filesystem::path& dir,
                           const std::vector<scaffold_file>& files) {
    namespace fs = std::filesystem;
    const auto refuse_existing = [&] {
        if (std::error_code ec; fs::exists(fs::symlink_status(dir, ec))) {
            throw std::runtime_error("'" + dir.string() +
                                     "' already exists; choose another --out DIR");
        }
    };
    refuse_existing();
    fs::path target = fs::absolute(dir).lexically_normal();
    if (target.filename().empty()) target = target.parent_path();  // "out/" names "out"
    const fs::path parent = target.parent_path();
    fs::create_directories(parent);
    const fs::path staging =
        parent / ("." + target.filename().string() + ".new-" + std::to_string(::getpid()));
    fs::remove_all(staging);
    try {
        for (const scaffold_file& file : files) {
            const fs::path path = staging / file.path;
            fs::create_directories(path.parent_path());
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out.write(file.text.data(), static_cast<std::streamsize>(file.text.size()));
            out.close();
            if (!out) throw std::runtime_error("cannot write '" + path.string() + "'");
            if (file.executable) {
                fs::permissions(
                    path, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                    fs::perm_options::add);
            }
        }
        // Checked again at the last moment: rename() would replace an empty directory.
        refuse_existing();
        fs::rename(staging, target);
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(staging, ignored);
        throw;
    }
}

}  // namespace polyplug::tools
