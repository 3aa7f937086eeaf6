// SPDX-License-Identifier: MIT
/// @file implementation.hpp
/// The runtime's cold code in one place, for the compiled-once mode (config.hpp): exactly one
/// translation unit of a program built with POLYPLUG_HEADER_ONLY=0 includes this header, and
/// every other one includes only what it calls. Meson's `polyplug_once_dep` brings such a unit
/// as a static library; without Meson, compile one file holding
///
/// @code
/// #include <polyplug/implementation.hpp>
/// @endcode
///
/// with -DPOLYPLUG_HEADER_ONLY=0 like the rest of the program. In header-only mode this header
/// adds nothing: the definitions are already inline where they are needed.
#pragma once

#include <polyplug/config.hpp>

#include <polyplug/detail/core_calls_impl.hpp>
#include <polyplug/detail/native_loader_impl.hpp>
