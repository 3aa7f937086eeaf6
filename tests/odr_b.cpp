// SPDX-License-Identifier: MIT
/// @file odr_b.cpp
/// ODR test, second TU and main.
#include <polyplug/polyplug.hpp>

#include <cstdio>

std::uint64_t odr_revision_from_a();

int main() {
    polyplug::runtime rt;
    const bool same =
        odr_revision_from_a() == rt.revision() + polyplug::guest_contract_id("odr", 1);
    std::puts(same ? "odr: both TUs agree" : "odr: TUs disagree");
    return same ? 0 : 1;
}
