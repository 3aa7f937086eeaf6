// SPDX-License-Identifier: MIT
/// @file bench/bench_bare_load.hpp
/// The hand-written load that the runtime's load is compared with, shared by the timing suite
/// (lifecycle_bench.cpp) and the instruction counts (callgrind_probe.cpp) so that both measure
/// the same baseline: read manifest.toml (open, read, close), stat the library, dlopen + dlsym +
/// ABI check + init with the least HostApi a plugin's init needs, and dlclose.
#pragma once

#include "harness.hpp"

#include <polyplug/abi.h>
#include <polyplug/ids.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bench {

/// The least a host needs to run a plugin's init: a HostApi whose register_guest_contract keeps
/// a copy of each interface, and nothing else.
class minimal_host {
public:
    minimal_host() {
        api_.runtime = &registered_;
        api_.register_guest_contract = [](const HostApi* self, const PluginDescriptor*,
                                          const GuestContractInterface* iface, AbiError* err) {
            static_cast<std::vector<GuestContractInterface>*>(self->runtime)->push_back(*iface);
            err->code = AbiErrorCode_Ok;
        };
        registered_.reserve(8);
    }
    minimal_host(const minimal_host&) = delete;
    minimal_host& operator=(const minimal_host&) = delete;

    [[nodiscard]] const HostApi* api() const noexcept { return &api_; }
    [[nodiscard]] const std::vector<GuestContractInterface>& registered() const noexcept {
        return registered_;
    }
    void clear() noexcept { registered_.clear(); }

private:
    HostApi api_{};
    std::vector<GuestContractInterface> registered_;
};

/// dlopen, dlsym polyplug_abi_version, check it, dlsym polyplug_init, run it: the bare load.
/// Returns the handle (the caller closes it).
inline void* bare_load(const std::filesystem::path& file, const minimal_host& host,
                       const std::string& bundle_dir) {
    void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
    const auto abi_version =
        reinterpret_cast<PolyplugAbiVersionFn>(::dlsym(handle, POLYPLUG_ABI_VERSION_SYMBOL));
    if (abi_version == nullptr || abi_version() != POLYPLUG_ABI_VERSION)
        throw std::runtime_error("bare load: ABI version");
    const auto init = reinterpret_cast<PolyplugInitFn>(::dlsym(handle, POLYPLUG_INIT_SYMBOL));
    if (init == nullptr) throw std::runtime_error("bare load: no polyplug_init");
    const BundleInitContext context{
        polyplug::bundle_id("bench"),
        {reinterpret_cast<const std::uint8_t*>(bundle_dir.data()), bundle_dir.size()}};
    if (init(host.api(), &context).code != AbiErrorCode_Ok)
        throw std::runtime_error("bare load: init failed");
    return handle;
}

/// open/read/close `manifest_file` (one read into a 4 KiB buffer, as a host that knows its
/// manifests are small would), then stat `library`.
inline void read_manifest_by_hand(const std::string& manifest_file,
                                  const std::filesystem::path& library) {
    char text[4096];
    const int fd = ::open(manifest_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("open manifest.toml");
    consume(static_cast<std::uint64_t>(::read(fd, text, sizeof text)));
    ::close(fd);
    struct stat info {};
    if (::stat(library.c_str(), &info) != 0) throw std::runtime_error("stat library");
    consume(static_cast<std::uint64_t>(info.st_size));
}

}  // namespace bench
