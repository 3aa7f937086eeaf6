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

/// How the runtime's cold code (manifest reading, staging, the ELF check, the HostApi thunks) is
/// compiled. 1 (the default): header-only, every translation unit that makes a runtime compiles
/// it. 0: compiled once: the headers a host includes declare it, and exactly one translation
/// unit of the program defines it by including <polyplug/implementation.hpp> (Meson:
/// `polyplug_once_dep`, which brings that unit as a static library). Calls, lookups and every
/// plugin-side header are the same in both modes. See docs/INTEGRATION.md, "Compile time".
#ifndef POLYPLUG_HEADER_ONLY
#define POLYPLUG_HEADER_ONLY 1
#endif

/// Marks a function defined in an implementation header (detail/*_impl.hpp): inline where the
/// header-only mode includes it everywhere, an ordinary external definition in compiled-once mode.
#if POLYPLUG_HEADER_ONLY
#define POLYPLUG_COMPILED_ONCE_FN inline
#else
#define POLYPLUG_COMPILED_ONCE_FN
#endif

// Everything lives in an inline, version-stamped namespace so that a host and a plugin built
// against different polyplug releases fail to link instead of silently mixing layouts (ODR).
// The compiled-once mode has a namespace of its own: a program that mixes the two modes gets two
// distinct sets of types and functions, never one function defined both inline and out of line.
#if POLYPLUG_HEADER_ONLY
#define POLYPLUG_BEGIN_NAMESPACE \
    namespace polyplug {         \
    inline namespace v0 {
#else
#define POLYPLUG_BEGIN_NAMESPACE \
    namespace polyplug {         \
    inline namespace v0_once {
#endif
#define POLYPLUG_END_NAMESPACE \
    }                          \
    }

#if defined(__GNUC__) || defined(__clang__)
#define POLYPLUG_VISIBLE __attribute__((visibility("default")))
#define POLYPLUG_NOINLINE __attribute__((noinline))
#define POLYPLUG_ALWAYS_INLINE inline __attribute__((always_inline))
// For code that reads raw memory on purpose: a thread's own stack, redzones included (ASan), and
// words of it that other threads may write meanwhile (TSan), such as an atomic that a local
// shares with workers. The reader only looks for a value and tolerates any it sees.
#define POLYPLUG_NO_SANITIZE_MEMORY __attribute__((no_sanitize("address", "thread")))
#else
#define POLYPLUG_VISIBLE
#define POLYPLUG_NOINLINE
#define POLYPLUG_ALWAYS_INLINE inline
#define POLYPLUG_NO_SANITIZE_MEMORY
#endif
