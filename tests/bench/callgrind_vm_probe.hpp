// SPDX-License-Identifier: MIT
/// @file bench/callgrind_vm_probe.hpp
/// callgrind_probe's VM probes (callgrind_vm_probe.cpp), in a unit of their own so that the
/// script engines' headers are compiled once and only there.
#pragma once

#include <cstdint>
#include <filesystem>

namespace bench {

/// For each script engine, prints "vm <engine>: built" or "vm <engine>: not built (<why>)" on
/// stdout (callgrind_check.py reads it to tell a skipped row from a missing one), and for each
/// engine built runs its probes (add through the runtime, add by the raw embedding call) 1, N and
/// 2N times, as callgrind_probe runs its own. Bundles are written under `work`. Throws if a call
/// fails or returns a wrong sum.
void run_vm_probes(const std::filesystem::path& work, std::uint64_t calls);

}  // namespace bench
