// SPDX-License-Identifier: MIT
/// @file bench/bench_bundle.hpp
/// The benchmarks' fixtures on disk: a temporary directory, bundle directories for the benchmark
/// plugin and for C loaders, and a raw dlopen handle (the baseline every native row is compared
/// with, and the pin that keeps a library mapped so that loads of it are warm).
#pragma once

#include <polyplug/ids.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace bench {

namespace fs = std::filesystem;

/// bench.inc@1, registered by bench_plugin.c: fn 0 increments a u32, fn 1 fills a payload.
inline constexpr std::uint64_t inc_contract_id = polyplug::guest_contract_id("bench.inc", 1);
inline constexpr std::uint32_t inc_fn = 0;
inline constexpr std::uint32_t fill_fn = 1;

/// A directory under the system temp dir, removed with its contents on destruction.
class temp_dir {
public:
    temp_dir() {
        path_ = fs::temp_directory_path() / ("polyplug-bench-" + std::to_string(::getpid()));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    [[nodiscard]] const fs::path& path() const noexcept { return path_; }

private:
    fs::path path_;
};

inline void write_text(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

/// `<root>/<name>`: manifest.toml for the loader `loader`, artifact `lib<name>.so`, plus `extra`
/// top-level keys. Returns the bundle directory.
inline fs::path write_bundle(const fs::path& root, const std::string& name,
                             const std::string& loader, const std::string& extra = {}) {
    const fs::path dir = root / name;
    fs::create_directories(dir);
    write_text(dir / "manifest.toml", "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) +
                                          "\"\nname = \"" + name +
                                          "\"\nversion = \"1.0.0\"\nloader = \"" + loader +
                                          "\"\nfile = \"lib" + name + ".so\"\n" + extra);
    return dir;
}

/// A native bundle `<root>/<name>` holding a copy of the benchmark plugin.
inline fs::path make_plugin_bundle(const fs::path& root, const fs::path& plugin,
                                   const std::string& name = "bench") {
    const fs::path dir = write_bundle(root, name, "native",
                                      "provides = [\"bench.inc@1\"]\n"
                                      "function_count = { \"bench.inc@1\" = 2 }\n");
    fs::copy_file(plugin, dir / ("lib" + name + ".so"), fs::copy_options::overwrite_existing);
    return dir;
}

/// A bundle `<root>/<name>` for the C loader named `loader` (its artifact is a placeholder).
inline fs::path make_loader_bundle(const fs::path& root, const std::string& name,
                                   const std::string& loader) {
    const fs::path dir = write_bundle(root, name, loader);
    write_text(dir / ("lib" + name + ".so"), "loaded by a C loader, never opened");
    return dir;
}

/// The library file inside a bundle made by make_plugin_bundle.
[[nodiscard]] inline fs::path plugin_library(const fs::path& bundle_dir,
                                             const std::string& name = "bench") {
    return bundle_dir / ("lib" + name + ".so");
}

/// A library opened with dlopen (RTLD_NOW | RTLD_LOCAL, as the native loader opens bundles),
/// closed on destruction.
class library {
public:
    explicit library(const fs::path& path)
        : handle_(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
        if (handle_ == nullptr)
            throw std::runtime_error("dlopen " + path.string() + ": " + ::dlerror());
    }
    ~library() { ::dlclose(handle_); }
    library(const library&) = delete;
    library& operator=(const library&) = delete;

    /// The exported symbol `name` as `Fn`; throws if it is missing.
    template <class Fn>
    [[nodiscard]] Fn symbol(const char* name) const {
        void* address = ::dlsym(handle_, name);
        if (address == nullptr) throw std::runtime_error(std::string("dlsym ") + name);
        return reinterpret_cast<Fn>(address);
    }

private:
    void* handle_;
};

}  // namespace bench
