// SPDX-License-Identifier: MIT
/// @file manifest_model.hpp
/// What a bundle's manifest.toml says, as values: `manifest`, its `provides` and `[[dependency]]`
/// entries, and the platform names a `file.<os>.<arch>` key is matched against. No parsing here
/// (that is manifest.hpp, with toml++), so that loaders and the runtime's front end can name a
/// manifest without compiling a TOML parser.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/version.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// How a `[[dependency]]` entry names what it needs.
enum class dependency_kind {
    contract,  ///< the contract, from whichever bundle provides it
    bundle,    ///< the contract, from one named bundle
};

/// One `[[dependency]]` entry: a guest contract the bundle looks up during its init.
struct manifest_dependency {
    dependency_kind kind = dependency_kind::contract;
    std::string contract;           ///< bare contract name (the text before any '@')
    std::string min_version;        ///< as written; "" when absent
    std::uint32_t major = 0;        ///< from "name@N[.m.p]", else from min_version (0 if neither)
    std::string bundle;             ///< providing bundle's name; "" when absent
    std::uint64_t contract_id = 0;  ///< guest_contract_id(contract, major); verbatim if no major
    std::uint64_t bundle_id = 0;    ///< as written, else polyplug::bundle_id(bundle) when named

    friend bool operator==(const manifest_dependency&, const manifest_dependency&) = default;
};

/// One `provides` entry: a guest contract the bundle registers.
struct provided_contract {
    std::string name;         ///< bare contract name
    std::uint32_t major = 0;  ///< "name@N" -> N, "name@a.b[.c]" -> a, "name" -> bundle's
    std::optional<polyplug::version> version;  ///< set for the "name@a.b[.c]" form only
    std::uint64_t contract_id = 0;             ///< guest_contract_id(name, major)

    /// The `function_count` key for this contract: "name@major".
    [[nodiscard]] std::string key() const { return name + "@" + std::to_string(major); }

    friend bool operator==(const provided_contract&, const provided_contract&) = default;
};

/// A validated manifest.toml (spec 9.8). Produced by parse_manifest / read_manifest.
struct manifest {
    std::uint64_t id = 0;                                 ///< == bundle_id(name), never 0
    std::string name;                                     ///< bundle name, non-empty
    std::string version_text;                             ///< `version` as written; "" when absent
    polyplug::version version;                            ///< parsed; 0.0.0 when absent or empty
    std::string loader;                                   ///< `loader` (or legacy `runtime`)
    std::string file;                                     ///< artifact for the running platform
    std::vector<provided_contract> provides;              ///< in manifest order
    std::map<std::string, std::uint32_t> function_count;  ///< "name@major" -> function count
    bool needs_reinit_on_dep_reload = false;              ///< opt into cascade reload
    std::vector<std::string> bundle_dependencies;         ///< "bundle" / "bundle@version" specs
    std::vector<manifest_dependency> dependencies;        ///< the `[[dependency]]` entries
    /// `api`: the contract file a VM bundle implements, relative to the bundle directory ("" when
    /// absent; VM loaders then read `api.toml`). An extension; the original ignores the key.
    std::string api;
    std::filesystem::path dir;   ///< bundle directory (read_manifest)
    std::filesystem::path path;  ///< manifest.toml's path (read_manifest)

    /// The first `provides` entry with this bare name, or nullptr.
    [[nodiscard]] const provided_contract* find_provided(
        std::string_view bare_name) const noexcept {
        const auto found =
            std::find_if(provides.begin(), provides.end(),
                         [&](const provided_contract& p) { return p.name == bare_name; });
        return found == provides.end() ? nullptr : &*found;
    }

    friend bool operator==(const manifest&, const manifest&) = default;
};

/// A manifest that a load, its record and the manifest cache share: immutable once read, so that
/// holding it costs a reference count rather than a copy of every string in it.
using shared_manifest = std::shared_ptr<const manifest>;

/// Manifest files larger than this are refused (errc::manifest_invalid) before parsing.
inline constexpr std::size_t max_manifest_bytes = std::size_t{1} << 20;

/// The operating-system part of `file.<os>.<arch>` for this build: "linux", "windows" or "macos"
/// ("unknown" elsewhere, which no manifest can name).
[[nodiscard]] constexpr std::string_view current_platform_os() noexcept {
#if defined(_WIN32)
    return "windows";
#elif defined(__APPLE__)
    return "macos";
#elif defined(__linux__)
    return "linux";
#else
    return "unknown";
#endif
}

/// The architecture part of `file.<os>.<arch>` for this build: "x86_64" or "aarch64"
/// ("unknown" elsewhere, which no manifest can name).
[[nodiscard]] constexpr std::string_view current_platform_arch() noexcept {
#if defined(__x86_64__) || defined(_M_X64)
    return "x86_64";
#elif defined(__aarch64__) || defined(_M_ARM64)
    return "aarch64";
#else
    return "unknown";
#endif
}

POLYPLUG_END_NAMESPACE
