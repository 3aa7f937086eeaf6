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

// describe() of bundle `name`'s provider, through an interface pointer resolved once.
std::string describe(const GuestContractInterface* iface) {
    StringView text{};
    const AbiError err =
        polyplug::call(*iface, {nullptr, calc_id}, EXAMPLE_CALC_FN_DESCRIBE, nullptr, &text);
    if (err.code != AbiErrorCode_Ok) return "<error " + std::to_string(err.code) + ">";
    return std::string(reinterpret_cast<const char*>(text.ptr), text.len);
}

// Hot reload, live: swap `library` in as the bundle's new code (write beside, then rename: a
// mapped library must never be rewritten in place), reload, and call through the interface
// pointer resolved before the reload. Then put the original back and reload again, so the
// build tree is as it was. Returns the number of failures.
int hot_reload(polyplug::runtime& rt, const std::string& name, const fs::path& library) {
    const auto bundle = rt.bundle(polyplug::bundle_id(name));
    if (!bundle || bundle->contracts.empty()) {
        std::printf("\nhot reload: bundle '%s' is not loaded\n", name.c_str());
        return 1;
    }
    const GuestContractInterface* cached = rt.resolve(bundle->contracts.front().handle);
    polyplug::manifest m;  // the manifest names the library file the bundle loads
    if (const polyplug::status st = polyplug::read_manifest(bundle->dir, m); !st) {
        std::printf("\nhot reload: %s\n", st.message().c_str());
        return 1;
    }
    const fs::path installed = bundle->dir / m.file;
    const fs::path backup = installed.string() + ".v1";
    std::printf("\nhot reload of bundle '%s' while the host runs:\n", name.c_str());
    std::printf("  before: describe() = \"%s\"\n", describe(cached).c_str());
    int failures = 0;
    try {
        fs::copy_file(installed, backup, fs::copy_options::overwrite_existing);
        fs::copy_file(library, installed.string() + ".new", fs::copy_options::overwrite_existing);
        fs::rename(installed.string() + ".new", installed);
        rt.reload_bundle(bundle->dir);
        const std::string after = describe(cached);
        std::printf("  after:  describe() = \"%s\" (same interface pointer, new code)\n",
                    after.c_str());
        if (after.find("version 2") == std::string::npos) ++failures;
    } catch (const std::exception& e) {
        std::printf("  reload failed: %s\n", e.what());
        ++failures;
    }
    std::error_code ec;
    fs::rename(backup, installed, ec);  // back to version 1, and reload it
    if (!ec) {
        rt.reload_bundle(bundle->dir, ec);
        std::printf("  restored: describe() = \"%s\"\n", describe(cached).c_str());
    }
    return failures + (ec ? 1 : 0);
}

int main(int argc, char** argv) try {
    std::printf("polyplug demo: one contract (%s@1), plugins in several languages\n",
                EXAMPLE_CALC_NAME);
    std::printf("=====================================================================\n\n");

    // Arguments: plugin directories, and optionally `--reload NAME=LIBRARY`: after the calls,
    // swap LIBRARY in as bundle NAME's new code and hot-reload it while the demo keeps running.
    std::vector<fs::path> plugin_dirs;
    std::string reload_name;
    fs::path reload_library;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--reload" && i + 1 < argc &&
            std::string(argv[i + 1]).find('=') != std::string::npos) {
            const std::string spec = argv[++i];
            reload_name = spec.substr(0, spec.find('='));
            reload_library = spec.substr(spec.find('=') + 1);
        } else {
            plugin_dirs.emplace_back(arg);
        }
    }
    polyplug::runtime_options options;
    options.hot_reload_enabled = !reload_name.empty();
    options.on_reload = [](const ReloadPhase& phase) {
        static const char* const names[] = {"Preparing", "Reloaded", "Failed", "Unloading"};
        std::printf("    [on_reload] %s %.*s\n",
                    phase.phase_type < 4 ? names[phase.phase_type] : "?",
                    static_cast<int>(phase.bundle_name.len),
                    reinterpret_cast<const char*>(phase.bundle_name.ptr));
    };
    polyplug::runtime rt(options);
    int failures = 0;
    // Discovery: each argument is a plugin directory whose subdirectories hold bundles; the
    // runtime checks their dependencies and loads them providers-first.
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

    if (!reload_name.empty()) failures += hot_reload(rt, reload_name, reload_library);

    for (const polyplug::bundle_info& bundle : rt.bundles()) rt.unload_bundle(bundle.id);
    std::printf("\n%zu bundles loaded, %d calls succeeded\n", bundles.size(), succeeded);
    if (failures != 0) std::printf("%d failures (see above)\n", failures);
    return failures == 0 && !bundles.empty() ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "demo: %s\n", e.what());
    return 1;
}
