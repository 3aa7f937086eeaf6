// SPDX-License-Identifier: MIT
/// @file runtime_contract.hpp
/// The implementation of host.polyplug.Runtime@1 (declared for C in runtime_contract.h): what C
/// hosts and plugins reach beyond the frozen HostApi. Every runtime registers it at construction.
#pragma once

#include <polyplug/contract_description.hpp>
#include <polyplug/detail/host_alloc.hpp>
#include <polyplug/runtime_contract.h>
#include <polyplug/runtime_core.hpp>

#include <chrono>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

struct runtime_contract_functions {
    static runtime_core* core_of(HostContractInstance self) noexcept {
        return static_cast<runtime_core*>(self.data);
    }

    static void report(AbiError* err, const status& st) noexcept {
        if (err == nullptr) return;
        err->code = to_abi_code(st.code());
        err->message = {nullptr, 0};
    }

    // Refuses a null instance, argument or result pointer before anything is read.
    static bool check(runtime_core* core, const void* args, void* out, bool needs_out,
                      AbiError* err, std::string_view function) noexcept {
        if (core != nullptr && args != nullptr && (out != nullptr || !needs_out)) return true;
        if (err != nullptr) {
            err->code = AbiErrorCode_InvalidPointer;
            err->message = string_view_of("null instance, args or out");
        }
        if (core != nullptr) {
            try {
                core->record_failure(
                    {errc::invalid_pointer,
                     "host.polyplug.Runtime." + std::string(function) + ": null args or out"});
            } catch (...) {
            }
        }
        return false;
    }

    // The same for functions without arguments (their args may be NULL).
    static bool check_no_args(runtime_core* core, void* out, bool needs_out, AbiError* err,
                              std::string_view function) noexcept {
        static constexpr char no_args = 0;
        return check(core, &no_args, out, needs_out, err, function);
    }

    // A host-allocated copy of `text` (the caller frees (ptr, cap, 1)).
    static Buffer buffer_of(std::string_view text) noexcept {
        Buffer buffer{nullptr, 0, 0};
        if (text.empty()) return buffer;
        buffer.ptr = host_alloc(text.size(), 1);
        if (buffer.ptr == nullptr) return buffer;
        std::memcpy(buffer.ptr, text.data(), text.size());
        buffer.len = buffer.cap = text.size();
        return buffer;
    }

    template <class Body>
    static void guarded(runtime_core* core, AbiError* err, Body&& body) noexcept {
        try {
            body();
        } catch (const std::exception& e) {
            if (err != nullptr) *err = {AbiErrorCode_Generic, {nullptr, 0}};
            try {
                core->record_failure({errc::generic, std::string("internal error: ") + e.what()});
            } catch (...) {
            }
        }
    }

