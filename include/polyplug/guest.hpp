// SPDX-License-Identifier: MIT
/// @file guest.hpp
/// Implementing a typed contract with a plain C++ class: generated noexcept trampolines unpack the
/// argument struct, call the member function and write the result; any exception becomes
/// `AbiError{Panic}` carrying its what(). Plugins use polyplug::implementation and
/// POLYPLUG_EXPORT_BUNDLE for guest contracts; hosts use polyplug::host_contract for host
/// contracts. Needs only abi.h, config.hpp, ids.hpp and contract.hpp: a plugin links nothing.
///
/// @code
/// class my_calc {
/// public:
///     std::int32_t add(std::int32_t a, std::int32_t b) { return a + b; }
///     std::string_view describe() const { return "my calc"; }
/// };
/// POLYPLUG_EXPORT_BUNDLE("my-calc", polyplug::implementation<calc, my_calc, &my_calc::add,
///                                                            &my_calc::describe>)
/// @endcode
///
/// Instances: each `create_instance` makes a new object (`new Impl(host)` when Impl is
/// constructible from `const HostApi*`, else `new Impl()`); `instance.data` points to it and
/// `destroy_instance` deletes it. Results that are views (std::string_view, spans) must stay
/// valid after the method returns: point into static data or into the object.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/contract.hpp>
#include <polyplug/ids.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

POLYPLUG_BEGIN_NAMESPACE

namespace detail {

// The parts of a member-function pointer: class, result, parameters (const and noexcept alike).
template <class M>
struct method_traits;
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...)> {
    using object = T;
    using result = R;
    using params = std::tuple<std::remove_cvref_t<A>...>;
};
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...) const> : method_traits<R (T::*)(A...)> {};
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...) noexcept> : method_traits<R (T::*)(A...)> {};
template <class T, class R, class... A>
struct method_traits<R (T::*)(A...) const noexcept> : method_traits<R (T::*)(A...)> {};

template <class Function, auto Method>
inline constexpr bool method_matches =
    std::is_same_v<typename method_traits<decltype(Method)>::result, typename Function::result>&&
        std::is_same_v<typename method_traits<decltype(Method)>::params, typename Function::params>;

inline void set_abi_error(AbiError* err, std::uint32_t code, std::string_view message) noexcept {
    if (err == nullptr) return;
    err->code = code;
    err->message = {reinterpret_cast<const std::uint8_t*>(message.data()), message.size()};
}

// The message of an escaping exception must outlive the trampoline's return, and the exception
// does not: copy it into a per-thread buffer (a trivially destructible array: no TLS destructor
// to run when a plugin is unloaded). Truncated at a UTF-8 character boundary.
inline void set_panic(AbiError* err, const char* what) noexcept {
    thread_local char buffer[256];
    std::size_t n = what == nullptr ? 0 : std::strlen(what);
    if (n >= sizeof buffer) {
        n = sizeof buffer - 1;
        while (n > 0 && (static_cast<unsigned char>(what[n]) & 0xC0u) == 0x80u) --n;
    }
    if (n > 0) std::memcpy(buffer, what, n);
    set_abi_error(err, AbiErrorCode_Panic, std::string_view(buffer, n));
}

// Calls the method with the unpacked arguments (none: `args` is not read).
template <class Function, auto Method, class Impl, std::size_t... I>
typename Function::result invoke_method(Impl& self, const void* args, std::index_sequence<I...>) {
    if constexpr (sizeof...(I) == 0) {
        (void)args;
        return (self.*Method)();
    } else {
        using params = typename Function::params;
        const auto& packed = *static_cast<const typename Function::args_type*>(args);
        return (self.*
                Method)(abi_mapping<std::tuple_element_t<I, params>>::from_abi(arg<I>(packed))...);
    }
}

