// SPDX-License-Identifier: MIT
/// @file client.hpp
/// Calling a typed contract: polyplug::client<C> finds and resolves the contract through a
/// `HostApi`, owns one instance (RAII), and calls its functions with C++ values. A call compiles
/// to the raw table call: build the argument struct, load the table entry, call, test the code.
/// Works for guest contracts (hosts call plugins) and host contracts (plugins call the host);
/// needs no runtime, so plugins can use it too.
///
/// @code
/// polyplug::client<calc> c(rt);                   // a basic_runtime or a const HostApi*
/// std::int32_t sum = c.call(calc::add, 2, 40);    // throws polyplug::error on failure
/// std::int32_t out = 0;
/// if (polyplug::status st = c.try_call(calc::add, out, 2, 40); !st) puts(st.message().c_str());
/// @endcode
#pragma once

#include <polyplug/call_arena.h>
#include <polyplug/contract.hpp>
#include <polyplug/detail/plugin_message.hpp>
#include <polyplug/dispatch.hpp>
#include <polyplug/error.hpp>

#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

POLYPLUG_BEGIN_NAMESPACE

/// When a client resolves its contract.
enum class resolve_policy {
    /// Once, when the client is opened. Calls go through the runtime's copy of the interface,
    /// which follows reloads of the provider; after an unload they report StaleHandle.
    once,
    /// Again whenever the runtime's revision counter has changed since the last call (one load
    /// and one compare per call): a client opened by contract (not by handle) moves on to
    /// whichever provider is registered now, with a new instance (the old one's state is lost).
    on_revision,
};

namespace detail {
template <class R>
struct call_out {
    typename abi_mapping<R>::type value{};
    void* ptr() noexcept { return &value; }
    R get() const noexcept { return abi_mapping<R>::from_abi(value); }
};
template <>
struct call_out<void> {
    static void* ptr() noexcept { return nullptr; }
    static void get() noexcept {}
};

template <class Runtime>
concept has_host_api = requires(const Runtime& rt) {
    { rt.host_api() } -> std::convertible_to<const HostApi*>;
};

/// What a client of a VM-dispatched provider passes as its instance: the provider's interface
/// and instance, and the arena its variable-size results go to (valid until the next call).
struct vm_bridge {
    const GuestContractInterface* iface = nullptr;
    GuestContractInstance instance{nullptr, 0};
    CallArena arena{};
    std::uint8_t storage[256];

    vm_bridge() noexcept { polyplug_arena_init(&arena, storage, sizeof storage, nullptr); }
    vm_bridge(const vm_bridge&) = delete;
    vm_bridge& operator=(const vm_bridge&) = delete;
    ~vm_bridge() { polyplug_arena_free(&arena); }
};

/// A native-shaped entry for function `Id` of a VM provider: the client calls it exactly as it
/// calls a native table, so the native path stays the raw table call.
template <std::uint32_t Id>
void vm_thunk(GuestContractInstance bridged, const void* args, void* out, AbiError* err) {
    auto& bridge = *static_cast<vm_bridge*>(bridged.data);
    polyplug_arena_reset(&bridge.arena);
    // The function first: a reload publishes the new loader data before the new function.
    const VmCallFn call = load_acquire(bridge.iface->dispatch.vm.call);
    const VmLoaderData data{load_acquire(bridge.iface->dispatch.vm.loader_data.data)};
    call(data, bridge.instance, Id, args, out, &bridge.arena, err);
}

template <std::uint32_t... Id>
inline const void* const vm_thunk_table[] = {reinterpret_cast<const void*>(&vm_thunk<Id>)...};

/// The thunk table of contract C, as the pointer a client reads like `native.functions`.
template <class C, std::size_t... I>
const void* const* vm_thunks_of(std::index_sequence<I...>) noexcept {
    return vm_thunk_table<static_cast<std::uint32_t>(I)...>;
}
template <class C>
inline const void* const* const vm_thunks =
    vm_thunks_of<C>(std::make_index_sequence<function_count_of<C>()>{});
}  // namespace detail

