// SPDX-License-Identifier: MIT
/// @file detail/dispatch_check.hpp
/// The one check of a registered dispatch table (guest and host contracts alike): the dispatch
/// type is 0 or 1, the VM call is set, the native table exists and has no null entry.
#pragma once

#include <polyplug/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE

/// Upper bound on `NativeDispatch.function_count` accepted at registration: a corrupt count must
/// not make the runtime read gigabytes past a plugin's table.
inline constexpr std::uint32_t max_function_count = 1u << 16;

namespace detail {

/// What is wrong with a dispatch table: a code, a static description naming the field (fit for
/// `AbiError.message`), and a detail (the index or value) for messages.
struct dispatch_problem {
    errc code = errc::ok;
    std::string_view what;
    std::string detail;

    [[nodiscard]] bool ok() const noexcept { return code == errc::ok; }
};

[[nodiscard]] inline dispatch_problem check_dispatch(std::uint32_t dispatch_type,
                                                     const DispatchMechanisms& dispatch) {
    if (dispatch_type == DispatchType_VirtualMachine) {
        if (dispatch.vm.call == nullptr)
            return {errc::invalid_pointer, "null dispatch.vm.call", {}};
        return {};
    }
    if (dispatch_type != DispatchType_Native)
        return {errc::generic, "invalid dispatch_type (must be 0 or 1)",
                "dispatch_type " + std::to_string(dispatch_type)};
    const std::uint32_t count = dispatch.native.function_count;
    if (count > max_function_count)
        return {errc::generic, "function_count above the limit of 65536",
                "function_count " + std::to_string(count)};
    if (count > 0 && dispatch.native.functions == nullptr)
        return {errc::invalid_pointer,
                "null dispatch.native.functions table with function_count > 0",
                {}};
    for (std::uint32_t i = 0; i < count; ++i) {
        if (dispatch.native.functions[i] == nullptr)
            return {errc::invalid_pointer, "null entry in dispatch.native.functions",
                    "function id " + std::to_string(i)};
    }
    return {};
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
