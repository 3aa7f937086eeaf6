// SPDX-License-Identifier: MIT
// A native plugin written with the typed C++ API: example.calc@1 as a plain class. The trampolines,
// the table, the interface and both entry points come from polyplug/guest.hpp.
#include "example_calc.hpp"

#include <polyplug/guest.hpp>

#include <cstdint>
#include <string_view>

namespace {

class typed_calc {
public:
    // Wrapping add, as the contract says: unsigned arithmetic wraps, and converting back is
    // modular since C++20.
    std::int32_t add(std::int32_t a, std::int32_t b) const noexcept {
        return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) +
                                         static_cast<std::uint32_t>(b));
    }
    // A view of static text: it outlives the call, as results that are views must.
    std::string_view describe() const noexcept { return "typed C++ calc"; }
};

}  // namespace

POLYPLUG_EXPORT_BUNDLE(
    "typed-calc",
    polyplug::implementation<example::calc, typed_calc, &typed_calc::add, &typed_calc::describe>);