/// A typed caller of contract `C` (guest or host). Move-only; destroys its instance on
/// destruction. A default-constructed or failed client is empty (`!client`); calling it is a
/// precondition violation.
///
/// Guest contracts: the client finds the first provider with C's major version (or uses the
/// handle given), resolves it, and creates an instance through `HostApi::create_guest_instance`.
/// Host contracts: it resolves the interface and gets an instance with `get_host_contract`
/// (requesting C's major.minor); non-singleton instances are destroyed with the client.
/// Natively dispatched providers are called through their table; a VM-dispatched one (a script
/// bundle) through the same kind of table of thunks into its VmDispatch, with the client's own
/// CallArena for variable-size results: views they return stay valid until the next call.
template <contract_type C, resolve_policy Policy = resolve_policy::once>
class client {
    static_assert(function_ids_in_order<C>(),
                  "C::functions must list the contract's functions in id order: 0, 1, 2, ...");
    static constexpr bool host_side = is_host_contract<C>();
    using interface_type =
        std::conditional_t<host_side, HostContractInterface, GuestContractInterface>;
    using instance_type =
        std::conditional_t<host_side, HostContractInstance, GuestContractInstance>;
    using fn_type = std::conditional_t<host_side, HostContractFn, GuestContractFn>;

public:
    client() noexcept = default;

    /// Opens the contract through `host`. Throws polyplug::error: errc::not_found (guest: no
    /// provider), errc::host_contract_not_found, errc::stale_handle, errc::function_not_available
    /// (fewer functions than C declares), errc::invalid_pointer (null host).
    explicit client(const HostApi* host) { open(host, null_handle()).throw_if_failed(); }
    client(const HostApi* host, std::error_code& ec) {
        ec = open(host, null_handle()).error_code();
    }

    /// Guest contracts: opens this provider (from `find_all`). Errors as above.
    client(const HostApi* host, GuestContractHandle handle) requires(!host_side) {
        open(host, handle).throw_if_failed();
    }
    client(const HostApi* host, GuestContractHandle handle,
           std::error_code& ec) requires(!host_side) {
        ec = open(host, handle).error_code();
    }

    /// Through a runtime (anything with `host_api()`, e.g. polyplug::runtime).
    template <detail::has_host_api Runtime>
    explicit client(const Runtime& rt) : client(rt.host_api()) {}
    template <detail::has_host_api Runtime>
    client(const Runtime& rt, GuestContractHandle handle) requires(!host_side)
        : client(rt.host_api(), handle) {}

