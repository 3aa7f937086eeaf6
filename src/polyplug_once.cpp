// SPDX-License-Identifier: MIT
// The one translation unit of the compiled-once mode (include/polyplug/config.hpp): built into
// the static library behind Meson's polyplug_once_dep with POLYPLUG_HEADER_ONLY=0, it defines the
// runtime's cold code that hosts in that mode only declare.
#include <polyplug/implementation.hpp>
