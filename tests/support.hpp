// SPDX-License-Identifier: MIT
/// @file support.hpp
/// Test helpers: temporary bundle directories built from fixture plugins, a C test loader that
/// runs a lambda inside a bundle's init window, and log capture.
#pragma once

#include "catch.hpp"

#include <polyplug/runtime.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace test_support {

namespace fs = std::filesystem;

/// A directory under the system temp dir, removed (with its contents) on destruction.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<unsigned> counter{0};
        std::random_device rd;
        path_ = fs::temp_directory_path() /
                ("polyplug-test-" + std::to_string(rd()) + "-" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] const fs::path& path() const noexcept { return path_; }

private:
    fs::path path_;
};

inline void write_file(const fs::path& path, std::string_view text) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    REQUIRE(out.good());
}

/// True when `path`'s file is mapped into this process (a line of /proc/self/maps names it).
inline bool is_mapped(const fs::path& path) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find(path.string()) != std::string::npos) return true;
    return false;
}

/// Path of a fixture plugin built by tests/plugins/meson.build.
inline fs::path fixture(const std::string& name) {
    return fs::path(POLYPLUG_TEST_PLUGIN_DIR) / ("fixture_" + name + ".so");
}

/// Writes `<root>/<name>/manifest.toml` (id computed from `name`) and, if `library` is not
/// empty, copies that fixture in as `lib<name>.so`. `extra` is appended to the manifest's
/// top-level keys; `tables` after them (for [[dependency]] and friends).
inline fs::path make_bundle(const fs::path& root, const std::string& name,
                            const std::string& library, const std::string& extra = {},
                            const std::string& tables = {}, const std::string& loader = "native") {
    const fs::path dir = root / name;
    fs::create_directories(dir);
    const std::string file = "lib" + name + ".so";
    if (!library.empty())
        fs::copy_file(fixture(library), dir / file, fs::copy_options::overwrite_existing);
    write_file(dir / "manifest.toml", "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) +
                                          "\"\n" + "name = \"" + name +
                                          "\"\nversion = \"1.0.0\"\nloader = \"" + loader +
                                          "\"\nfile = \"" + file + "\"\n" + extra + "\n" + tables);
    return dir;
}

/// The manifest keys of a bundle providing test.add@1 and test.counter@1 (the adder fixture).
inline const std::string adder_provides =
    "provides = [\"test.add@1\", \"test.counter@1\"]\n"
    "function_count = { \"test.add@1\" = 1, \"test.counter@1\" = 1 }\n";

/// The manifest keys of the versioned fixture's bundle (test.version@1, test.legacy@1 and
/// test.extra@1); test.partial@1 is what init_fails registers before it fails, so that a reload
/// onto it fails for its init, not for registering a contract the manifest does not declare.
inline const std::string versioned_provides =
    "provides = [\"test.version@1\", \"test.legacy@1\", \"test.extra@1\", \"test.partial@1\"]\n"
    "function_count = { \"test.version@1\" = 1, \"test.legacy@1\" = 1, \"test.extra@1\" = 1, "
    "\"test.partial@1\" = 1 }\n";

/// The manifest keys for what the init_fails fixture registers before it fails (test.partial@1).
inline const std::string partial_provides =
    "provides = [\"test.partial@1\"]\nfunction_count = { \"test.partial@1\" = 1 }\n";

/// A C loader (BundleLoader) named "test" whose load runs `on_load` inside the bundle's init
/// window, so a test can register contracts exactly as a plugin would.
struct scripted_loader {
    BundleLoader table{};
    std::function<void(const HostApi*, const LoaderBundleInfo*, AbiError*)> on_load;
    std::vector<std::uint64_t> unloaded;
    bool* destroyed = nullptr;

    static BundleLoader* create(scripted_loader*& out, const char* name = "test") {
        auto* self = new scripted_loader;
        self->table.abi_version = POLYPLUG_LOADER_ABI_VERSION;
        self->table.language = SupportedLanguage_Cpp;
        self->table.name = polyplug_sv(name);
        self->table.supports_hot_reload = false;
        self->table.user_data = self;
        self->table.load = [](BundleLoader* t, const HostApi* host, const LoaderBundleInfo* info,
                              AbiError* err) {
            auto* me = static_cast<scripted_loader*>(t->user_data);
            if (me->on_load) me->on_load(host, info, err);
        };
        self->table.unload = [](BundleLoader* t, const HostApi*, std::uint64_t id) {
            static_cast<scripted_loader*>(t->user_data)->unloaded.push_back(id);
        };
        self->table.destroy = [](BundleLoader* t) {
            auto* me = static_cast<scripted_loader*>(t->user_data);
            if (me->destroyed != nullptr) *me->destroyed = true;
            delete me;
        };
        out = self;
        return &self->table;
    }
};

