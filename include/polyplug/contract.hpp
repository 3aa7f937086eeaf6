// SPDX-License-Identifier: MIT
/// @file contract.hpp
/// Typed C++ contracts: a contract declared once as a C++ struct (name, version, functions with
/// C++ signatures), its id, and for each function the exact C layout of its argument struct and
/// result. Needs only abi.h and ids.hpp: plugins include it and link nothing.
///
/// @code
/// struct calc {  // example.calc@1
///     static constexpr polyplug::guest_contract_name name{"example.calc", 1, 0, 0};
///     static constexpr polyplug::function<0, std::int32_t(std::int32_t, std::int32_t)> add{"add"};
///     static constexpr polyplug::function<1, std::string_view()> describe{"describe"};
///     static constexpr std::tuple functions{add, describe};  // every function, in id order
/// };
/// static_assert(polyplug::contract_id_of<calc>() == polyplug::guest_contract_id("example.calc",
/// 1));
/// @endcode
///
/// Type mapping, C++ <-> ABI (spec 5.3): integers, floating point and bool as themselves; enums
/// as their underlying type; `std::string_view` <-> `StringView`; `std::span<const std::uint8_t>`
/// <-> `Buffer` (a parameter is passed as `{ptr, len, cap = len}`); `void*` <-> `Ptr`;
/// `std::span<const T>` (T a plain value or an enum) <-> `ArrayOf_T {const T* items; size_t len}`
/// (`abi_array<T>`); any other
/// standard-layout, trivially copyable struct by value; `void` result: no `out`.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/ids.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

POLYPLUG_BEGIN_NAMESPACE

// ---- contract identity ------------------------------------------------------------------------

/// Name and version of a guest contract (plugins implement it, hosts call it). Identity is
/// (name, major); minor and patch are informational.
struct guest_contract_name {
    std::string_view name;
    std::uint32_t major = 0;
    std::uint32_t minor = 0;
    std::uint32_t patch = 0;
    static constexpr bool is_host = false;
};

/// Name and version of a host contract (hosts implement it, plugins call it). `name` starts with
/// "host."; `singleton`: every caller shares one instance.
struct host_contract_name {
    std::string_view name;
    std::uint32_t major = 0;
    std::uint32_t minor = 0;
    std::uint32_t patch = 0;
    bool singleton = false;
    static constexpr bool is_host = true;
};

// ---- type mapping -----------------------------------------------------------------------------

/// `Array<T>` as contract functions carry it: `ArrayOf_T {const T* items; size_t len}`.
template <class T>
struct abi_array {
    const T* items;
    std::size_t len;
};

namespace detail {
template <class T>
struct is_span : std::false_type {};
template <class T, std::size_t Extent>
struct is_span<std::span<T, Extent>> : std::true_type {};

// A type passed through the ABI as itself: arithmetic, or a by-value struct.
template <class T>
inline constexpr bool is_plain_abi_value = std::is_arithmetic_v<T> ||
                                           (std::is_class_v<T> && std::is_standard_layout_v<T> &&
                                            std::is_trivially_copyable_v<T> && !is_span<T>::value &&
                                            !std::is_same_v<T, std::string_view>);
}  // namespace detail

/// How the C++ type `T` crosses the ABI: `type` is the C type, `to_abi` / `from_abi` convert.
/// Specialise it for your own types if the built-in mapping does not fit.
template <class T>
struct abi_mapping {
    static constexpr bool supported = false;
};

template <class T>
requires detail::is_plain_abi_value<T>
struct abi_mapping<T> {
    static constexpr bool supported = true;
    using type = T;
    static constexpr type to_abi(const T& value) noexcept { return value; }
    static constexpr T from_abi(const type& value) noexcept { return value; }
};

template <class T>
requires std::is_enum_v<T>
struct abi_mapping<T> {
    static constexpr bool supported = true;
    using type = std::underlying_type_t<T>;
    static constexpr type to_abi(T value) noexcept { return static_cast<type>(value); }
    static constexpr T from_abi(type value) noexcept { return static_cast<T>(value); }
};

template <>
struct abi_mapping<void*> {
    static constexpr bool supported = true;
    using type = void*;
    static constexpr type to_abi(void* value) noexcept { return value; }
    static constexpr void* from_abi(type value) noexcept { return value; }
};

template <>
struct abi_mapping<std::string_view> {
    static constexpr bool supported = true;
    using type = StringView;
    static type to_abi(std::string_view value) noexcept {
        return {reinterpret_cast<const std::uint8_t*>(value.data()), value.size()};
    }
    /// A null or empty view reads as "" (spec 2.2).
    static std::string_view from_abi(const type& value) noexcept {
        if (value.ptr == nullptr || value.len == 0) return {};
        return {reinterpret_cast<const char*>(value.ptr), value.len};
    }
};

