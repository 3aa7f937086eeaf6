// SPDX-License-Identifier: MIT
// The tour run by scripts/demo.sh: load the example bundles, show what they registered, call them.
#include "example_calc.h"

#include <polyplug/runtime.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t calc_id =
    polyplug::guest_contract_id(EXAMPLE_CALC_NAME, EXAMPLE_CALC_VERSION_MAJOR);

std::string_view view(StringView text) {
    return text.ptr == nullptr
               ? std::string_view{}
               : std::string_view(reinterpret_cast<const char*>(text.ptr), text.len);
}

// One call through the provider's table; prints it and reports whether it did what was expected.
bool call_add(const GuestContractInterface* iface, GuestContractInstance instance, std::int32_t a,
              std::int32_t b, std::int32_t expected) {
    const ExampleCalcAddArgs args{a, b};
    std::int32_t sum = 0;
    AbiError err{AbiErrorCode_Ok, {}};
    const GuestContractFn add = polyplug::guest_function(*iface, EXAMPLE_CALC_FN_ADD);
    if (add != nullptr) add(instance, &args, &sum, &err);
    const bool ok = add != nullptr && err.code == AbiErrorCode_Ok && sum == expected;
    std::printf("    add(%d, %d) = %d%s\n", a, b, sum, ok ? "" : "   <-- FAILED");
    return ok;
}

bool call_describe(const GuestContractInterface* iface, GuestContractInstance instance) {
    StringView text{};
    AbiError err{AbiErrorCode_Ok, {}};
    const GuestContractFn describe = polyplug::guest_function(*iface, EXAMPLE_CALC_FN_DESCRIBE);
    if (describe != nullptr) describe(instance, nullptr, &text, &err);
    const bool ok = describe != nullptr && err.code == AbiErrorCode_Ok && text.len > 0;
    std::printf("    describe() = \"%.*s\"%s\n", static_cast<int>(view(text).size()),
                view(text).data(), ok ? "" : "   <-- FAILED");
    return ok;
}

}  // namespace

int main(int argc, char** argv) try {
    std::printf("polyplug demo: one contract (%s@1), plugins in several languages\n",
                EXAMPLE_CALC_NAME);
    std::printf("=====================================================================\n\n");

    polyplug::runtime rt;
    int failures = 0;
    // Discovery: each argument is a plugin directory whose subdirectories hold bundles; the
    // runtime checks their dependencies and loads them providers-first.
    const std::vector<fs::path> plugin_dirs(argv + 1, argv + argc);
    std::error_code ec;
    const polyplug::load_report report = rt.load_dirs(plugin_dirs, ec);
    if (ec) {
        std::printf("could not load the plugin directories: %s\n", rt.last_error().c_str());
        ++failures;
    }
    for (const polyplug::discovery_diagnostic& skipped : report.skipped) {
        std::printf("skipped %s: %s\n", skipped.path.c_str(), skipped.problem.message().c_str());
        ++failures;
    }

    const auto bundles = rt.bundles();
    std::map<std::uint64_t, std::string> plugin_names;  // packed handle -> registered plugin name
    for (const polyplug::bundle_info& bundle : bundles) {
        std::printf("bundle %s %s (loader \"%s\", id %s)\n  from %s\n", bundle.name.c_str(),
                    bundle.version.to_string().c_str(), bundle.loader.c_str(),
                    polyplug::format_id(bundle.id).c_str(), bundle.dir.c_str());
        for (const polyplug::contract_info& contract : bundle.contracts) {
            plugin_names[polyplug_handle_pack(contract.handle)] = contract.plugin_name;
            std::printf("  provides %s@%u as plugin \"%s\" (version %s, %u functions)\n",
                        contract.contract_name.c_str(), contract.version.major,
                        contract.plugin_name.c_str(), contract.version.to_string().c_str(),
                        contract.function_count);
        }
    }

    std::printf("\ncalling every provider of %s@1:\n", EXAMPLE_CALC_NAME);
    const HostApi* host = rt.host_api();
    int succeeded = 0;
    for (const GuestContractHandle handle : rt.find_all(calc_id, EXAMPLE_CALC_VERSION_MAJOR)) {
        const GuestContractInterface* iface = rt.resolve(handle);
        GuestContractInstance instance{};
        host->create_guest_instance(host, iface, nullptr, &instance);
        std::printf("  %s:\n", plugin_names[polyplug_handle_pack(handle)].c_str());
        const bool results[] = {
            call_add(iface, instance, 2, 40, 42),
            call_add(iface, instance, INT32_MAX, 1, INT32_MIN),  // the contract says: wrapping
            call_describe(iface, instance),
        };
        host->destroy_guest_instance(host, iface, instance);
        for (const bool ok : results) (ok ? succeeded : failures) += 1;
    }

    for (const polyplug::bundle_info& bundle : bundles) rt.unload_bundle(bundle.id);
    std::printf("\n%zu bundles loaded, %d calls succeeded\n", bundles.size(), succeeded);
    if (failures != 0) std::printf("%d failures (see above)\n", failures);
    return failures == 0 && !bundles.empty() ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "demo: %s\n", e.what());
    return 1;
}
