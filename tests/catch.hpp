// SPDX-License-Identifier: MIT
/// @file catch.hpp
/// The one include of Catch2 v2 for the suites (moving to v3 means changing only this file).
#pragma once

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#include <catch2/catch.hpp>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
