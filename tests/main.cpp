// SPDX-License-Identifier: MIT
/// @file main.cpp
/// The only TU that defines the Catch2 runner.
#define CATCH_CONFIG_MAIN
#include "catch.hpp"
