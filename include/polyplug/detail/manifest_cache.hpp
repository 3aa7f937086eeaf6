// SPDX-License-Identifier: MIT
/// @file detail/manifest_cache.hpp
/// read_manifest that parses a manifest's text only once per runtime: the file is read every
/// time, and parsed again only when its bytes differ from the last ones parsed for that path.
#pragma once

#include <polyplug/manifest.hpp>

#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Why: TOML parsing is most of what a warm load or a reload costs outside dlopen (tens of
/// thousands of instructions for a 150-byte manifest), and loads, reloads and the watcher read
/// the same few manifests again and again. The cache key is the file's path and its whole
/// content, so an edited manifest is always parsed again and a cached result is exactly what
/// parsing the same bytes would give (validation included: only valid manifests are kept).
class manifest_cache {
public:
    /// Bounded: at more distinct manifests than this, the cache starts over.
    static constexpr std::size_t max_entries = 4096;

    /// Same contract as polyplug::read_manifest (errors, `dir` and `path` set, `out` untouched
    /// on failure).
    [[nodiscard]] status read(const std::filesystem::path& bundle_dir, manifest& out) {
        const std::filesystem::path file = bundle_dir / "manifest.toml";
        const reporter report = reporter::for_source(file.string());
        return guard_exceptions(report, [&]() -> status {
            std::string text;
            if (status s = read_manifest_text(file, bundle_dir, report, text); !s) return s;
            std::string key = file.string();
            {
                std::lock_guard lock(mutex_);
                if (const auto it = entries_.find(key);
                    it != entries_.end() && it->second.text == text) {
                    out = it->second.parsed;
                    out.dir = bundle_dir;
                    out.path = file;
                    return {};
                }
            }
            manifest parsed;
            if (status s = parse_manifest(text, key, parsed); !s) return s;
            parsed.dir = bundle_dir;
            parsed.path = file;
            {
                std::lock_guard lock(mutex_);
                if (entries_.size() >= max_entries) entries_.clear();
                entries_.insert_or_assign(std::move(key), entry{std::move(text), parsed});
            }
            out = std::move(parsed);
            return {};
        });
    }

private:
    struct entry {
        std::string text;
        manifest parsed;
    };
    std::mutex mutex_;
    std::unordered_map<std::string, entry> entries_;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
