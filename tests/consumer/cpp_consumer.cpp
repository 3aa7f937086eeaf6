// SPDX-License-Identifier: MIT
/// @file cpp_consumer.cpp
/// A C++ host that got polyplug from a Meson subproject or pkg-config.
#include <polyplug/polyplug.hpp>

#include <cstdio>

int main() {
    polyplug::runtime rt;
    std::error_code ec;
    rt.load_bundle("/no/such/bundle", ec);
    std::printf("cpp_consumer: load of a missing bundle -> %s\n",
                ec ? "error (expected)" : "success?!");
    return ec ? 0 : 1;
}