    client(client&& other) noexcept { swap(other); }
    client& operator=(client&& other) noexcept {
        if (this != &other) {
            close();
            swap(other);
        }
        return *this;
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { close(); }

    [[nodiscard]] explicit operator bool() const noexcept { return iface_ != nullptr; }
    /// The resolved interface (the runtime's copy), or nullptr.
    [[nodiscard]] const interface_type* iface() const noexcept { return iface_; }
    [[nodiscard]] instance_type instance() const noexcept { return instance_; }
    [[nodiscard]] const HostApi* host() const noexcept { return host_; }

    /// Calls `f` and returns its result. Throws polyplug::error whose code is the callee's
    /// AbiError code (codes the library does not know map to errc::generic) and whose what() is
    /// "<contract>@<major> <function>: <the callee's message>".
    template <std::uint32_t Id, class R, class... P>
    R call(function<Id, R(P...)> f, std::type_identity_t<P>... args) {
        detail::call_out<R> out;
        const AbiError err = invoke(f, out.ptr(), args...);
        if (err.code != AbiErrorCode_Ok) [[unlikely]]
            throw_failure(f.name, err);
        return out.get();
    }

    /// Calls `f`, storing its result in `out`; returns the failure instead of throwing.
    template <std::uint32_t Id, class R, class... P>
    requires(!std::is_void_v<R>) [[nodiscard]] status
        try_call(function<Id, R(P...)> f, R& out, std::type_identity_t<P>... args) {
        detail::call_out<R> result;
        const AbiError err = invoke(f, result.ptr(), args...);
        if (err.code != AbiErrorCode_Ok) [[unlikely]]
            return failure(f.name, err);
        out = result.get();
        return {};
    }

    /// Calls a function without a result; returns the failure instead of throwing.
    template <std::uint32_t Id, class... P>
    [[nodiscard]] status try_call(function<Id, void(P...)> f, std::type_identity_t<P>... args) {
        const AbiError err = invoke(f, nullptr, args...);
        if (err.code != AbiErrorCode_Ok) [[unlikely]]
            return failure(f.name, err);
        return {};
    }

    /// The bare call: packs the arguments, calls through the table, writes the raw ABI result
    /// to `out` (an `F::out_type*`, or nullptr for void) and returns the callee's AbiError. The
    /// message view is the callee's; copy it before the next call on this thread. Throws nothing
    /// (nothing may unwind across the ABI); not declared noexcept so that the call needs no
    /// terminate landing pad and stays exactly the raw table call.
    template <std::uint32_t Id, class R, class... P>
    [[nodiscard]] AbiError invoke(function<Id, R(P...)>, void* out,
                                  std::type_identity_t<P>... args) {
        using F = function<Id, R(P...)>;
        static_assert(std::is_same_v<function_at<C, Id>, F>,
                      "this function does not belong to the client's contract");
        AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
        if constexpr (Policy == resolve_policy::on_revision) {
            if (revision_ != nullptr && detail::load_acquire(*revision_) != seen_) [[unlikely]]
                refresh();
            if (iface_ == nullptr) [[unlikely]] {
                err.code = AbiErrorCode_StaleHandle;
                return err;
            }
        }
        if constexpr (sizeof...(P) == 0) {
            entry(Id)(instance_, nullptr, out, &err);
        } else {
            // Built in place, member by member, as a hand-written caller fills its struct.
            const typename F::args_type packed{abi_mapping<P>::to_abi(args)...};
            entry(Id)(instance_, &packed, out, &err);
        }
        return err;
    }

private:
    static constexpr GuestContractHandle null_handle() noexcept { return {UINT32_MAX, 0}; }

    static std::string contract_label() {
        return std::string(C::name.name) + "@" + std::to_string(C::name.major);
    }

    // Out of line: the failure path must not grow the inlined call.
    POLYPLUG_NOINLINE static status failure(std::string_view fn_name, const AbiError& err) {
        std::string message = contract_label() + " " + std::string(fn_name) + ": ";
        if (err.message.ptr != nullptr && err.message.len > 0)
            message += detail::copy_plugin_message(err.message.ptr, err.message.len);
        else
            message += make_error_code(from_abi_code(err.code)).message();
        if (from_abi_code(err.code) == errc::generic && err.code != AbiErrorCode_Generic)
            message += " (code " + std::to_string(err.code) + ")";
        return {from_abi_code(err.code), std::move(message)};
    }
    [[noreturn]] POLYPLUG_NOINLINE static void throw_failure(std::string_view fn_name,
                                                             const AbiError& err) {
        const status st = failure(fn_name, err);
        throw error(st.code(), st.message());
    }

    // The table entry, read with acquire loads: a reload rewrites the runtime's copy of the
    // table in place while other threads call through it (see dispatch.hpp).
    fn_type entry(std::uint32_t id) const noexcept {
        if constexpr (host_side) {
            // Host contracts are registered by reference and never rewritten.
            return function_cast<HostContractFn>(iface_->dispatch.native.functions[id]);
        } else {
            // `table_` is &iface_->dispatch.native.functions, or the VM thunks' table pointer.
            const void* const* table = detail::load_acquire(*table_);
            return function_cast<GuestContractFn>(detail::load_acquire(table[id]));
        }
    }

    static status check_table(const interface_type* iface) {
        if constexpr (!host_side) {
            // A VM provider answers FunctionNotAvailable itself for a function it lacks.
            if (iface->dispatch_type == DispatchType_VirtualMachine) return {};
        }
        if (iface->dispatch_type != DispatchType_Native)
            return {errc::function_not_available,
                    contract_label() + ": the provider's dispatch type " +
                        std::to_string(iface->dispatch_type) + " is not one the client can call"};
        if (detail::load_acquire(iface->dispatch.native.function_count) < function_count_of<C>())
            return {errc::function_not_available,
                    contract_label() + ": the provider has " +
                        std::to_string(iface->dispatch.native.function_count) +
                        " functions, the C++ declaration " +
                        std::to_string(function_count_of<C>())};
        return {};
    }

    status open(const HostApi* host, GuestContractHandle handle) {
        close();
        if (host == nullptr)
            return {errc::invalid_pointer, contract_label() + ": null HostApi pointer"};
        host_ = host;
        by_contract_ = handle.index == UINT32_MAX;
        handle_ = handle;
        if constexpr (Policy == resolve_policy::on_revision) {
            revision_ = host->revision_counter != nullptr ? host->revision_counter(host) : nullptr;
            if (revision_ != nullptr) seen_ = detail::load_acquire(*revision_);
        }
        status st = attach();
        if (!st) host_ = nullptr;
        return st;
    }

    // Resolves and creates the instance; on failure leaves iface_ null.
    status attach() {
        constexpr std::uint64_t id = contract_id_of<C>();
        if constexpr (host_side) {
            constexpr std::uint32_t packed = pack_host_version(C::name.major, C::name.minor);
            const HostContractInterface* iface =
                host_->resolve_host_contract_interface(host_, id, packed);
            if (iface == nullptr)
                return {errc::host_contract_not_found,
                        contract_label() + ": no matching host contract is registered"};
            if (status st = check_table(iface); !st) return st;
            const HostContractInstance instance = host_->get_host_contract(host_, id, packed);
            if (instance.data == nullptr)
                return {errc::host_contract_not_found,
                        contract_label() + ": the host contract gave no instance"};
            iface_ = iface;
            instance_ = instance;
        } else {
            if (by_contract_) handle_ = host_->find_guest_contract(host_, id, C::name.major);
            if (handle_.index == UINT32_MAX)
                return {errc::not_found, contract_label() + ": no provider is loaded"};
            const GuestContractInterface* iface = host_->resolve_guest_contract(host_, handle_);
            if (iface == nullptr)
                return {errc::stale_handle, contract_label() + ": the provider is gone"};
            if (status st = check_table(iface); !st) return st;
            GuestContractInstance instance{nullptr, 0};
            host_->create_guest_instance(host_, iface, nullptr, &instance);
            // Failure is a null instance; a stateless provider gives {NULL, contract id}.
            if (instance.data == nullptr && instance.contract_id == 0)
                return {errc::generic, contract_label() + ": create_instance failed"};
            iface_ = iface;
            if (iface->dispatch_type == DispatchType_VirtualMachine) {
                if (!bridge_) bridge_ = std::make_unique<detail::vm_bridge>();
                bridge_->iface = iface;
                bridge_->instance = instance;
                bridge_->arena.host = host_;
                instance_ = {bridge_.get(), instance.contract_id};
                table_ = &detail::vm_thunks<C>;
            } else {
                instance_ = instance;
                table_ = &iface->dispatch.native.functions;
            }
        }
        return {};
    }

    void detach() noexcept {
        if (iface_ == nullptr) return;
        if constexpr (host_side) {
            if (!iface_->singleton) iface_->destroy_instance(iface_, instance_);
        } else {
            const bool bridged = bridge_ && instance_.data == bridge_.get();
            host_->destroy_guest_instance(host_, iface_, bridged ? bridge_->instance : instance_);
            if (bridged) polyplug_arena_free(&bridge_->arena);
        }
        iface_ = nullptr;
        instance_ = {};
    }

    // on_revision: something was loaded, unloaded or reloaded. Keep the instance when the same
    // provider is still there; otherwise move to the current one.
    POLYPLUG_NOINLINE void refresh() noexcept {
        seen_ = detail::load_acquire(*revision_);
        try {
            if constexpr (!host_side) {
                const GuestContractHandle now =
                    by_contract_
                        ? host_->find_guest_contract(host_, contract_id_of<C>(), C::name.major)
                        : handle_;
                if (iface_ != nullptr && now.index == handle_.index &&
                    now.generation == handle_.generation &&
                    host_->resolve_guest_contract(host_, now) == iface_)
                    return;
            }
            detach();
            (void)attach();
        } catch (...) {
            iface_ = nullptr;  // an allocation failure while composing a message
        }
    }

    void close() noexcept {
        detach();
        host_ = nullptr;
    }

    void swap(client& other) noexcept {
        std::swap(host_, other.host_);
        std::swap(iface_, other.iface_);
        std::swap(instance_, other.instance_);
        std::swap(handle_, other.handle_);
        std::swap(by_contract_, other.by_contract_);
        std::swap(revision_, other.revision_);
        std::swap(seen_, other.seen_);
        std::swap(table_, other.table_);
        std::swap(bridge_, other.bridge_);
    }

    const HostApi* host_ = nullptr;
    const interface_type* iface_ = nullptr;
    instance_type instance_{};
    GuestContractHandle handle_{UINT32_MAX, 0};
    bool by_contract_ = true;
    const std::uint64_t* revision_ = nullptr;
    std::uint64_t seen_ = 0;
    const void* const* const* table_ = nullptr;  // guest side: where the entries are read from
    std::unique_ptr<detail::vm_bridge> bridge_;  // guest side, VM providers only
};

POLYPLUG_END_NAMESPACE
