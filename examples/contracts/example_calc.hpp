// SPDX-License-Identifier: MIT
// The example.calc@1 contract declared once for the typed C++ API (polyplug/contract.hpp), checked
// at compile time against the C header example_calc.h that the C examples use.
#pragma once

#include "example_calc.h"

#include <polyplug/contract.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>

namespace example {

/// example.calc@1: `add` is a wrapping 32-bit addition, `describe` a static UTF-8 text.
struct calc {
    static constexpr polyplug::guest_contract_name name{
        EXAMPLE_CALC_NAME, EXAMPLE_CALC_VERSION_MAJOR, EXAMPLE_CALC_VERSION_MINOR,
        EXAMPLE_CALC_VERSION_PATCH};
    static constexpr polyplug::function<EXAMPLE_CALC_FN_ADD,
                                        std::int32_t(std::int32_t, std::int32_t)>
        add{"add"};
    static constexpr polyplug::function<EXAMPLE_CALC_FN_DESCRIBE, std::string_view()> describe{
        "describe"};
    static constexpr std::tuple functions{add, describe};
};

// The C++ declaration and the C header describe the same contract.
static_assert(polyplug::contract_id_of<calc>() == EXAMPLE_CALC_CONTRACT_ID);
static_assert(polyplug::function_count_of<calc>() == EXAMPLE_CALC_FUNCTION_COUNT);
using calc_add_args = decltype(calc::add)::args_type;
static_assert(sizeof(calc_add_args) == sizeof(ExampleCalcAddArgs) &&
              alignof(calc_add_args) == alignof(ExampleCalcAddArgs) &&
              offsetof(calc_add_args, m0) == offsetof(ExampleCalcAddArgs, a) &&
              offsetof(calc_add_args, m1) == offsetof(ExampleCalcAddArgs, b));

}  // namespace example
