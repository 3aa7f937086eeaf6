// SPDX-License-Identifier: MIT
/// @file dotnet_loader_module.cpp
/// libpolyplug-loader-dotnet.so through the C ABI only: a runtime from libpolyplug.so, the .NET
/// loader registered at run time from polyplug_loader_dotnet_create, a C# bundle (compiled here
/// with mcs into a temporary directory) loaded, called from two threads, reloaded and unloaded,
/// the runtime destroyed. Exit code 0 on success.
#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/ids.hpp>
#include <polyplug/loaders/dotnet_module.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <unistd.h>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

std::string last_error(const HostApi* host) {
    std::string text(host->get_error_len(host), '\0');
    text.resize(
        host->get_last_error(host, reinterpret_cast<std::uint8_t*>(text.data()), text.size()));
    return text;
}

void write(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

/// Compiles Calc.cs (value() returns `value`) into `dir`/Calc.dll.
bool compile(const std::filesystem::path& dir, int value) {
    write(dir / "Calc.cs",
          "namespace test.cs { public class Calc {\n"
          "    public int add(int a, int b) { return unchecked(a + b); }\n"
          "    public int value() { return " +
              std::to_string(value) + "; }\n} }\n");
    const std::string command = std::string(POLYPLUG_MCS) +
                                " -nologo -target:library -out:" + (dir / "Calc.dll").string() +
                                " " + (dir / "Calc.cs").string();
    return std::system(command.c_str()) == 0;
}

}  // namespace

int main() {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() /
        ("polyplug-dotnet-module-" + std::to_string(static_cast<long>(::getpid())));
    std::filesystem::create_directories(dir);
    const std::uint64_t bundle = polyplug::bundle_id("cs-calc");
    write(dir / "manifest.toml",
          "id = \"" + polyplug::format_id(bundle) +
              "\"\nname = \"cs-calc\"\nversion = \"1.0.0\"\n"
              "loader = \"dotnet\"\nfile = \"Calc.dll\"\napi = \"api.toml\"\n"
              "provides = [\"test.cs.Calc@1\"]\n"
              "function_count = { \"test.cs.Calc@1\" = 2 }\n");
    write(dir / "api.toml",
          "[[guest_contract]]\nname = \"test.cs.Calc\"\nversion = \"1.0\"\nfunctions = [\n"
          "  { name = \"add\", params = [{ name = \"a\", type = \"i32\" }, { name = \"b\", type = "
          "\"i32\" }], return = \"i32\" },\n  { name = \"value\", return = \"i32\" },\n]\n");
    check(compile(dir, 1), "mcs compiles Calc.cs");

    RuntimeConfig config{};
    config.compatibility = Compatibility_Strict;
    config.hot_reload_enabled = true;
    config.log_max_level = LogLevel_Warn;
    const HostApi* host = polyplug_runtime_create(&config);
    check(host != nullptr, "polyplug_runtime_create");
    if (host == nullptr) return 1;
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    host->register_loader(host, polyplug_loader_dotnet_create(), &err);
    check(err.code == AbiErrorCode_Ok, "register_loader(polyplug_loader_dotnet_create())");

    const std::string path = dir.string();
    host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(path.data()), path.size(), &err);
    if (err.code != AbiErrorCode_Ok) std::fprintf(stderr, "%s\n", last_error(host).c_str());
    check(err.code == AbiErrorCode_Ok, "load_bundle(cs-calc)");

    const std::uint64_t contract = polyplug::guest_contract_id("test.cs.Calc", 1);
    const GuestContractInterface* iface =
        host->resolve_guest_contract(host, host->find_guest_contract(host, contract, 1));
    check(iface != nullptr, "test.cs.Calc is registered");
    if (iface != nullptr) {
        check(iface->dispatch_type == DispatchType_VirtualMachine, "VM dispatch");
        struct pair {
            std::int32_t a, b;
        };
        const auto add_on_a_thread = [&] {
            std::int32_t sum = 0;
            const pair args{2, 40};
            const AbiError e =
                polyplug_call_guest(iface, {nullptr, contract}, 0, &args, &sum, nullptr);
            return e.code == AbiErrorCode_Ok && sum == 42;
        };
        bool first = false, second = false;
        std::thread one([&] { first = add_on_a_thread(); });
        std::thread two([&] { second = add_on_a_thread(); });
        one.join();
        two.join();
        check(first && second, "add(2, 40) is 42 from two threads");

        check(compile(dir, 2), "mcs compiles version 2");
        host->reload_bundle(host, reinterpret_cast<const std::uint8_t*>(path.data()), path.size(),
                            &err);
        if (err.code != AbiErrorCode_Ok) std::fprintf(stderr, "%s\n", last_error(host).c_str());
        check(err.code == AbiErrorCode_Ok, "reload_bundle(cs-calc)");
        std::int32_t value = 0;
        err = polyplug_call_guest(iface, {nullptr, contract}, 1, nullptr, &value, nullptr);
        check(err.code == AbiErrorCode_Ok && value == 2, "value() is 2 after the reload");
    }
    host->unload_bundle(host, bundle, &err);
    check(err.code == AbiErrorCode_Ok, "unload_bundle");
    polyplug_runtime_destroy(host);
    std::filesystem::remove_all(dir);
    if (failures == 0) std::printf("dotnet loader module: ok\n");
    return failures == 0 ? 0 : 1;
}
