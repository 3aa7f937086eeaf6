// SPDX-License-Identifier: MIT
/// @file detail/toml_names.hpp
/// How TOML value types are named in error messages ("expected a string, found an integer"),
/// shared by the manifest and contract-file parsers.
#pragma once

#include <polyplug/config.hpp>

#include <toml++/toml.h>

#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

[[nodiscard]] constexpr std::string_view toml_type_name(toml::node_type type) noexcept {
    switch (type) {
        case toml::node_type::none:
            return "nothing";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
    }
    return "an unknown type";
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
