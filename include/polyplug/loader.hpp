// SPDX-License-Identifier: MIT
/// @file loader.hpp
/// Bundle loaders: the `bundle_loader` concept C++ loaders satisfy, the context they are given,
/// and `loader_handle`, which type-erases both C++ loaders and C loader tables (`BundleLoader`,
/// registered through `HostApi.register_loader`).
#pragma once

#include <polyplug/detail/file_identity.hpp>
#include <polyplug/detail/plugin_message.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/error.hpp>
#include <polyplug/manifest_model.hpp>
#include <polyplug/runtime_options.hpp>

#include <concepts>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE

/// What a loader is given to load (or reload) one bundle. The runtime has already validated the
/// manifest and resolved the artifact, and holds the bundle's init window open around the call:
/// every `register_guest_contract` made meanwhile on this thread belongs to the bundle.
struct bundle_context {
    const HostApi* host = nullptr;
    std::uint64_t bundle_id = 0;
    const manifest* bundle = nullptr;  ///< the validated manifest (dir, name, version, file...)
    std::filesystem::path artifact;    ///< the file to load (a private copy on reload, native)
    std::uint64_t load_id = 0;         ///< unique per load or reload: key loaded resources by it
    /// The runtime's options (a loader's own checks read theirs here, e.g. the native loader's
    /// pre-flight); null when a loader is driven outside a runtime (loader_table.hpp).
    const runtime_options* options = nullptr;
    /// `artifact`'s identity as the runtime's artifact check saw it (an lstat moments before),
    /// so that a loader keyed by file identity need not stat again; `known` is false when the
    /// runtime has none (a private copy, a symlink on the way, a loader driven by hand).
    detail::file_identity artifact_identity{};
};

/// A C++ bundle loader. `name()` is matched exactly against the manifest's `loader` key.
///
/// `load` opens the artifact and runs the bundle's init; on failure it must leave nothing of the
/// bundle behind. `reload` loads a new version beside the current one. Both key what they keep by
/// `context.load_id`; `unload(host, load_id)` releases one version, called once the runtime no
/// longer needs it (after an unload; after a reload's swap, for the old version; after a failed
/// reload, for the new one) and no runtime-mediated call is inside it.
/// Optional: `bool wants_private_copies() const` returning true makes the runtime load every
/// reloaded version from its own copy of the artifact (native libraries: glibc hands back the
/// already-mapped library for a path it has seen, so the new code would never be picked up).
/// Optional: `void* release_library(std::uint64_t load_id)` forgets one version as `unload`
/// would, but hands its dlopen handle to the runtime instead of closing it; the runtime's
/// dlclose (after the unmap grace period, detail/unmap_scheduler.hpp) is then the last. A loader
/// without it is unloaded as above, and the runtime keeps the mapping by opening the artifact
/// once more by name first (RTLD_NOLOAD), which costs a second dlopen and dlclose per unload.
template <class Loader>
concept bundle_loader = requires(Loader& loader, const Loader& const_loader,
                                 const bundle_context& context, const HostApi* host,
                                 std::uint64_t load_id) {
    { const_loader.name() } -> std::convertible_to<std::string_view>;
    { const_loader.language() } -> std::convertible_to<std::uint32_t>;
    { const_loader.supports_hot_reload() } -> std::convertible_to<bool>;
    { loader.load(context) } -> std::same_as<status>;
    { loader.reload(context) } -> std::same_as<status>;
    { loader.unload(host, load_id) } -> std::same_as<void>;
};

/// A loader of either kind behind one interface. Borrowed C++ loaders are not owned; C tables are
/// owned and destroyed with the handle (ownership transfers on registration, spec §8.1).
class loader_handle {
public:
    loader_handle() = default;

    /// Refers to a C++ loader that outlives the handle (the runtime's own member loaders).
    template <bundle_loader Loader>
    [[nodiscard]] static loader_handle borrow(Loader& loader) {
        loader_handle handle;
        handle.object_ = &loader;
        handle.name_ = std::string(loader.name());
        handle.language_ = loader.language();
        handle.supports_hot_reload_ = loader.supports_hot_reload();
        if constexpr (requires { loader.wants_private_copies(); })
            handle.private_copies_ = loader.wants_private_copies();
        if constexpr (requires(std::uint64_t id) {
                          { loader.release_library(id) } -> std::same_as<void*>;
                      }) {
            handle.release_ = [](void* self, std::uint64_t id) {
                return static_cast<Loader*>(self)->release_library(id);
            };
        }
        handle.load_ = [](void* self, const bundle_context& context) {
            return static_cast<Loader*>(self)->load(context);
        };
        handle.reload_ = [](void* self, const bundle_context& context) {
            return static_cast<Loader*>(self)->reload(context);
        };
        handle.unload_ = [](void* self, const HostApi* host, std::uint64_t id) {
            static_cast<Loader*>(self)->unload(host, id);
        };
        return handle;
    }

