// SPDX-License-Identifier: MIT
/// @file bench/bench_engines.hpp
/// The script engines' loaders that the benchmarks call, each included when it is built
/// (POLYPLUG_BENCH_LUA, _PYTHON and _JS are set by tests/bench/meson.build).
#pragma once

#if POLYPLUG_BENCH_LUA
#include <polyplug/loaders/lua.hpp>
#endif
#if POLYPLUG_BENCH_PYTHON
#include <polyplug/loaders/python.hpp>
#endif
#if POLYPLUG_BENCH_JS
#include <polyplug/loaders/js.hpp>
#endif
