// SPDX-License-Identifier: MIT
/// @file vm.hpp
/// What every script loader (Lua, Python, JavaScript) shares: `vm_loader<Engine>`, a bundle
/// loader that reads the contract file a script bundle implements, opens one engine (one VM) per
/// loaded version, registers each provided contract with VM dispatch, and serialises calls into
/// that VM (one lock per VM; a same-thread nested call gets ReentrantCall). Engines only turn C
/// memory into script values and back, following the contract file's layouts, and run the
/// script.
///
/// A script bundle is a directory with manifest.toml (`loader = "lua"`, `file = "calc.lua"`,
/// `api = "calc.api.toml"`, `provides = [...]`), the contract file and the script. The script
/// implements each provided contract by name: an object whose methods are the contract's
/// functions (docs/VM_BUNDLES.md).
#pragma once

#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/call_arena.h>
#include <polyplug/config.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/detail/contract_file_cache.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/error.hpp>
#include <polyplug/loader.hpp>
#include <polyplug/loaders/vm/owner_lock.hpp>
#include <polyplug/loaders/vm/plan.hpp>
#include <polyplug/loaders/vm/services.hpp>
#include <polyplug/manifest.hpp>
#include <polyplug/state_handover.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// What an engine is given to open one version of a bundle.
struct vm_script {
    const manifest* bundle = nullptr;    ///< validated manifest
    std::filesystem::path script;        ///< the `file` to run
    const contract_file* api = nullptr;  ///< lives as long as the engine
    vm_services* services = nullptr;     ///< lives as long as the engine

    /// The script as messages and locations name it: the manifest's `file` ("lib/calc.lua"),
    /// or the script's file name without a manifest.
    [[nodiscard]] std::string shown_name() const {
        return bundle != nullptr && !bundle->file.empty() ? bundle->file
                                                          : script.filename().string();
    }

    /// The script's text; false when it cannot be opened or read.
    [[nodiscard]] bool read(std::string& source) const {
        std::ifstream in(script, std::ios::binary);
        if (!in) return false;
        source.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        return !in.bad();
    }
};

/// A script engine: one VM running one version of one bundle. Every member is called with the
/// VM's lock held, on any thread. `impl` indices come from bind.
///
/// - `static constexpr std::string_view loader_name`, `static constexpr std::uint32_t language`
/// - `static std::unique_ptr<E> open(const vm_script&, std::string& error)`: runs the script
/// - `bool bind(const contract_decl&, std::uint32_t& impl, std::string& error)`: finds the
///   script's implementation of a contract, checks every function is there
/// - `void* create_instance(std::uint32_t impl, std::string& error)`: never nullptr on success
/// - `void destroy_instance(std::uint32_t impl, void* instance) noexcept`
/// - `bool call(std::uint32_t impl, void* instance, const function_decl&, const void* args,
///   void* out, const result_allocator&, std::string& error)`
/// - `bool state_schema(std::uint32_t& schema)`: true when the script hands its state over
///   across reloads, with the schema number of what it saves; then `bool save_state(
///   std::string& bytes, std::string& error)` and `bool restore_state(std::uint32_t schema,
///   std::string_view bytes, std::string& error)`
template <class E>
concept vm_engine = requires(E& engine, const vm_script& script, const contract_decl& contract,
                             const function_decl& fn, std::string& error, std::uint32_t& impl,
                             const result_allocator& alloc, std::string& bytes) {
    { E::loader_name } -> std::convertible_to<std::string_view>;
    { E::language } -> std::convertible_to<std::uint32_t>;
    { E::open(script, error) } -> std::same_as<std::unique_ptr<E>>;
    { engine.bind(contract, impl, error) } -> std::same_as<bool>;
    { engine.create_instance(impl, error) } -> std::same_as<void*>;
    {engine.destroy_instance(impl, nullptr)};
    { engine.call(impl, nullptr, fn, nullptr, nullptr, alloc, error) } -> std::same_as<bool>;
    { engine.state_schema(impl) } -> std::same_as<bool>;
    { engine.save_state(bytes, error) } -> std::same_as<bool>;
    { engine.restore_state(impl, std::string_view(), error) } -> std::same_as<bool>;
};