    static void load_dirs(HostContractInstance self, const void* args, void* out, AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check(core, args, out, true, err, "load_dirs")) return;
        guarded(core, err, [&] {
            const auto& in = *static_cast<const PolyplugLoadDirsArgs*>(args);
            auto& result = *static_cast<PolyplugLoadDirsResult*>(out);
            result = {0, 0, {nullptr, 0, 0}};
            std::vector<std::filesystem::path> dirs;
            if (!paths_of(core, in.dirs, in.count, "load_dirs", dirs, err)) return;
            load_report loaded;
            const status st = core->load_dirs(dirs, loaded);
            std::string diagnostics;
            for (const discovery_diagnostic& d : loaded.skipped)
                diagnostics += d.problem.message() + "\n";
            result.loaded = static_cast<std::uint32_t>(loaded.loaded.size());
            result.skipped = static_cast<std::uint32_t>(loaded.skipped.size());
            result.diagnostics = buffer_of(diagnostics);
            report(err, st);
        });
    }

    // UTF-8-checked paths from a C array of StringViews; false (error reported) if malformed.
    static bool paths_of(runtime_core* core, const StringView* views, std::size_t count,
                         std::string_view function, std::vector<std::filesystem::path>& out,
                         AbiError* err) {
        if (count > 0 && views == nullptr) {
            report(err, core->fail({errc::invalid_pointer,
                                    std::string(function) + ": null dirs with count > 0"}));
            return false;
        }
        for (std::size_t i = 0; i < count; ++i) {
            if (!is_valid_utf8(views[i].ptr, views[i].len)) {
                report(err, core->fail({errc::invalid_utf8, std::string(function) + ": directory " +
                                                                std::to_string(i) +
                                                                " is not valid UTF-8"}));
                return false;
            }
            out.emplace_back(std::string(view_of(views[i])));
        }
        return true;
    }

    static void watch(HostContractInstance self, const void* args, void*, AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check(core, args, nullptr, false, err, "watch")) return;
        guarded(core, err, [&] {
            const auto& in = *static_cast<const PolyplugWatchArgs*>(args);
            if ((in.flags & ~POLYPLUG_WATCH_MANUAL) != 0) {
                report(err, core->fail({errc::generic, "watch: unknown flags " +
                                                           std::to_string(in.flags) +
                                                           " (known: POLYPLUG_WATCH_MANUAL)"}));
                return;
            }
            std::vector<std::filesystem::path> dirs;
            if (!paths_of(core, in.dirs, in.count, "watch", dirs, err)) return;
            watch_options options;
            options.debounce = std::chrono::milliseconds(in.debounce_ms);
            options.background_thread = (in.flags & POLYPLUG_WATCH_MANUAL) == 0;
            report(err, core->watch(dirs, options));
        });
    }

    static void unwatch(HostContractInstance self, const void*, void*, AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check_no_args(core, nullptr, false, err, "unwatch")) return;
        guarded(core, err, [&] {
            core->unwatch();
            report(err, {});
        });
    }

    static void poll_watch(HostContractInstance self, const void*, void* out, AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check_no_args(core, out, true, err, "poll_watch")) return;
        guarded(core, err, [&] {
            *static_cast<std::uint32_t*>(out) = static_cast<std::uint32_t>(core->poll_watch());
            report(err, {});
        });
    }

    static void unload_cascade(HostContractInstance self, const void* args, void* out,
                               AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check(core, args, out, true, err, "unload_cascade")) return;
        guarded(core, err, [&] {
            std::vector<std::uint64_t> unloaded;
            const status st = core->unload_cascade(
                static_cast<const PolyplugUnloadArgs*>(args)->bundle_id, &unloaded);
            *static_cast<std::uint32_t*>(out) = static_cast<std::uint32_t>(unloaded.size());
            report(err, st);
        });
    }

    static void set_unmap_policy(HostContractInstance self, const void* args, void*,
                                 AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check(core, args, nullptr, false, err, "set_unmap_policy")) return;
        guarded(core, err, [&] {
            const auto& in = *static_cast<const PolyplugUnmapPolicyArgs*>(args);
            if (in.policy > 1) {
                report(err, core->fail({errc::generic, "set_unmap_policy: unknown policy " +
                                                           std::to_string(in.policy) +
                                                           " (0: after grace period, 1: never)"}));
                return;
            }
            core->set_unmap_policy(static_cast<unmap_policy>(in.policy),
                                   std::chrono::milliseconds(in.grace_ms));
            report(err, {});
        });
    }

    static void describe_contract_file(HostContractInstance self, const void* args, void* out,
                                       AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check(core, args, out, true, err, "describe_contract_file")) return;
        guarded(core, err, [&] {
            const StringView path =
                static_cast<const PolyplugDescribeContractFileArgs*>(args)->path;
            auto& result = *static_cast<Buffer*>(out);
            result = {nullptr, 0, 0};
            if ((path.ptr == nullptr && path.len != 0) || !is_valid_utf8(path.ptr, path.len)) {
                report(err, core->fail({errc::invalid_utf8,
                                        "describe_contract_file: the path is not valid UTF-8"}));
                return;
            }
            contract_file file;
            if (status st =
                    read_contract_file(std::filesystem::path(std::string(view_of(path))), file);
                !st) {
                report(err, core->fail(std::move(st)));
                return;
            }
            const std::string text = describe_contracts(file);
            result = buffer_of(text);
            if (result.ptr == nullptr) {
                report(err,
                       core->fail({errc::generic, "describe_contract_file: out of memory for " +
                                                      std::to_string(text.size()) + " bytes"}));
                return;
            }
            report(err, {});
        });
    }

    static void describe_bundle(HostContractInstance self, const void* args, void* out,
                                AbiError* err) {
        runtime_core* core = core_of(self);
        if (!check(core, args, out, true, err, "bundle_info")) return;
        guarded(core, err, [&] {
            const std::uint64_t id = static_cast<const PolyplugBundleInfoArgs*>(args)->bundle_id;
            auto& result = *static_cast<PolyplugBundleInfo*>(out);
            result = {};
            const std::optional<bundle_info> info = core->bundle(id);
            if (!info) {
                report(err, core->fail({errc::bundle_not_loaded,
                                        "bundle_info: no loaded bundle has id " + format_id(id)}));
                return;
            }
            result.id = info->id;
            result.version = info->version;
            result.language = info->language;
            result.name = buffer_of(info->name);
            result.path = buffer_of(info->dir.string());
            result.loader = buffer_of(info->loader);
            result.contracts = {nullptr, 0, alignof(std::uint64_t)};
            if (!info->contracts.empty()) {
                result.contracts.items = reinterpret_cast<std::uint64_t*>(host_alloc(
                    info->contracts.size() * sizeof(std::uint64_t), alignof(std::uint64_t)));
                if (result.contracts.items != nullptr) {
                    for (const contract_info& c : info->contracts)
                        result.contracts.items[result.contracts.len++] = c.contract_id;
                }
            }
            report(err, {});
        });
    }
};

}  // namespace detail

