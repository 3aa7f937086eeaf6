// SPDX-License-Identifier: MIT
/// @file detail/host_alloc.hpp
/// HostApi.alloc / HostApi.free: the one allocator for memory that crosses the boundary.
#pragma once

#include <polyplug/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

[[nodiscard]] constexpr bool is_power_of_two(std::size_t value) noexcept {
    return value != 0 && (value & (value - 1)) == 0;
}

/// NULL for size 0, a non-power-of-two alignment, or exhaustion. Small alignments come from
/// malloc; larger ones from aligned_alloc with the size rounded up, as C requires. Both are
/// released by std::free, so a caller who passes a slightly wrong size to host_free cannot cause
/// undefined behaviour through us.
[[nodiscard]] inline std::uint8_t* host_alloc(std::size_t size, std::size_t align) noexcept {
    if (size == 0 || !is_power_of_two(align)) return nullptr;
    if (align <= alignof(std::max_align_t)) return static_cast<std::uint8_t*>(std::malloc(size));
    if (size > SIZE_MAX - align) return nullptr;
    const std::size_t rounded = (size + align - 1) & ~(align - 1);
    return static_cast<std::uint8_t*>(std::aligned_alloc(align, rounded));
}

/// No-op for NULL or size 0. An invalid alignment leaks rather than risking a bad free.
inline void host_free(std::uint8_t* ptr, std::size_t size, std::size_t align) noexcept {
    if (ptr == nullptr || size == 0 || !is_power_of_two(align)) return;
    std::free(ptr);
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