namespace detail {

/// The message of the latest failed VM call on this thread: AbiError messages are borrowed,
/// valid until the next call into whoever produced them.
inline std::string& vm_error_text() {
    thread_local std::string text;
    return text;
}

inline AbiError vm_error(std::uint32_t code, std::string text) {
    std::string& kept = vm_error_text();
    kept = std::move(text);
    return {code, string_view_of(kept)};
}

}  // namespace detail

/// A bundle loader for script bundles run by `Engine` (see vm_engine).
template <vm_engine Engine>
class vm_loader {
public:
    vm_loader() = default;
    vm_loader(const vm_loader&) = delete;
    vm_loader& operator=(const vm_loader&) = delete;

    [[nodiscard]] std::string_view name() const noexcept { return Engine::loader_name; }
    [[nodiscard]] std::uint32_t language() const noexcept { return Engine::language; }
    [[nodiscard]] bool supports_hot_reload() const noexcept { return true; }

    [[nodiscard]] status load(const bundle_context& context) {
        try {
            return open_version(context);
        } catch (const std::bad_alloc&) {
            return {errc::init_failed, "bundle '" + context.bundle->name + "': out of memory"};
        } catch (const std::exception& e) {
            return {errc::init_failed, "bundle '" + context.bundle->name + "': " + e.what()};
        }
    }

    [[nodiscard]] status reload(const bundle_context& context) { return load(context); }

    /// Tears the version's VM down; the runtime calls it once no mediated call is inside.
    void unload(const HostApi*, std::uint64_t load_id) {
        std::unique_ptr<version> gone;
        {
            const std::lock_guard guard(versions_lock_);
            const auto it = versions_.find(load_id);
            if (it == versions_.end()) return;
            gone = std::move(it->second);
            versions_.erase(it);
        }
        const vm_entry vm_guard(*gone);
        for (const auto& state : gone->contracts) {
            if (state->default_instance != nullptr)
                gone->engine->destroy_instance(state->impl, state->default_instance);
        }
        gone->engine.reset();  // the VM, its instances and its objects
    }

    /// How many versions (VMs) are open; for tests of teardown.
    [[nodiscard]] std::size_t open_vms() const {
        const std::lock_guard guard(versions_lock_);
        return versions_.size();
    }

private:
    struct version;

    /// The loader data of one registered contract.
    struct contract_state {
        version* owner = nullptr;
        const contract_decl* decl = nullptr;
        std::uint32_t impl = 0;
        std::uint32_t functions = 0;       // decl->functions.size(), which would divide per call
        void* default_instance = nullptr;  // for calls with a NULL instance (spec 12.3)
    };

    /// One loaded version of one bundle: its contract file, its VM, its registered contracts.
    struct version {
        std::shared_ptr<const contract_file> api;  // shared with versions of the same text
        std::unique_ptr<vm_services> services;
        std::unique_ptr<Engine> engine;
        std::vector<std::unique_ptr<contract_state>> contracts;
        vm::owner_lock lock;  // one VM, one thread at a time; tells a nested entry apart
        std::string name;
        std::string error;  // an engine's message for the failing call (reused: no per-call string)
    };

    /// Holds the VM's lock for one entry into it; refuses a nested entry from the same thread.
    class vm_entry {
    public:
        explicit vm_entry(version& v) noexcept
            : v_(v), entered_(v.lock.enter() == vm::owner_lock::entry::entered) {}
        ~vm_entry() {
            if (entered_) v_.lock.leave();
        }
        vm_entry(const vm_entry&) = delete;
        vm_entry& operator=(const vm_entry&) = delete;
        [[nodiscard]] bool entered() const noexcept { return entered_; }

    private:
        version& v_;
        bool entered_;
    };