/// Fills and registers host.polyplug.Runtime@1 for `core` (basic_runtime does this).
inline void install_runtime_contract(runtime_core& core) {
    using f = detail::runtime_contract_functions;
    runtime_core::runtime_contract_storage& storage = core.builtin_contract();
    storage.table[PolyplugRuntimeFn_LoadDirs] = reinterpret_cast<const void*>(&f::load_dirs);
    storage.table[PolyplugRuntimeFn_UnloadCascade] =
        reinterpret_cast<const void*>(&f::unload_cascade);
    storage.table[PolyplugRuntimeFn_SetUnmapPolicy] =
        reinterpret_cast<const void*>(&f::set_unmap_policy);
    storage.table[PolyplugRuntimeFn_BundleInfo] =
        reinterpret_cast<const void*>(&f::describe_bundle);
    storage.table[PolyplugRuntimeFn_Watch] = reinterpret_cast<const void*>(&f::watch);
    storage.table[PolyplugRuntimeFn_Unwatch] = reinterpret_cast<const void*>(&f::unwatch);
    storage.table[PolyplugRuntimeFn_PollWatch] = reinterpret_cast<const void*>(&f::poll_watch);
    storage.table[PolyplugRuntimeFn_DescribeContractFile] =
        reinterpret_cast<const void*>(&f::describe_contract_file);
    core.install_builtin_contract(
        storage, host_contract_id(POLYPLUG_RUNTIME_CONTRACT_NAME, POLYPLUG_RUNTIME_CONTRACT_MAJOR),
        {POLYPLUG_RUNTIME_CONTRACT_MAJOR, POLYPLUG_RUNTIME_CONTRACT_MINOR, 0});
}

static_assert(host_contract_id(POLYPLUG_RUNTIME_CONTRACT_NAME, POLYPLUG_RUNTIME_CONTRACT_MAJOR) ==
                  POLYPLUG_RUNTIME_CONTRACT_ID,
              "runtime_contract.h's POLYPLUG_RUNTIME_CONTRACT_ID must match the name");

POLYPLUG_END_NAMESPACE
