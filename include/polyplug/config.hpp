// SPDX-License-Identifier: MIT
/// @file config.hpp
/// The one place polyplug's macros come from: the ABI namespace, attributes, feature switches.
#pragma once

#include <polyplug/abi.h>

#if __cplusplus < 202002L && !defined(_MSVC_LANG)
#error "polyplug's C++ headers need C++20 (-std=c++20)"
#endif

/// Library version (of this C++ implementation; the C ABI it speaks is POLYPLUG_ABI_VERSION).
#define POLYPLUG_VERSION_MAJOR 0
#define POLYPLUG_VERSION_MINOR 1
#define POLYPLUG_VERSION_PATCH 0

// Everything lives in an inline, version-stamped namespace so that a host and a plugin built
// against different polyplug releases fail to link instead of silently mixing layouts (ODR).
#define POLYPLUG_BEGIN_NAMESPACE \
    namespace polyplug {         \
    inline namespace v0 {
#define POLYPLUG_END_NAMESPACE \
    }                          \
    }

#if defined(__GNUC__) || defined(__clang__)
#define POLYPLUG_VISIBLE __attribute__((visibility("default")))
#define POLYPLUG_NOINLINE __attribute__((noinline))
#define POLYPLUG_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define POLYPLUG_VISIBLE
#define POLYPLUG_NOINLINE
#define POLYPLUG_ALWAYS_INLINE inline
#endif