// One contract function: unpack, call, pack. `Instance` is GuestContractInstance or
// HostContractInstance; both start with `void* data`, the implementing object.
template <class Instance, class Impl, class Function, auto Method>
void trampoline(Instance instance, const void* args, void* out, AbiError* err) noexcept {
    using R = typename Function::result;
    if (instance.data == nullptr || (Function::arity > 0 && args == nullptr) ||
        (!std::is_void_v<R> && out == nullptr)) [[unlikely]] {
        return set_abi_error(err, AbiErrorCode_InvalidPointer,
                             "polyplug: null instance, args or out pointer");
    }
    try {
        Impl& self = *static_cast<Impl*>(instance.data);
        constexpr auto indices = std::make_index_sequence<Function::arity>{};
        if constexpr (std::is_void_v<R>) {
            invoke_method<Function, Method>(self, args, indices);
        } else {
            *static_cast<typename Function::out_type*>(out) =
                abi_mapping<R>::to_abi(invoke_method<Function, Method>(self, args, indices));
        }
        set_abi_error(err, AbiErrorCode_Ok, {});
    } catch (const std::exception& e) {
        set_panic(err, e.what());
    } catch (...) {
        set_panic(err, "unknown exception");
    }
}

template <class Instance, class C, class Impl, auto... Methods>
struct function_table {
    static_assert(sizeof...(Methods) == function_count_of<C>(),
                  "give one member function per contract function, in id order");
    static_assert(function_ids_in_order<C>(),
                  "C::functions must list the contract's functions in id order: 0, 1, 2, ...");

    template <std::size_t... I>
    static constexpr bool all_match(std::index_sequence<I...>) noexcept {
        return (method_matches<function_at<C, I>, Methods> && ...);
    }
    static_assert(all_match(std::make_index_sequence<sizeof...(Methods)>{}),
                  "a member function's signature differs from the contract function with the "
                  "same position (result and parameter types must be the declared ones; "
                  "parameters may be taken by const reference)");

    template <std::size_t... I>
    static const void* const* make(std::index_sequence<I...>) noexcept {
        if constexpr (sizeof...(I) == 0) {
            return nullptr;  // a contract without functions has no table
        } else {
            // Function-to-object pointer casts are conditionally supported in C++ and exact on
            // every platform polyplug targets; the ABI stores table entries as `const void*`.
            static const void* const entries[] = {reinterpret_cast<const void*>(
                &trampoline<Instance, Impl, function_at<C, I>, Methods>)...};
            return entries;
        }
    }
    static const void* const* entries() noexcept {
        return make(std::make_index_sequence<sizeof...(Methods)>{});
    }
};

}  // namespace detail

/// A guest contract `C` implemented by the class `Impl`, one member function per contract
/// function in id order. Register it with POLYPLUG_EXPORT_BUNDLE or register_contracts.
template <contract_type C, class Impl, auto... Methods>
struct implementation {
    static_assert(!is_host_contract<C>(),
                  "polyplug::implementation is for guest contracts; use polyplug::host_contract");
    static_assert(std::is_destructible_v<Impl> && (std::is_default_constructible_v<Impl> ||
                                                   std::is_constructible_v<Impl, const HostApi*>),
                  "Impl needs a default constructor or a constructor taking const HostApi*");
    using contract = C;
    using table = detail::function_table<GuestContractInstance, C, Impl, Methods...>;

    static void create(VmLoaderData, const HostApi* host, const void*,
                       GuestContractInstance* out_instance) noexcept {
        if (out_instance == nullptr) return;
        *out_instance = {nullptr, 0};  // failure, unless construction succeeds
        try {
            Impl* object = nullptr;
            if constexpr (std::is_constructible_v<Impl, const HostApi*>)
                object = new Impl(host);
            else
                object = new Impl();
            *out_instance = {object, contract_id_of<C>()};
        } catch (...) {
        }
    }

    static void destroy(VmLoaderData, const HostApi*, GuestContractInstance instance) noexcept {
        delete static_cast<Impl*>(instance.data);
    }

    /// The interface to register (static storage: it lives as long as the plugin).
    static const GuestContractInterface& iface() noexcept {
        static const GuestContractInterface value = [] {
            GuestContractInterface iface{};
            iface.contract_id = contract_id_of<C>();
            iface.contract_version = {C::name.major, C::name.minor, C::name.patch};
            iface.dispatch_type = DispatchType_Native;
            iface.create_instance = &create;
            iface.destroy_instance = &destroy;
            iface.dispatch.native = {function_count_of<C>(), table::entries()};
            return iface;
        }();
        return value;
    }

