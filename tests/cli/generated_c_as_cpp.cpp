// SPDX-License-Identifier: MIT
// The header `polyplug generate --lang c` writes is also valid C++ (extern "C", the same layout
// asserts through POLYPLUG_ABI_ASSERT): compiling this file is the test.
#include "kitchen.h"

static_assert(sizeof(Mixed) == 24 && offsetof(Mixed, small) == 16);