/// Registers a scripted loader into `host` and returns it (owned by the runtime).
inline scripted_loader* add_scripted_loader(const HostApi* host, const char* name = "test") {
    scripted_loader* loader = nullptr;
    AbiError err{};
    host->register_loader(host, scripted_loader::create(loader, name), &err);
    REQUIRE(err.code == AbiErrorCode_Ok);
    return loader;
}

/// A bundle for the scripted loader: manifest plus an empty artifact file.
inline fs::path make_scripted_bundle(const fs::path& root, const std::string& name,
                                     const std::string& extra = {},
                                     const std::string& tables = {}) {
    const fs::path dir = make_bundle(root, name, "", extra, tables, "test");
    write_file(dir / ("lib" + name + ".so"), "scripted");
    return dir;
}

// ---- native test contracts built in the test binary ----------------------------------------

inline void stateless_create(VmLoaderData, const HostApi*, const void*,
                             GuestContractInstance* out) {
    *out = {nullptr, 1};
}
inline void noop_destroy(VmLoaderData, const HostApi*, GuestContractInstance) {}
inline void return_seven(GuestContractInstance, const void*, void* out, AbiError* err) {
    *static_cast<std::uint32_t*>(out) = 7;
    err->code = AbiErrorCode_Ok;
}
inline const void* const seven_table[] = {reinterpret_cast<const void*>(&return_seven)};

/// A valid native interface for `name@major` with one function returning 7.
inline GuestContractInterface seven_interface(std::string_view name, std::uint32_t major = 1) {
    GuestContractInterface iface{};
    iface.contract_id = polyplug::guest_contract_id(name, major);
    iface.contract_version = {major, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = &stateless_create;
    iface.destroy_instance = &noop_destroy;
    iface.dispatch.native.function_count = 1;
    iface.dispatch.native.functions = seven_table;
    return iface;
}

inline PluginDescriptor descriptor_for(const char* contract_name, const char* plugin = "plugin") {
    return {polyplug_sv(plugin), polyplug_sv(contract_name), {1, 0, 0}};
}

/// Collects log records (thread-safe).
struct log_capture {
    struct record {
        polyplug::log_level level;
        std::string scope;
        std::string message;
    };
    std::mutex mutex;
    std::vector<record> records;

    polyplug::log_callback callback() {
        return [this](polyplug::log_level level, std::string_view scope, std::string_view message) {
            std::lock_guard lock(mutex);
            records.push_back({level, std::string(scope), std::string(message)});
        };
    }

    bool contains(std::string_view needle) {
        std::lock_guard lock(mutex);
        for (const auto& r : records)
            if (r.message.find(needle) != std::string::npos) return true;
        return false;
    }

    /// Every record, one per line, for a failing check to show (Catch2 INFO / CAPTURE).
    std::string text() {
        std::lock_guard lock(mutex);
        std::string all;
        for (const auto& r : records) all += r.scope + ": " + r.message + "\n";
        return all;
    }
};

/// Records reload/unload phases as "<phase number>:<bundle>[:<reason>]" (thread-safe).
struct phase_log {
    std::mutex mutex;
    std::vector<std::string> entries;

    polyplug::reload_callback callback() {
        return [this](const ReloadPhase& phase) {
            std::string entry = std::to_string(phase.phase_type) + ":" +
                                std::string(polyplug::detail::view_of(phase.bundle_name));
            if (phase.reason.ptr != nullptr)
                entry += ":" + std::string(polyplug::detail::view_of(phase.reason));
            std::lock_guard lock(mutex);
            entries.push_back(std::move(entry));
        };
    }
};

inline std::string take_last_error(const HostApi* host) {
    std::string text(host->get_error_len(host), '\0');
    const std::size_t n =
        host->get_last_error(host, reinterpret_cast<std::uint8_t*>(text.data()), text.size());
    text.resize(n);
    return text;
}

/// Loads through the std::error_code overload; the status carries the code and last_error.
template <class Runtime>
polyplug::status try_load(Runtime& rt, const fs::path& dir) {
    std::error_code ec;
    rt.load_bundle(dir, ec);
    return ec ? polyplug::status(static_cast<polyplug::errc>(ec.value()), rt.last_error())
              : polyplug::status();
}

/// The same for a reload.
template <class Runtime>
polyplug::status try_reload(Runtime& rt, const fs::path& dir) {
    std::error_code ec;
    rt.reload_bundle(dir, ec);
    return ec ? polyplug::status(static_cast<polyplug::errc>(ec.value()), rt.last_error())
              : polyplug::status();
}

inline void load_or_fail(const HostApi* host, const fs::path& dir, AbiError& err) {
    const std::string path = dir.string();
    err = {};
    host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(path.data()), path.size(), &err);
}

}  // namespace test_support
