// SPDX-License-Identifier: MIT
/// @file loader_modules.hpp
/// Finding a loader module (libpolyplug-loader-<lang>.so, shim/loaders/) for `polyplug inspect`
/// and registering its loader into a runtime through HostApi.register_loader, as a C host does.
/// The tool links no VM itself: a Lua, Python or JS bundle is inspected through the module the
/// build produced. POSIX only (dlopen), like the rest of the tool's ELF-based checks.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/error.hpp>

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace polyplug::tools {

/// The loaders the runtime has without a module.
[[nodiscard]] inline bool is_builtin_loader(std::string_view loader) noexcept {
    return loader == "native";
}

/// The loader modules polyplug builds (shim/loaders/<lang>/).
[[nodiscard]] inline bool is_shipped_vm_loader(std::string_view loader) noexcept {
    return loader == "lua" || loader == "python" || loader == "js" || loader == "dotnet";
}

/// A loader name that may become part of a file name: letters, digits, '_' and '-', at most 64.
/// The name comes from the bundle's manifest, which is untrusted: "../x" must not make the tool
/// dlopen (and so run the constructors of) a library of the bundle's choosing.
[[nodiscard]] inline bool is_plain_loader_name(std::string_view loader) noexcept {
    if (loader.empty() || loader.size() > 64) return false;
    for (const char c : loader) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!plain) return false;
    }
    return true;
}

/// libpolyplug-loader-<lang>.so
[[nodiscard]] inline std::string loader_module_file(std::string_view loader) {
    return "libpolyplug-loader-" + std::string(loader) + ".so";
}

/// How to get the module of a loader polyplug ships, for the error when it is not found.
[[nodiscard]] inline std::string loader_module_hint(std::string_view loader) {
    const std::string file = loader_module_file(loader);
    if (loader == "lua") {
        return "Build " + file + " with -Dlua=enabled (it embeds Lua 5.4, or LuaJIT with " +
               "-Dlua_impl=luajit)";
    }
    if (loader == "python") {
        return "Build " + file +
               " with -Dpython=enabled (it embeds CPython, python3-embed >= 3.11)";
    }
    if (loader == "js") return "Build " + file + " with -Djs=enabled (it embeds Duktape 2.7)";
    if (loader == "dotnet") {
        return "Build " + file +
               " with -Ddotnet=enabled (it embeds Mono: libmono-2.0-dev and mono-devel)";
    }
    return "polyplug ships loader modules for lua, python, js and dotnet only: a '" +
           std::string(loader) + "' loader must come from " + file + " exporting polyplug_loader_" +
           std::string(loader) + "_create";
}

/// Where the module of `loader` is looked for, in order: the explicit directories alone when
/// given; otherwise $POLYPLUG_LOADER_DIR, the build tree the tool was built in, the installed
/// library directory, and last the bare file name for the dynamic loader's own search. The same
/// places, in the same order, as the Python package's Runtime.add_loader.
[[nodiscard]] inline std::vector<std::string> loader_module_candidates(
    std::string_view loader, const std::vector<std::filesystem::path>& explicit_dirs) {
    namespace fs = std::filesystem;
    const std::string file = loader_module_file(loader);
    std::vector<std::string> out;
    auto in_dir = [&](const fs::path& dir) {
        out.push_back((dir / file).string());
        out.push_back((dir / std::string(loader) / file).string());
    };
    if (!explicit_dirs.empty()) {
        for (const fs::path& dir : explicit_dirs) in_dir(dir);
        return out;
    }
    if (const char* env = std::getenv("POLYPLUG_LOADER_DIR"); env != nullptr && *env != '\0') {
        in_dir(env);
    }
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        // build/tools/polyplug beside build/shim/loaders/<lang>/ (also in subproject mode).
        out.push_back(
            (exe.parent_path().parent_path() / "shim" / "loaders" / std::string(loader) / file)
                .string());
    }
#ifdef POLYPLUG_TOOL_LIBDIR  // where `meson install` puts the modules (tools/meson.build)
    out.push_back((fs::path(POLYPLUG_TOOL_LIBDIR) / file).string());
#endif
    out.push_back(file);
    return out;
}

/// Opens the module of `loader` and registers the loader it creates into `host`; `where` is the
/// module opened. The module stays loaded for the life of the process: the runtime keeps calling
/// into its table. Errors: errc::no_loader naming every place tried and how to get the module;
/// the runtime's refusal of the table otherwise.
[[nodiscard]] inline status register_loader_module(
    const HostApi* host, std::string_view loader,
    const std::vector<std::filesystem::path>& explicit_dirs, std::string& where) {
    if (!is_plain_loader_name(loader))
        return {errc::no_loader,
                "the loader name is not a plain name (letters, digits, '_' and '-'), so no "
                "loader module file is looked for"};
    const std::string symbol = "polyplug_loader_" + std::string(loader) + "_create";
    std::string tried;
    for (const std::string& candidate : loader_module_candidates(loader, explicit_dirs)) {
        std::string problem;
        std::error_code ec;
        if (candidate.find('/') != std::string::npos && !std::filesystem::exists(candidate, ec)) {
            problem = "no such file";
        } else if (void* handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
                   handle == nullptr) {
            const char* why = ::dlerror();
            problem = why != nullptr ? why : "dlopen failed";
            // dlerror() starts with the file name, which the list below already shows.
            if (problem.starts_with(candidate + ": ")) problem.erase(0, candidate.size() + 2);
        } else if (void* create = ::dlsym(handle, symbol.c_str()); create == nullptr) {
            problem = "does not export " + symbol;
            ::dlclose(handle);
        } else {
            using create_fn = BundleLoader* (*)();
            BundleLoader* table = reinterpret_cast<create_fn>(create)();
            if (table == nullptr) return {errc::no_loader, symbol + " in " + candidate + " failed"};
            AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
            host->register_loader(host, table, &err);  // owns the table from here on
            if (err.code != AbiErrorCode_Ok) {
                const std::string why =
                    err.message.len == 0
                        ? std::string("refused")
                        : std::string(reinterpret_cast<const char*>(err.message.ptr),
                                      err.message.len);
                return {from_abi_code(err.code), "registering the " + std::string(loader) +
                                                     " loader from " + candidate + ": " + why};
            }
            where = candidate;
            return {};
        }
        tried += (tried.empty() ? "" : "; ") + candidate + ": " + problem;
    }
    return {errc::no_loader, "no " + std::string(loader) + " loader module was found (tried " +
                                 tried + "). " + loader_module_hint(loader) +
                                 "; --loader-dir DIR or POLYPLUG_LOADER_DIR names the directory "
                                 "holding it"};
}

}  // namespace polyplug::tools
