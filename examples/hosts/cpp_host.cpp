// SPDX-License-Identifier: MIT
// A C++ host: discover and load the bundles of plugin directories, call every example.calc@1
// provider, unload.
#include "example_calc.h"

#include <polyplug/runtime.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace {

// The plugin name the provider registered with, from the runtime's metadata.
std::string plugin_name(const polyplug::runtime& rt, GuestContractHandle handle) {
    for (const auto& bundle : rt.bundles())
        for (const auto& contract : bundle.contracts)
            if (polyplug_handle_pack(contract.handle) == polyplug_handle_pack(handle))
                return contract.plugin_name;
    return "?";
}

}  // namespace

int main(int argc, char** argv) try {
    constexpr std::uint64_t calc_id =
        polyplug::guest_contract_id(EXAMPLE_CALC_NAME, EXAMPLE_CALC_VERSION_MAJOR);
    polyplug::runtime rt;
    // Discovery: every subdirectory of the given plugin directories that holds a manifest.toml,
    // loaded providers-first. Throws polyplug::error saying why if the set cannot be loaded.
    const std::vector<std::filesystem::path> plugin_dirs(argv + 1, argv + argc);
    const polyplug::load_report report = rt.load_dirs(plugin_dirs);
    for (const auto& skipped : report.skipped)
        std::fprintf(stderr, "skipped: %s\n", skipped.problem.message().c_str());

    const HostApi* host = rt.host_api();
    const auto providers = rt.find_all(calc_id, EXAMPLE_CALC_VERSION_MAJOR);
    int failures = 0;
    for (const GuestContractHandle handle : providers) {
        const std::string name = plugin_name(rt, handle);
        const GuestContractInterface* iface = rt.resolve(handle);
        GuestContractInstance instance{};
        host->create_guest_instance(host, iface, nullptr, &instance);  // stateless: {NULL, id}

        const ExampleCalcAddArgs args{2, 40};
        std::int32_t sum = 0;
        StringView text{};
        const AbiError add_err = polyplug::call(*iface, instance, EXAMPLE_CALC_FN_ADD, &args, &sum);
        const AbiError describe_err =
            polyplug::call(*iface, instance, EXAMPLE_CALC_FN_DESCRIBE, nullptr, &text);
        host->destroy_guest_instance(host, iface, instance);

        const std::string_view description(reinterpret_cast<const char*>(text.ptr), text.len);
        std::printf("%s: add(2, 40) = %d, describe() = \"%.*s\"\n", name.c_str(), sum,
                    static_cast<int>(description.size()), description.data());
        if (instance.contract_id != calc_id || add_err.code != AbiErrorCode_Ok || sum != 42 ||
            describe_err.code != AbiErrorCode_Ok || !description.ends_with(" calc")) {
            std::fprintf(stderr, "%s: unexpected result\n", name.c_str());
            ++failures;
        }
    }
    // Every loaded bundle that registered example.calc must have been found (cpp-counter, the
    // stateful example, provides another contract).
    std::size_t calc_bundles = 0;
    for (const polyplug::bundle_info& bundle : rt.bundles())
        for (const polyplug::contract_info& contract : bundle.contracts)
            calc_bundles += contract.contract_id == calc_id ? 1 : 0;
    if (providers.empty() || providers.size() != calc_bundles) {
        std::fprintf(stderr, "expected %zu providers, found %zu\n", calc_bundles, providers.size());
        ++failures;
    }
    for (const auto& bundle : rt.bundles()) rt.unload_bundle(bundle.id);
    return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "cpp_host: %s\n", e.what());
    return 1;
}
