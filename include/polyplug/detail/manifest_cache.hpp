// SPDX-License-Identifier: MIT
/// @file detail/manifest_cache.hpp
/// read_manifest that parses a manifest's text only once per process: the file is read every
/// time, and parsed again only when its bytes differ from the last ones parsed for that bundle
/// directory.
#pragma once

#include <polyplug/detail/parse_memo.hpp>
#include <polyplug/manifest.hpp>

#include <filesystem>
#include <memory>
#include <string>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Why, and why one store per process: detail/parse_memo.hpp. The key is the bundle directory
/// as spelled (the parsed manifest's `dir` keeps the caller's spelling) and the file's bytes.
class manifest_cache {
public:
    /// Larger manifests are parsed every time (and hold no memory after the load). A manifest
    /// declaring 10,000 contracts is about 400 KiB: kept.
    static constexpr std::size_t max_cached_text = max_manifest_bytes;

    /// Same contract as polyplug::read_manifest (errors; `dir` and `path` set), but the result is
    /// shared and immutable: a load holds the cached manifest itself rather than a copy of it
    /// (copying a manifest, its strings, vectors and two filesystem paths, was a sixth of a warm
    /// load). `out` is untouched on failure.
    [[nodiscard]] status read(const std::filesystem::path& bundle_dir, shared_manifest& out) {
        // The file's name as text: `bundle_dir / "manifest.toml"` would build a path and split
        // it into components on every load, for one open(). Equal to what operator/ gives.
        const std::string& dir = bundle_dir.native();
        std::string file;
        file.reserve(dir.size() + 14);
        file = dir;
        if (!file.empty() && file.back() != '/') file += '/';
        file += "manifest.toml";
        std::string text;
        // Nothing here throws but bad_alloc, which goes to the caller as everywhere else.
        if (status s = read_manifest_text(file, text); !s) return s;
        parse_memo<manifest>& memo = parse_memo<manifest>::shared();
        if (shared_manifest known = memo.find(dir, text)) {
            out = std::move(known);
            return {};
        }
        const reporter report = reporter::for_source(file);
        return guard_exceptions(report, [&]() -> status {
            auto parsed = std::make_shared<manifest>();
            if (status s = parse_manifest(text, file, *parsed); !s) return s;
            parsed->dir = bundle_dir;
            parsed->path = std::filesystem::path(std::move(file));
            out = parsed;
            memo.keep(dir, std::move(text), std::move(parsed), max_cached_text);
            return {};
        });
    }

    /// The same, into a manifest of the caller's (a copy of the shared one).
    [[nodiscard]] status read(const std::filesystem::path& bundle_dir, manifest& out) {
        shared_manifest shared;
        if (status s = read(bundle_dir, shared); !s) return s;
        out = *shared;
        return {};
    }
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
