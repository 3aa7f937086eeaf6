// SPDX-License-Identifier: MIT
/// @file odr_a.cpp
/// ODR test, first TU: the umbrella header in two TUs of one program links and behaves.
#include <polyplug/polyplug.hpp>

std::uint64_t odr_revision_from_a() {
    polyplug::runtime rt;
    return rt.revision() + polyplug::guest_contract_id("odr", 1);
}