    /// Registers the contract through `host` under `plugin_name`; false (and `err` set) on
    /// failure.
    static bool register_with(const HostApi* host, std::string_view plugin_name,
                              AbiError& err) noexcept {
        const PluginDescriptor descriptor{
            {reinterpret_cast<const std::uint8_t*>(plugin_name.data()), plugin_name.size()},
            {reinterpret_cast<const std::uint8_t*>(C::name.name.data()), C::name.name.size()},
            {C::name.major, C::name.minor, C::name.patch}};
        err = {AbiErrorCode_Ok, {nullptr, 0}};
        host->register_guest_contract(host, &descriptor, &iface(), &err);
        return err.code == AbiErrorCode_Ok;
    }
};

/// Registers every implementation (in order) through `host`; stops at the first failure and
/// returns its error. What a hand-written `polyplug_init` calls.
template <class... Implementations>
[[nodiscard]] AbiError register_contracts(const HostApi* host,
                                          std::string_view plugin_name) noexcept {
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    if (host == nullptr || host->register_guest_contract == nullptr) {
        detail::set_abi_error(&err, AbiErrorCode_InvalidPointer, "polyplug_init: null HostApi");
        return err;
    }
    (void)(Implementations::register_with(host, plugin_name, err) && ...);
    return err;
}

/// A host contract `C` implemented by an object of class `Impl` that the host owns: every
/// instance a plugin gets is that object. Register `iface()` with
/// `runtime::register_host_contract`; the runtime keeps a reference, so this object (and the
/// implementing one) must outlive the runtime. Not copyable or movable (its address is shared).
template <contract_type C, class Impl, auto... Methods>
class host_contract {
    static_assert(is_host_contract<C>(),
                  "polyplug::host_contract is for host contracts; use polyplug::implementation");
    using table = detail::function_table<HostContractInstance, C, Impl, Methods...>;

public:
    explicit host_contract(Impl& object) noexcept {
        iface_.contract_id = contract_id_of<C>();
        iface_.contract_version = {C::name.major, C::name.minor, C::name.patch};
        iface_.singleton = C::name.singleton;
        iface_.dispatch_type = DispatchType_Native;
        iface_.runtime = nullptr;
        iface_.user_data = &object;
        iface_.create_instance = &create;
        iface_.destroy_instance = &destroy;
        iface_.dispatch.native = {function_count_of<C>(), table::entries()};
    }
    host_contract(const host_contract&) = delete;
    host_contract& operator=(const host_contract&) = delete;

    [[nodiscard]] const HostContractInterface& iface() const noexcept { return iface_; }

private:
    static void create(const HostContractInterface* self, const void*,
                       HostContractInstance* out_instance) noexcept {
        if (out_instance != nullptr) *out_instance = {self == nullptr ? nullptr : self->user_data};
    }
    static void destroy(const HostContractInterface*, HostContractInstance) noexcept {}

    HostContractInterface iface_{};
};

POLYPLUG_END_NAMESPACE

/// Exports `polyplug_abi_version` and `polyplug_init` from a plugin; init registers every
/// implementation given (polyplug::implementation<...> types, in order) under `plugin_name`.
/// Use once per plugin library, at namespace scope.
#define POLYPLUG_EXPORT_BUNDLE(plugin_name, ...)                                           \
    extern "C" POLYPLUG_PLUGIN_EXPORT std::uint32_t polyplug_abi_version() {               \
        return POLYPLUG_ABI_VERSION;                                                       \
    }                                                                                      \
    extern "C" POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* polyplug_host, \
                                                             const BundleInitContext*) {   \
        return ::polyplug::register_contracts<__VA_ARGS__>(polyplug_host, plugin_name);    \
    }                                                                                      \
    static_assert(true, "POLYPLUG_EXPORT_BUNDLE is followed by a semicolon")
