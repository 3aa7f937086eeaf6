// SPDX-License-Identifier: MIT
// A C++ host using the typed API: the contract is example::calc (example_calc.hpp), calls take and
// return C++ values, instances are RAII, failures are polyplug::error or polyplug::status.
#include "example_calc.hpp"

#include <polyplug/client.hpp>
#include <polyplug/runtime.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string_view>
#include <vector>

using example::calc;

int main(int argc, char** argv) try {
    polyplug::runtime rt;
    const std::vector<std::filesystem::path> plugin_dirs(argv + 1, argv + argc);
    const polyplug::load_report report = rt.load_dirs(plugin_dirs);
    for (const auto& skipped : report.skipped)
        std::fprintf(stderr, "skipped: %s\n", skipped.problem.message().c_str());

    int failures = 0;
    // Every provider, one typed client each (the instance is destroyed with the client).
    const auto providers = rt.find_all(polyplug::contract_id_of<calc>(), calc::name.major);
    for (const GuestContractHandle handle : providers) {
        polyplug::client<calc> c(rt, handle);
        const std::int32_t sum = c.call(calc::add, 2, 40);
        const std::int32_t wrapped = c.call(calc::add, INT32_MAX, 1);
        const std::string_view text = c.call(calc::describe);
        std::printf("%.*s: add(2, 40) = %d, add(INT32_MAX, 1) = %d\n",
                    static_cast<int>(text.size()), text.data(), sum, wrapped);
        if (sum != 42 || wrapped != INT32_MIN || !text.ends_with(" calc")) {
            std::fprintf(stderr, "unexpected result\n");
            ++failures;
        }
    }

    // The first provider, resolved again only when the runtime's revision changes, and the
    // non-throwing form of a call.
    polyplug::client<calc, polyplug::resolve_policy::on_revision> first(rt);
    std::int32_t out = 0;
    if (const polyplug::status st = first.try_call(calc::add, out, 20, 22); !st || out != 42) {
        std::fprintf(stderr, "try_call: %s (%d)\n", st.message().c_str(), out);
        ++failures;
    }

    bool typed_found = false;
    for (const auto& bundle : rt.bundles()) typed_found |= bundle.name == "typed-calc";
    if (providers.size() < 2 || !typed_found) {
        std::fprintf(stderr, "expected typed-calc among several providers, found %zu\n",
                     providers.size());
        ++failures;
    }
    return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "typed_host: %s\n", e.what());
    return 1;
}
