// SPDX-License-Identifier: MIT
/// @file detail/staged_version.hpp
/// One version of a bundle on its way through the staging pipeline (load, reload and load_dirs
/// alike), and the reload transaction: the versions that are swapped in together.
#pragma once

#include <polyplug/detail/init_windows.hpp>
#include <polyplug/error.hpp>
#include <polyplug/loader.hpp>
#include <polyplug/manifest.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// What the pipeline resolved for one version, and everything that undoing it must undo. The
/// runtime's record of the bundle points here while the version's init runs, so that
/// registrations and hand-over offers made from inside the init are checked against this
/// version's manifest (not the running version's, on a reload).
struct staged_version {
    std::uint64_t bundle_id = 0;
    shared_manifest bundle;                   ///< the manifest this version was staged from
    const loader_handle* loader = nullptr;    ///< the loader that manifest names
    init_windows::allowed_set allowed;        ///< its declared dependencies
    std::filesystem::path artifact;           ///< the file loaded (maybe a private copy)
    file_identity artifact_identity;          ///< resolve_artifact's lstat of it, if any
    bool private_copy = false;                ///< `artifact` is ours to delete
    std::uint64_t load_id = 0;                ///< the loader's key for this version; 0: none yet
    std::vector<std::uint64_t> nested_loads;  ///< bundles its init loaded (undone with it)
    status refused;                           ///< a registration refused for the manifest's sake
};

/// A reload: the bundle and the dependents that opted in, providers first. Every member is
/// staged beside its running version; all are swapped in one publication, or none is.
using reload_transaction = std::vector<staged_version>;

/// One loaded bundle as the reload planner sees it.
struct reload_candidate {
    std::uint64_t id = 0;
    bool opted_in = false;                  ///< needs_reinit_on_dep_reload
    std::vector<std::uint64_t> depends_on;  ///< contract ids it declared
    std::vector<std::uint64_t> provides;    ///< contract ids it provides or registered
};

/// The members of a reload of `target`: the target, then, transitively, every candidate that
/// opted in and depends on a contract a member provides (in the order found).
[[nodiscard]] inline std::vector<std::uint64_t> reload_members(
    std::uint64_t target, const std::vector<reload_candidate>& candidates) {
    std::vector<std::uint64_t> ids{target};
    for (bool grew = true; grew;) {
        grew = false;
        std::vector<std::uint64_t> provided;
        for (const reload_candidate& c : candidates)
            if (std::find(ids.begin(), ids.end(), c.id) != ids.end())
                provided.insert(provided.end(), c.provides.begin(), c.provides.end());
        for (const reload_candidate& c : candidates) {
            if (!c.opted_in || std::find(ids.begin(), ids.end(), c.id) != ids.end()) continue;
            const bool depends =
                std::any_of(c.depends_on.begin(), c.depends_on.end(), [&](std::uint64_t id) {
                    return std::find(provided.begin(), provided.end(), id) != provided.end();
                });
            if (depends) ids.push_back(c.id), grew = true;
        }
    }
    return ids;
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