    /// Takes ownership of a C loader table. Fails (and destroys the table) when it is malformed.
    [[nodiscard]] static status adopt(BundleLoader* table, loader_handle& out) {
        if (table == nullptr) return {errc::invalid_pointer, "register_loader: null loader"};
        loader_handle handle;
        handle.object_ = table;
        handle.owned_table_ = table;  // from here on, the handle destroys it on every path
        if (table->abi_version != POLYPLUG_LOADER_ABI_VERSION)
            return {errc::generic,
                    "register_loader: loader table version " + std::to_string(table->abi_version) +
                        ", this runtime accepts " + std::to_string(POLYPLUG_LOADER_ABI_VERSION)};
        if (table->name.ptr == nullptr || table->name.len == 0 ||
            !detail::is_valid_utf8(table->name.ptr, table->name.len))
            return {errc::generic, "register_loader: loader name is empty or not UTF-8"};
        handle.name_ = std::string(detail::view_of(table->name));
        if (table->load == nullptr)
            return {errc::invalid_pointer,
                    "register_loader: loader '" + handle.name_ + "' has a null load"};
        if (table->supports_hot_reload && table->reload == nullptr)
            return {errc::invalid_pointer, "register_loader: loader '" + handle.name_ +
                                               "' supports hot reload but has a null reload"};
        handle.language_ = table->language;
        handle.supports_hot_reload_ = table->supports_hot_reload;
        handle.load_ = [](void* self, const bundle_context& context) {
            auto* t = static_cast<BundleLoader*>(self);
            return call_c(t, t->load, context);
        };
        handle.reload_ = [](void* self, const bundle_context& context) {
            auto* t = static_cast<BundleLoader*>(self);
            if (t->reload == nullptr)
                return status{
                    errc::hot_reload_disabled,
                    "loader '" + std::string(detail::view_of(t->name)) + "' cannot reload bundles"};
            return call_c(t, t->reload, context);
        };
        handle.unload_ = [](void* self, const HostApi* host, std::uint64_t id) {
            auto* t = static_cast<BundleLoader*>(self);
            if (t->unload != nullptr) t->unload(t, host, id);
        };
        out = std::move(handle);
        return {};
    }

    loader_handle(loader_handle&& other) noexcept { *this = std::move(other); }
    loader_handle& operator=(loader_handle&& other) noexcept {
        if (this != &other) {
            destroy_owned();
            object_ = std::exchange(other.object_, nullptr);
            owned_table_ = std::exchange(other.owned_table_, nullptr);
            name_ = std::move(other.name_);
            language_ = other.language_;
            supports_hot_reload_ = other.supports_hot_reload_;
            private_copies_ = other.private_copies_;
            load_ = other.load_;
            reload_ = other.reload_;
            unload_ = other.unload_;
            release_ = other.release_;
        }
        return *this;
    }
    loader_handle(const loader_handle&) = delete;
    loader_handle& operator=(const loader_handle&) = delete;
    ~loader_handle() { destroy_owned(); }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::uint32_t language() const noexcept { return language_; }
    [[nodiscard]] bool supports_hot_reload() const noexcept { return supports_hot_reload_; }
    [[nodiscard]] bool wants_private_copies() const noexcept { return private_copies_; }
    [[nodiscard]] status load(const bundle_context& context) const {
        return load_(object_, context);
    }
    [[nodiscard]] status reload(const bundle_context& context) const {
        return reload_(object_, context);
    }
    void unload(const HostApi* host, std::uint64_t load_id) const {
        unload_(object_, host, load_id);
    }
    /// Whether the loader hands over library handles (`release_library`, see bundle_loader).
    [[nodiscard]] bool hands_over_libraries() const noexcept { return release_ != nullptr; }
    /// The loader forgets version `load_id` and returns its dlopen handle (nullptr if unknown);
    /// only for a loader that hands_over_libraries().
    [[nodiscard]] void* release_library(std::uint64_t load_id) const {
        return release_(object_, load_id);
    }

private:
    using load_fn = status (*)(void*, const bundle_context&);
    using unload_fn = void (*)(void*, const HostApi*, std::uint64_t);
    using release_fn = void* (*)(void*, std::uint64_t);
    using c_load_fn = void (*)(BundleLoader*, const HostApi*, const LoaderBundleInfo*, AbiError*);

    static status call_c(BundleLoader* table, c_load_fn fn, const bundle_context& context) {
        const manifest& m = *context.bundle;
        const std::string dir = m.dir.string();
        const std::string artifact = context.artifact.string();
        const std::string manifest_path = m.path.string();
        const LoaderBundleInfo info{context.bundle_id,
                                    detail::string_view_of(m.name),
                                    m.version,
                                    detail::string_view_of(dir),
                                    detail::string_view_of(artifact),
                                    detail::string_view_of(manifest_path),
                                    context.load_id};
        AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
        fn(table, context.host, &info, &err);
        if (err.code == AbiErrorCode_Ok) return {};
        std::string message = detail::copy_plugin_message(err.message.ptr, err.message.len);
        // The VM loaders name the bundle in their own messages (for their C++ users, who get
        // them unwrapped); said once here.
        const std::string named = "bundle '" + m.name + "': ";
        if (message.starts_with(named)) message.erase(0, named.size());
        return {errc::init_failed, "bundle '" + m.name + "': loader '" +
                                       std::string(detail::view_of(table->name)) +
                                       "' failed with code " + std::to_string(err.code) +
                                       (message.empty() ? std::string() : ": " + message)};
    }

    void destroy_owned() noexcept {
        if (owned_table_ != nullptr && owned_table_->destroy != nullptr)
            owned_table_->destroy(owned_table_);
        owned_table_ = nullptr;
    }

    void* object_ = nullptr;
    BundleLoader* owned_table_ = nullptr;
    std::string name_;
    std::uint32_t language_ = SupportedLanguage_Rust;
    bool supports_hot_reload_ = false;
    bool private_copies_ = false;
    load_fn load_ = nullptr;
    load_fn reload_ = nullptr;
    unload_fn unload_ = nullptr;
    release_fn release_ = nullptr;  // null: the loader closes its libraries itself
};

POLYPLUG_END_NAMESPACE
