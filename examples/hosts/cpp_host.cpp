// SPDX-License-Identifier: MIT
// A C++ host: load bundles with polyplug::runtime, call every example.calc@1 provider, unload.
#include "example_calc.h"

#include <polyplug/runtime.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

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
    for (int i = 1; i < argc; ++i) rt.load_bundle(argv[i]);  // throws polyplug::error saying why

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
    if (providers.size() != static_cast<std::size_t>(argc - 1)) {  // each bundle provides one
        std::fprintf(stderr, "expected %d providers, found %zu\n", argc - 1, providers.size());
        ++failures;
    }
    for (const auto& bundle : rt.bundles()) rt.unload_bundle(bundle.id);
    return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "cpp_host: %s\n", e.what());
    return 1;
}