template <>
struct abi_mapping<std::span<const std::uint8_t>> {
    static constexpr bool supported = true;
    using type = Buffer;
    static type to_abi(std::span<const std::uint8_t> value) noexcept {
        // The callee only reads a parameter buffer; `cap = len` says nothing more is allocated.
        return {const_cast<std::uint8_t*>(value.data()), value.size(), value.size()};
    }
    static std::span<const std::uint8_t> from_abi(const type& value) noexcept {
        if (value.ptr == nullptr || value.len == 0) return {};
        return {value.ptr, value.len};
    }
};

// Enums too: an array of them is an array of their underlying type in C.
template <class T>
requires(!std::is_same_v<T, std::uint8_t> &&
         (detail::is_plain_abi_value<T> ||
          std::is_enum_v<T>)) struct abi_mapping<std::span<const T>> {
    static constexpr bool supported = true;
    using type = abi_array<T>;
    static constexpr type to_abi(std::span<const T> value) noexcept {
        return {value.data(), value.size()};
    }
    static constexpr std::span<const T> from_abi(const type& value) noexcept {
        if (value.items == nullptr || value.len == 0) return {};
        return {value.items, value.len};
    }
};

/// True when `T` can be a parameter or result of a typed contract function.
template <class T>
concept abi_value = abi_mapping<T>::supported;

/// The C type `T` crosses the ABI as.
template <class T>
using abi_type_t = typename abi_mapping<T>::type;

// ---- argument structs -------------------------------------------------------------------------

/// The argument struct of a function with parameters of ABI types `T...`: members `m0..mN` in
/// declaration order, laid out by C rules (standard layout). Up to 8 parameters.
template <class... T>
struct c_args;
template <>
struct c_args<> {};
template <class T0>
struct c_args<T0> {
    T0 m0;
};
template <class T0, class T1>
struct c_args<T0, T1> {
    T0 m0;
    T1 m1;
};
template <class T0, class T1, class T2>
struct c_args<T0, T1, T2> {
    T0 m0;
    T1 m1;
    T2 m2;
};
template <class T0, class T1, class T2, class T3>
struct c_args<T0, T1, T2, T3> {
    T0 m0;
    T1 m1;
    T2 m2;
    T3 m3;
};
template <class T0, class T1, class T2, class T3, class T4>
struct c_args<T0, T1, T2, T3, T4> {
    T0 m0;
    T1 m1;
    T2 m2;
    T3 m3;
    T4 m4;
};
template <class T0, class T1, class T2, class T3, class T4, class T5>
struct c_args<T0, T1, T2, T3, T4, T5> {
    T0 m0;
    T1 m1;
    T2 m2;
    T3 m3;
    T4 m4;
    T5 m5;
};
template <class T0, class T1, class T2, class T3, class T4, class T5, class T6>
struct c_args<T0, T1, T2, T3, T4, T5, T6> {
    T0 m0;
    T1 m1;
    T2 m2;
    T3 m3;
    T4 m4;
    T5 m5;
    T6 m6;
};
template <class T0, class T1, class T2, class T3, class T4, class T5, class T6, class T7>
struct c_args<T0, T1, T2, T3, T4, T5, T6, T7> {
    T0 m0;
    T1 m1;
    T2 m2;
    T3 m3;
    T4 m4;
    T5 m5;
    T6 m6;
    T7 m7;
};

/// Member `I` (`mI`) of a c_args struct.
template <std::size_t I, class Args>
[[nodiscard]] constexpr auto& arg(Args& args) noexcept {
    if constexpr (I == 0)
        return args.m0;
    else if constexpr (I == 1)
        return args.m1;
    else if constexpr (I == 2)
        return args.m2;
    else if constexpr (I == 3)
        return args.m3;
    else if constexpr (I == 4)
        return args.m4;
    else if constexpr (I == 5)
        return args.m5;
    else if constexpr (I == 6)
        return args.m6;
    else
        return args.m7;
}

/// Byte offset of member `I` of the c_args struct `Args` (its C `offsetof`).
template <std::size_t I, class Args>
[[nodiscard]] constexpr std::size_t arg_offset() noexcept {
    if constexpr (I == 0)
        return offsetof(Args, m0);
    else if constexpr (I == 1)
        return offsetof(Args, m1);
    else if constexpr (I == 2)
        return offsetof(Args, m2);
    else if constexpr (I == 3)
        return offsetof(Args, m3);
    else if constexpr (I == 4)
        return offsetof(Args, m4);
    else if constexpr (I == 5)
        return offsetof(Args, m5);
    else if constexpr (I == 6)
        return offsetof(Args, m6);
    else
        return offsetof(Args, m7);
}