    [[nodiscard]] status open_version(const bundle_context& context) {
        const manifest& m = *context.bundle;
        auto fail = [&](std::string what) {
            return status{errc::init_failed, "bundle '" + m.name + "': " + std::move(what)};
        };
        auto v = std::make_unique<version>();
        v->name = m.name;

        // The contract file: the bundle's own, inside its directory.
        const std::filesystem::path relative = m.api.empty() ? "api.toml" : m.api;
        if (relative.is_absolute() || detail::escapes_lexically(relative)) {
            return {errc::path_escapes_bundle,
                    "bundle '" + m.name + "': api path '" + m.api + "' escapes the bundle"};
        }
        if (status s = detail::read_shared_contract_file(m.dir / relative, v->api); !s) {
            return fail("its contract file: " + s.message());
        }
        v->services = std::make_unique<vm_services>(context.host, *v->api, m.name);

        const vm_script script{&m, context.artifact, v->api.get(), v->services.get()};
        std::string error;
        {
            const vm_entry guard(*v);
            v->engine = Engine::open(script, error);
        }
        if (!v->engine) return fail(error);

        // Every provided contract: in the contract file, implemented by the script.
        for (const provided_contract& p : m.provides) {
            const contract_decl* decl = v->api->find_contract(p.contract_id);
            if (decl == nullptr || decl->side != contract_side::guest) {
                return fail("provides " + p.key() + ", which its contract file " + v->api->source +
                            " does not declare as a guest contract");
            }
            auto state = std::make_unique<contract_state>();
            state->owner = v.get();
            state->decl = decl;
            state->functions = static_cast<std::uint32_t>(decl->functions.size());
            bool bound = false;
            {
                const vm_entry guard(*v);
                bound = v->engine->bind(*decl, state->impl, error);
            }
            if (!bound) return fail(error);
            v->contracts.push_back(std::move(state));
        }
        if (status s = offer_state(context.host, *v); !s) return fail(s.message());

        // Registration happens inside the bundle's init window: all of it, or (on failure)
        // none of it, is published.
        for (const auto& state : v->contracts) {
            const contract_decl& decl = *state->decl;
            GuestContractInterface iface{};
            iface.contract_id = decl.id;
            iface.contract_version = decl.version;
            iface.dispatch_type = DispatchType_VirtualMachine;
            iface.create_instance = &create_instance;
            iface.destroy_instance = &destroy_instance;
            iface.dispatch.vm.call = &call;
            iface.dispatch.vm.loader_data.data = state.get();
            PluginDescriptor descriptor{};
            descriptor.name = detail::string_view_of(m.name);
            descriptor.contract_name = detail::string_view_of(decl.name);
            descriptor.version = decl.version;
            AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
            context.host->register_guest_contract(context.host, &descriptor, &iface, &err);
            if (err.code != AbiErrorCode_Ok) {
                return fail("registering " + decl.name + ": " +
                            detail::utf8_lossy(err.message.ptr, err.message.len));
            }
        }
        const std::lock_guard guard(versions_lock_);
        versions_[context.load_id] = std::move(v);
        return {};
    }

    // ---- the state hand-over, for scripts that define one ------------------------------------

    [[nodiscard]] static status offer_state(const HostApi* host, version& v) {
        std::uint32_t schema = 0;
        {
            const vm_entry guard(v);
            if (!v.engine->state_schema(schema)) return {};
        }
        const PolyplugStateOffer offer{schema, 0, &save_state, &restore_state, &v};
        const AbiError err = polyplug_offer_state(host, &offer);
        if (err.code != AbiErrorCode_Ok) {
            return {errc::init_failed, "offering its state hand-over: " +
                                           detail::utf8_lossy(err.message.ptr, err.message.len)};
        }
        return {};
    }

    static void save_state(void* user, const HostApi* host, Buffer* out, AbiError* err) noexcept {
        auto& v = *static_cast<version*>(user);
        try {
            const vm_entry entry(v);
            std::string bytes, error;
            if (!v.engine->save_state(bytes, error)) {
                *err = detail::vm_error(AbiErrorCode_Panic, error);
                return;
            }
            auto* data = bytes.empty() ? nullptr : host->alloc(host, bytes.size(), 1);
            if (!bytes.empty() && data == nullptr) {
                *err = detail::vm_error(AbiErrorCode_Generic, "out of memory saving state");
                return;
            }
            if (data != nullptr) std::memcpy(data, bytes.data(), bytes.size());
            *out = {data, bytes.size(), bytes.size()};
        } catch (...) {
            *err = detail::vm_error(AbiErrorCode_Panic, "saving state failed");
        }
    }

    static void restore_state(void* user, const HostApi*, std::uint32_t schema,
                              const std::uint8_t* data, std::size_t len, AbiError* err) noexcept {
        auto& v = *static_cast<version*>(user);
        try {
            const vm_entry entry(v);
            std::string error;
            const std::string_view bytes(reinterpret_cast<const char*>(data), data ? len : 0);
            if (!v.engine->restore_state(schema, bytes, error)) {
                *err = detail::vm_error(AbiErrorCode_Panic, error);
            }
        } catch (...) {
            *err = detail::vm_error(AbiErrorCode_Panic, "restoring state failed");
        }
    }

