// SPDX-License-Identifier: MIT
/// @file bundle_info.hpp
/// What the runtime reports to a host about its bundles and contracts: `bundle_info`,
/// `contract_info`, `load_report` and its `discovery_diagnostic`s. Plain values, kept apart from
/// the engine that produces them so that a host naming them compiles none of it.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/config.hpp>
#include <polyplug/error.hpp>
#include <polyplug/manifest_model.hpp>
#include <polyplug/version.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// What the registry knows about one registered contract.
struct contract_info {
    GuestContractHandle handle{};
    std::uint64_t contract_id = 0;
    std::string contract_name;
    std::string plugin_name;
    polyplug::version version;
    std::uint64_t bundle_id = 0;
    std::uint32_t dispatch_type = DispatchType_Native;
    std::uint32_t function_count = 0;  // native only
    std::int64_t live_instances = 0;
};

/// A loaded bundle as the host sees it.
struct bundle_info {
    std::uint64_t id = 0;
    std::string name;
    polyplug::version version;
    std::string loader;
    std::uint32_t language = SupportedLanguage_Rust;
    std::filesystem::path dir;
    std::vector<contract_info> contracts;           ///< what it registered
    std::vector<manifest_dependency> dependencies;  ///< what it declared
};

/// A bundle directory that could not be used, and why. Returned to the caller, not only logged,
/// so a host can show which plugins were skipped.
struct discovery_diagnostic {
    std::filesystem::path path;  ///< the bundle directory, or the plugin directory if that failed
    std::string bundle;  ///< manifest name when known, else the directory name; "" for a plugin dir
    status problem;      ///< code + message naming the directory or bundle and the problem
};

/// What load_dirs did.
struct load_report {
    std::vector<std::uint64_t> loaded;          ///< bundles loaded by the call, in load order
    std::vector<discovery_diagnostic> skipped;  ///< candidates that could not be used
    std::vector<std::uint64_t> already_loaded;  ///< discovered bundles that were loaded before
};

POLYPLUG_END_NAMESPACE
