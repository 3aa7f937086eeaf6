// SPDX-License-Identifier: MIT
/// @file loader_table.hpp
/// A C++ bundle loader packaged as the C loader table (`BundleLoader`) that `HostApi.
/// register_loader` takes, so that C hosts can add it at run time from a loader module, for
/// example `libpolyplug-loader-lua.so` exporting `polyplug_loader_lua_create`.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/config.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/loader.hpp>
#include <polyplug/manifest.hpp>

#include <exception>
#include <filesystem>
#include <memory>
#include <new>
#include <string>

POLYPLUG_BEGIN_NAMESPACE

namespace detail {

/// The table and the loader it wraps, allocated together; `table.user_data` points here.
template <bundle_loader Loader>
struct loader_table_holder {
    BundleLoader table{};
    Loader loader;
    std::string name;
    std::string error;  // the latest failure's message (AbiError messages are borrowed)

    static loader_table_holder& of(BundleLoader* self) noexcept {
        return *static_cast<loader_table_holder*>(self->user_data);
    }

    static void run(BundleLoader* self, const HostApi* host, const LoaderBundleInfo* info,
                    AbiError* err, bool reload) noexcept {
        if (err == nullptr) return;
        auto& holder = of(self);
        try {
            if (info == nullptr) {
                holder.error = "no bundle information";
                *err = {AbiErrorCode_InvalidPointer, string_view_of(holder.error)};
                return;
            }
            // The runtime validated the manifest; the loader reads it again for its own keys.
            manifest m;
            const std::filesystem::path dir(std::string(view_of(info->bundle_dir)));
            if (status s = read_manifest(dir, m); !s) {
                holder.error = s.message();
                *err = {AbiErrorCode_Generic, string_view_of(holder.error)};
                return;
            }
            const bundle_context context{host, info->bundle_id, &m,
                                         std::string(view_of(info->artifact_path)), info->load_id};
            const status s = reload ? holder.loader.reload(context) : holder.loader.load(context);
            if (!s) {
                holder.error = s.message();
                *err = {AbiErrorCode_Generic, string_view_of(holder.error)};
                return;
            }
            *err = {AbiErrorCode_Ok, {nullptr, 0}};
        } catch (...) {
            *err = {AbiErrorCode_Generic, string_view_of("loader failed (out of memory?)")};
        }
    }
};

}  // namespace detail

/// A new C loader table owning a new `Loader`; the runtime destroys it (`destroy`) once
/// registered, whether registration succeeds or not. nullptr when memory runs out.
template <bundle_loader Loader>
[[nodiscard]] BundleLoader* make_loader_table() noexcept {
    using holder = detail::loader_table_holder<Loader>;
    try {
        auto h = std::make_unique<holder>();
        h->name = std::string(h->loader.name());
        BundleLoader& t = h->table;
        t.abi_version = POLYPLUG_LOADER_ABI_VERSION;
        t.language = h->loader.language();
        t.name = detail::string_view_of(h->name);
        t.supports_hot_reload = h->loader.supports_hot_reload();
        t.user_data = h.get();
        t.load = [](BundleLoader* self, const HostApi* host, const LoaderBundleInfo* info,
                    AbiError* err) { holder::run(self, host, info, err, false); };
        t.reload = [](BundleLoader* self, const HostApi* host, const LoaderBundleInfo* info,
                      AbiError* err) { holder::run(self, host, info, err, true); };
        t.unload = [](BundleLoader* self, const HostApi* host, std::uint64_t load_id) {
            try {
                holder::of(self).loader.unload(host, load_id);
            } catch (...) {
            }
        };
        t.destroy = [](BundleLoader* self) { delete &holder::of(self); };
        return &h.release()->table;
    } catch (...) {
        return nullptr;
    }
}

POLYPLUG_END_NAMESPACE