    // ---- the interface functions the runtime and hosts call -----------------------------------

    static void create_instance(VmLoaderData data, const HostApi*, const void*,
                                GuestContractInstance* out) noexcept {
        if (out == nullptr) return;
        *out = {nullptr, 0};
        auto& state = *static_cast<contract_state*>(data.data);
        try {
            const vm_entry entry(*state.owner);
            if (!entry.entered()) return;  // from inside the same VM: refused, no instance
            std::string error;
            void* instance = state.owner->engine->create_instance(state.impl, error);
            if (instance == nullptr) {
                state.owner->services->log(
                    LogLevel_Error, "creating an instance of " + state.decl->name + ": " + error);
                return;
            }
            *out = {instance, state.decl->id};
        } catch (...) {
            *out = {nullptr, 0};
        }
    }

    static void destroy_instance(VmLoaderData data, const HostApi*,
                                 GuestContractInstance instance) noexcept {
        auto& state = *static_cast<contract_state*>(data.data);
        if (instance.data == nullptr) return;
        try {
            const vm_entry entry(*state.owner);
            if (entry.entered()) state.owner->engine->destroy_instance(state.impl, instance.data);
        } catch (...) {
        }
    }

    /// The table's `call`: the lock, the instance, then straight into the engine's execution
    /// of the function's plan. Nothing is built per call; the messages of failures are.
    static void call(VmLoaderData data, GuestContractInstance instance, std::uint32_t fn_id,
                     const void* args, void* out, CallArena* arena, AbiError* err) noexcept {
        if (err == nullptr) return;
        auto& state = *static_cast<contract_state*>(data.data);
        version& owner = *state.owner;
        if (fn_id >= state.functions) [[unlikely]] {
            *err = polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                       "the script's contract has no function with this id");
            return;
        }
        const vm_entry entry(owner);
        if (!entry.entered()) [[unlikely]] {
            refuse_nested(state, fn_id, err);
            return;
        }
        try {
            void* target = instance.data;
            if (target == nullptr) [[unlikely]] {
                target = default_instance(state, err);
                if (target == nullptr) return;
            }
            const result_allocator alloc(arena, owner.services->host());
            if (!owner.engine->call(state.impl, target, state.decl->functions[fn_id], args, out,
                                    alloc, owner.error)) [[unlikely]] {
                *err = detail::vm_error(AbiErrorCode_Panic, std::move(owner.error));
                owner.error.clear();
                return;
            }
            *err = {AbiErrorCode_Ok, {nullptr, 0}};
        } catch (const std::bad_alloc&) {
            *err = polyplug_call_error(AbiErrorCode_Generic, "out of memory in a VM call");
        } catch (...) {
            *err = polyplug_call_error(AbiErrorCode_Panic, "a VM call failed");
        }
    }

    [[gnu::cold]] static void refuse_nested(const contract_state& state, std::uint32_t fn_id,
                                            AbiError* err) noexcept {
        try {
            *err = detail::vm_error(AbiErrorCode_ReentrantCall,
                                    "bundle '" + state.owner->name + "': " + state.decl->name +
                                        "." + state.decl->functions[fn_id].name +
                                        " called from inside the same VM (a nested call into a "
                                        "VM that is dispatching on this thread)");
        } catch (...) {
            *err =
                polyplug_call_error(AbiErrorCode_ReentrantCall,
                                    "a nested call into a VM that is dispatching on this thread");
        }
    }

    // A caller without an instance ({NULL, id}, as for stateless native providers) gets the
    // contract's default instance, made on first use (spec 12.3). The VM's lock is held.
    [[gnu::cold]] static void* default_instance(contract_state& state, AbiError* err) {
        version& owner = *state.owner;
        if (state.default_instance == nullptr) {
            state.default_instance = owner.engine->create_instance(state.impl, owner.error);
            if (state.default_instance == nullptr) {
                *err = detail::vm_error(AbiErrorCode_Panic,
                                        "creating the default instance: " + owner.error);
                owner.error.clear();
            }
        }
        return state.default_instance;
    }

    mutable std::mutex versions_lock_;
    std::map<std::uint64_t, std::unique_ptr<version>> versions_;
};

POLYPLUG_END_NAMESPACE
