// SPDX-License-Identifier: MIT
// test.parity.Kit@1 in C++: a plain class over the header `polyplug generate --lang cpp` wrote
// from parity.api.toml (namespace parity). Views it returns point into the instance and stay
// valid until the next call on it.
#include "parity.hpp"

#include <polyplug/guest.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace parity;

constexpr Color all_colors[] = {Color::Red, Color::Green, Color::Blue};

class kit {
public:
    std::int32_t add_i32(std::int32_t a, std::int32_t b) const {
        return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) +
                                         static_cast<std::uint32_t>(b));
    }
    Ints echo_ints(Ints v) const { return v; }
    double scale(float x, double y) const { return static_cast<double>(x) * 2.0 + y; }
    bool differ(bool a, bool b) const { return a != b; }
    std::string_view greet(std::string_view name) {
        greeting_ = "hello, " + std::string(name) + "!";
        return greeting_;
    }
    std::span<const std::uint8_t> reverse(std::span<const std::uint8_t> data) {
        reversed_.assign(data.rbegin(), data.rend());
        return reversed_;
    }
    Point total(std::span<const Point> points) const {
        std::uint32_t x = 0, y = 0;
        for (const Point& p : points) {
            x += static_cast<std::uint32_t>(p.x);
            y += static_cast<std::uint32_t>(p.y);
        }
        return {static_cast<std::int32_t>(x), static_cast<std::int32_t>(y)};
    }
    Shape describe(Shape s) {
        label_ = std::string(reinterpret_cast<const char*>(s.label.ptr), s.label.len) + "!";
        s.tag = static_cast<std::uint8_t>(s.tag + 1);
        s.weight *= 2;
        s.color = next(s.color);
        s.label = {reinterpret_cast<const std::uint8_t*>(label_.data()), label_.size()};
        return s;
    }
    std::span<const Color> colors(std::uint32_t n) const {
        if (n > 3) throw std::out_of_range("n too large: " + std::to_string(n));
        return {all_colors, n};
    }
    void fail(std::int32_t code) const {
        throw std::runtime_error("parity failure " + std::to_string(code));
    }

private:
    static Color next(Color c) {
        switch (c) {
            case Color::Red:
                return Color::Green;
            case Color::Green:
                return Color::Blue;
            case Color::Blue:
                return Color::Red;
        }
        throw std::invalid_argument("unknown color");
    }

    std::string greeting_;
    std::vector<std::uint8_t> reversed_;
    std::string label_;
};

}  // namespace

POLYPLUG_EXPORT_BUNDLE(
    "parity-cpp", polyplug::implementation<Kit, kit, &kit::add_i32, &kit::echo_ints, &kit::scale,
                                           &kit::differ, &kit::greet, &kit::reverse, &kit::total,
                                           &kit::describe, &kit::colors, &kit::fail>);