// ---- functions --------------------------------------------------------------------------------

template <std::uint32_t Id, class Signature>
struct function;

/// Function `Id` of a contract, with its C++ signature `R(P...)`. The object holds only the
/// name; everything else is in the type, so passing it costs nothing.
template <std::uint32_t Id, class R, class... P>
struct function<Id, R(P...)> {
    static_assert((abi_value<P> && ...),
                  "polyplug::function: a parameter type has no ABI mapping (use integers, "
                  "floats, bool, enums, std::string_view, std::span<const T>, void* or a "
                  "standard-layout trivially copyable struct)");
    static_assert(std::is_void_v<R> || abi_value<R>,
                  "polyplug::function: the result type has no ABI mapping");
    static_assert(sizeof...(P) <= 8, "polyplug::function: at most 8 parameters");
    static_assert(((!std::is_reference_v<P> && !std::is_const_v<P>)&&...),
                  "polyplug::function: declare parameters by value (T, not const T&)");

    static constexpr std::uint32_t id = Id;
    static constexpr std::size_t arity = sizeof...(P);
    using result = R;                              ///< the C++ result type
    using params = std::tuple<P...>;               ///< the C++ parameter types
    using args_type = c_args<abi_type_t<P>...>;    ///< what `args` points to (unused if arity 0)
    using out_type = typename std::conditional_t<  ///< what `out` points to (void: no out)
        std::is_void_v<R>, std::type_identity<void>, abi_mapping<R>>::type;

    static_assert(std::is_standard_layout_v<args_type> && std::is_trivially_copyable_v<args_type>,
                  "argument structs must have C layout");

    std::string_view name;  ///< as in api.toml; informational
};

namespace detail {
template <class T>
struct is_function : std::false_type {};
template <std::uint32_t Id, class Signature>
struct is_function<function<Id, Signature>> : std::true_type {};

template <class C, std::size_t... I>
constexpr bool ids_in_order(std::index_sequence<I...>) noexcept {
    return ((std::remove_cvref_t<decltype(std::get<I>(C::functions))>::id == I) && ...);
}
template <class C, std::size_t... I>
constexpr bool all_functions(std::index_sequence<I...>) noexcept {
    return (is_function<std::remove_cvref_t<decltype(std::get<I>(C::functions))>>::value && ...);
}
}  // namespace detail

/// A contract declaration: `C::name` (guest_contract_name or host_contract_name) and
/// `C::functions`, a tuple of every polyplug::function in id order (0, 1, 2, ...).
template <class C>
concept contract_type = requires {
    C::name;
    C::functions;
}
&&(std::is_same_v<std::remove_cvref_t<decltype(C::name)>, guest_contract_name> ||
   std::is_same_v<std::remove_cvref_t<decltype(C::name)>, host_contract_name>)&&detail::
    all_functions<C>(
        std::make_index_sequence<std::tuple_size_v<std::remove_cvref_t<decltype(C::functions)>>>{});

/// Number of functions of the contract.
template <contract_type C>
[[nodiscard]] constexpr std::uint32_t function_count_of() noexcept {
    return static_cast<std::uint32_t>(
        std::tuple_size_v<std::remove_cvref_t<decltype(C::functions)>>);
}

/// True when `C::functions` lists ids 0, 1, 2, ... in order (checked wherever a contract is used).
template <contract_type C>
[[nodiscard]] constexpr bool function_ids_in_order() noexcept {
    return detail::ids_in_order<C>(std::make_index_sequence<function_count_of<C>()>{});
}

/// The contract id: guest_contract_id or host_contract_id of (name, major).
template <contract_type C>
[[nodiscard]] constexpr std::uint64_t contract_id_of() noexcept {
    if constexpr (C::name.is_host)
        return host_contract_id(C::name.name, C::name.major);
    else
        return guest_contract_id(C::name.name, C::name.major);
}

/// True for host contracts, false for guest contracts.
template <contract_type C>
[[nodiscard]] constexpr bool is_host_contract() noexcept {
    return C::name.is_host;
}

/// The type of function `I` of contract `C`.
template <contract_type C, std::size_t I>
using function_at = std::remove_cvref_t<decltype(std::get<I>(C::functions))>;

POLYPLUG_END_NAMESPACE
