// SPDX-License-Identifier: MIT
/// @file native_loader_impl.hpp
/// The native loader's work: the ELF check, the pre-flight, dlopen, the ABI check and init.
/// Included by loaders/native.hpp in header-only mode and by implementation.hpp in compiled-once
/// mode (config.hpp, POLYPLUG_HEADER_ONLY).
#pragma once

#include <polyplug/detail/dynamic_library.hpp>
#include <polyplug/detail/elf_check.hpp>
#include <polyplug/detail/preflight.hpp>
#include <polyplug/loaders/native.hpp>

#include <algorithm>
#include <string>

#include <sys/stat.h>

POLYPLUG_BEGIN_NAMESPACE

POLYPLUG_COMPILED_ONCE_FN native_loader::native_loader() = default;
POLYPLUG_COMPILED_ONCE_FN native_loader::~native_loader() {
    for (const auto& [load_id, handle] : libraries_) ::dlclose(handle);
}

POLYPLUG_COMPILED_ONCE_FN status native_loader::load(const bundle_context& context) {
    detail::dynamic_library library;
    const manifest& m = *context.bundle;
    // The prefix of every error below; built only when one is reported.
    const auto where = [&m] { return "bundle '" + m.name + "': "; };
    std::string reason;
    // Before dlopen: ld.so trusts a library's headers, and a truncated or corrupt file would
    // crash this process inside it (SIGBUS; see detail/elf_check.hpp).
    if (const status checked = check_elf_once(context.artifact, context.artifact_identity);
        !checked)
        return {errc::library_load_failed,
                where() + "cannot load '" + context.artifact.string() + "': " + checked.message()};
    // After the ELF check: the child would crash inside dlopen on a corrupt file too, but
    // the check's message says why, and costs no fork.
    if (context.options != nullptr && context.options->preflight_native_libraries) {
        if (status st = detail::preflight_open(context.artifact, where(),
                                               context.options->preflight_timeout);
            !st)
            return st;
    }
    if (!library.open(context.artifact.native(), reason))
        return {errc::library_load_failed,
                where() + "cannot load '" + context.artifact.string() + "': " + reason};

    const auto abi_version = library.function<PolyplugAbiVersionFn>(POLYPLUG_ABI_VERSION_SYMBOL);
    if (abi_version == nullptr)
        return {errc::abi_version_mismatch,
                where() + "'" + context.artifact.string() +
                    "' does not export polyplug_abi_version (not a polyplug plugin?)"};
    const std::uint32_t reported = abi_version();
    if (reported != POLYPLUG_ABI_VERSION)
        return {errc::abi_version_mismatch,
                where() + "plugin reports ABI version " + std::to_string(reported) +
                    ", this runtime speaks " + std::to_string(POLYPLUG_ABI_VERSION)};

    const auto init = library.function<PolyplugInitFn>(POLYPLUG_INIT_SYMBOL);
    if (init == nullptr)
        return {errc::init_symbol_missing, where() + "'" + context.artifact.string() +
                                               "' does not export the init symbol polyplug_init"};

    const BundleInitContext init_context{context.bundle_id, detail::string_view_of(m.dir.native())};
    // No exception guard on purpose: a plugin's glue converts its own failures (spec §5.3).
    const AbiError result = init(context.host, &init_context);
    if (result.code != AbiErrorCode_Ok) {
        const std::string message =
            detail::copy_plugin_message(result.message.ptr, result.message.len);
        return {errc::init_failed, where() + "polyplug_init failed with code " +
                                       std::to_string(result.code) +
                                       (message.empty() ? std::string() : ": " + message)};
    }

    std::lock_guard lock(mutex_);
    libraries_.reserve(libraries_.size() + 1);  // may throw: `library` still owns the handle
    const auto at = std::lower_bound(
        libraries_.begin(), libraries_.end(), context.load_id,
        [](const std::pair<std::uint64_t, void*>& e, std::uint64_t id) { return e.first < id; });
    libraries_.insert(at, {context.load_id, library.release()});  // no throw: room reserved
    return {};
}

POLYPLUG_COMPILED_ONCE_FN void* native_loader::take(std::uint64_t load_id) {
    std::lock_guard lock(mutex_);
    const auto at = std::lower_bound(
        libraries_.begin(), libraries_.end(), load_id,
        [](const std::pair<std::uint64_t, void*>& e, std::uint64_t id) { return e.first < id; });
    if (at == libraries_.end() || at->first != load_id) return nullptr;
    void* handle = at->second;
    libraries_.erase(at);
    return handle;
}

POLYPLUG_COMPILED_ONCE_FN void native_loader::unload(const HostApi*, std::uint64_t load_id) {
    // Outside the lock: the library's destructors may call back into the runtime.
    if (void* handle = take(load_id)) ::dlclose(handle);
}

POLYPLUG_COMPILED_ONCE_FN void* native_loader::release_library(std::uint64_t load_id) {
    return take(load_id);
}

POLYPLUG_COMPILED_ONCE_FN status native_loader::check_elf_once(const std::filesystem::path& file,
                                                               detail::file_identity id) {
    if (!id.known) {
        struct stat info {};
        if (::stat(file.c_str(), &info) != 0) return detail::check_elf_library(file);
        id = detail::file_identity::of(info);
    }
    checked_store& checked = checked_files();
    {
        std::lock_guard lock(checked.mutex);
        if (checked.ids.contains(id)) return {};
    }
    status st = detail::check_elf_library(file);
    if (st) {
        std::lock_guard lock(checked.mutex);
        if (checked.ids.size() >= max_checked_files) checked.ids.clear();
        checked.ids.insert(id);
    }
    return st;
}

// Never destroyed: a runtime may load from a static destructor.
POLYPLUG_COMPILED_ONCE_FN native_loader::checked_store& native_loader::checked_files() {
    static checked_store* const instance = new checked_store;
    return *instance;
}

POLYPLUG_END_NAMESPACE
