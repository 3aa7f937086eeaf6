// SPDX-License-Identifier: MIT
// A native plugin implementing test.cli.Kitchen@2 from the C++ header that `polyplug generate
// --lang cpp` wrote from kitchen.api.toml (namespace cli_test). Hosts in C (generated C header)
// and C++ (typed client) call it; -DKITCHEN_V2 builds the version a reload swaps in.
#include "kitchen.hpp"

#include <polyplug/client.hpp>
#include <polyplug/guest.hpp>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#ifdef KITCHEN_V2
constexpr std::string_view version_tag = "v2:";
#else
constexpr std::string_view version_tag = "v1:";
#endif

namespace {

using namespace cli_test;

class kitchen_impl {
public:
    // The host's log contract is optional: a host that registers it sees every echo.
    explicit kitchen_impl(const HostApi* host) {
        std::error_code ignored;
        log_ = polyplug::client<Log>(host, ignored);
    }

    std::int64_t mix(std::int8_t a, std::uint16_t b, std::int32_t c, std::uint64_t d, float e,
                     double f, bool g, Color h) const {
        return static_cast<std::int64_t>(a) + b + c + static_cast<std::int64_t>(d) +
               static_cast<std::int64_t>(e * 2.0f) + static_cast<std::int64_t>(f * 4.0) +
               (g ? 1000 : 0) + static_cast<std::int64_t>(h);
    }

    // Embedded NULs and any UTF-8 pass through: the view's length, never a terminator, counts.
    std::string_view echo(std::string_view text) {
        last_ = std::string(version_tag) + std::string(text);
        if (log_) (void)log_.call(Log::write, std::uint8_t{3}, last_);
        return last_;
    }

    std::uint64_t checksum(std::span<const std::uint8_t> data) const {
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < data.size(); ++i) sum += data[i] * (i + 1);
        return sum;
    }

    Point sum_points(std::span<const Point> points) const {
        Point total{0, 0};
        for (const Point& p : points) {
            total.x += p.x;
            total.y += p.y;
        }
        return total;
    }

    Mixed scale(Mixed m, std::uint8_t by) const {
        return {m.tag, m.value * by, static_cast<std::uint16_t>(m.small * by)};
    }

    Record describe(Record r) {
        label_ = std::string(version_tag) +
                 std::string(reinterpret_cast<const char*>(r.label.ptr), r.label.len);
        r.flag = !r.flag;
        r.inner = {static_cast<std::uint8_t>(r.inner.a + 1), r.inner.b + 1,
                   static_cast<std::uint8_t>(r.inner.c + 1)};
        r.label = {reinterpret_cast<const std::uint8_t*>(label_.data()), label_.size()};
        r.color = Color::Blue;
        r.half = static_cast<std::int16_t>(-r.half);
        return r;
    }

    std::uint32_t lists(polyplug::abi_array<std::uint8_t> bytes, std::span<const StringView> words,
                        std::span<const Color> colors, polyplug::abi_array<void*> ptrs,
                        std::span<const bool> flags, std::span<const Buffer> bufs) const {
        std::uint64_t total = bytes.len;
        for (const StringView& w : words) total += w.len;
        for (Color c : colors) total += static_cast<std::uint16_t>(c);
        for (std::size_t i = 0; i < ptrs.len; ++i) total += ptrs.items[i] != nullptr ? 1 : 0;
        for (bool f : flags) total += f ? 1 : 0;
        for (const Buffer& b : bufs) total += b.len;
        return static_cast<std::uint32_t>(total);
    }

    // Throws on a null target: the glue turns the exception into AbiError{Panic, what()}.
    Access grant(Access requested, void* target) const {
        if (target == nullptr) throw std::invalid_argument("grant: no target — nichts zu tun");
        return requested | Access::Read;
    }

    void reset() { last_.clear(); }

private:
    polyplug::client<Log> log_;
    std::string last_;
    std::string label_;
};

}  // namespace

POLYPLUG_EXPORT_BUNDLE(
    "kitchen",
    polyplug::implementation<Kitchen, kitchen_impl, &kitchen_impl::mix, &kitchen_impl::echo,
                             &kitchen_impl::checksum, &kitchen_impl::sum_points,
                             &kitchen_impl::scale, &kitchen_impl::describe, &kitchen_impl::lists,
                             &kitchen_impl::grant, &kitchen_impl::reset>);
