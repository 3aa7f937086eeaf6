// SPDX-License-Identifier: MIT
/// @file graph.hpp
/// Bundle discovery in plugin directories and the capability graph that orders loading (spec 9.2,
/// 9.3): pure functions over manifests, with no runtime and no loading.
#pragma once

#include <polyplug/bundle_info.hpp>
#include <polyplug/config.hpp>
#include <polyplug/error.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/manifest.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <queue>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// What discover() found: the usable manifests and the candidates it skipped.
struct discovery_result {
    std::vector<manifest> bundles;                  ///< valid manifests, in deterministic order
    std::vector<discovery_diagnostic> diagnostics;  ///< skipped directories and candidates
};

/// A load order computed by plan_load_order().
struct load_plan {
    std::vector<std::size_t> order;     ///< indices into the planned bundles; empty on failure
    std::vector<std::string> problems;  ///< one line per problem on failure
};

namespace detail {

/// Where a bundle directory really is, so one reached twice (a plugin directory listed twice, a
/// symlink to a sibling) is read once. Falls back to the absolute path when the directory cannot
/// be resolved, which still merges exact repeats.
[[nodiscard]] inline std::filesystem::path directory_identity(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path real = fs::canonical(dir, ec);
    if (!ec) return real;
    const fs::path absolute = fs::absolute(dir, ec);
    return (ec ? dir : absolute).lexically_normal();
}

[[nodiscard]] inline status scan_failure(const std::filesystem::path& dir,
                                         std::string_view problem) {
    return {errc::manifest_invalid,
            "plugin directory '" + dir.string() + "' " + std::string(problem)};
}

/// The immediate subdirectories of `dir` (symlinks followed) that hold a manifest.toml, sorted by
/// path because directory iteration order is unspecified. On a failure midway, `out` keeps what
/// was found before it.
[[nodiscard]] inline status list_candidates(const std::filesystem::path& dir,
                                            std::vector<std::filesystem::path>& out) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status info = fs::status(dir, ec);
    // status() reports a missing path both as the type and as an error: test the type first.
    if (info.type() == fs::file_type::not_found) return scan_failure(dir, "does not exist");
    if (ec) return scan_failure(dir, "cannot be inspected: " + ec.message());
    if (!fs::is_directory(info)) return scan_failure(dir, "is not a directory");

    fs::directory_iterator it(dir, ec);
    if (ec) return scan_failure(dir, "cannot be read: " + ec.message());
    status outcome;
    for (const fs::directory_iterator end; it != end;) {
        std::error_code entry_ec;
        if (it->is_directory(entry_ec)) {
            // A manifest we cannot even stat is still a candidate: read_manifest then says why it
            // cannot be used, instead of the bundle vanishing without a word.
            const bool has_manifest = fs::exists(it->path() / "manifest.toml", entry_ec);
            if (has_manifest || entry_ec) out.push_back(it->path());
        }
        it.increment(ec);
        if (ec) {
            outcome = scan_failure(dir, "could not be read to the end: " + ec.message());
            break;
        }
    }
    std::sort(out.begin(), out.end());
    return outcome;
}

[[nodiscard]] inline bool provides_contract(const manifest& m, std::uint64_t contract_id) noexcept {
    return std::any_of(m.provides.begin(), m.provides.end(),
                       [&](const provided_contract& p) { return p.contract_id == contract_id; });
}

/// "'name@major' (0x...)": the contract as the manifest named it, and the id the graph uses.
[[nodiscard]] inline std::string describe_requirement(const manifest_dependency& dep) {
    // A dependency that named no major keeps its contract_id verbatim; "@0" would be misleading.
    const bool canonical = dep.contract_id == guest_contract_id(dep.contract, dep.major);
    const std::string name =
        canonical ? dep.contract + "@" + std::to_string(dep.major) : dep.contract;
    return "'" + name + "' (" + format_id(dep.contract_id) + ")";
}

/// Who provides which contract among a set of manifests, and which manifest has which name. Keeps
/// views of the names: the manifests must outlive the index.
class capability_index {
public:
    explicit capability_index(std::span<const manifest> bundles) {
        for (std::size_t i = 0; i < bundles.size(); ++i) {
            by_name_.try_emplace(bundles[i].name, i);  // the first of a name, as discovery keeps
            for (const provided_contract& p : bundles[i].provides) {
                std::vector<std::size_t>& list = providers_[p.contract_id];
                // One entry per bundle, even when a manifest lists a contract twice.
                if (list.empty() || list.back() != i) list.push_back(i);
            }
        }
    }

    /// The bundles providing `contract_id`, in input order.
    [[nodiscard]] std::span<const std::size_t> providers(std::uint64_t contract_id) const {
        const auto found = providers_.find(contract_id);
        if (found == providers_.end()) return {};
        return found->second;
    }

    [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const {
        const auto found = by_name_.find(name);
        if (found == by_name_.end()) return std::nullopt;
        return found->second;
    }

private:
    std::unordered_map<std::uint64_t, std::vector<std::size_t>> providers_;
    std::unordered_map<std::string_view, std::size_t> by_name_;
};

/// Appends to `needs` the bundles that requirement `dep` of bundles[requirer] must load after, and
/// returns what is wrong with the requirement ("" when it is satisfied). A requirement the bundle
/// satisfies itself adds nothing: depending on your own contract is not a cycle.
[[nodiscard]] inline std::string resolve_requirement(
    std::span<const manifest> bundles, const capability_index& index,
    std::span<const manifest> loaded, const capability_index& loaded_index, std::size_t requirer,
    const manifest_dependency& dep, std::vector<std::size_t>& needs) {
    const manifest& self = bundles[requirer];
    if ((dep.bundle.empty() || dep.bundle == self.name) &&
        provides_contract(self, dep.contract_id)) {
        return {};
    }
    const std::string what =
        "bundle '" + self.name + "' requires contract " + describe_requirement(dep);
    if (!dep.bundle.empty()) {
        // ByBundle: only the named bundle counts, even when others provide the contract too.
        const std::optional<std::size_t> named = index.find(dep.bundle);
        const std::optional<std::size_t> named_loaded =
            named ? std::nullopt : loaded_index.find(dep.bundle);
        const manifest* provider = named          ? &bundles[*named]
                                   : named_loaded ? &loaded[*named_loaded]
                                                  : nullptr;
        const std::string from = what + " from bundle '" + dep.bundle + "', which ";
        if (provider == nullptr) return from + "is not among the bundles";
        if (!provides_contract(*provider, dep.contract_id)) return from + "does not provide it";
        if (named) needs.push_back(*named);
        return {};
    }
    const std::span<const std::size_t> providers = index.providers(dep.contract_id);
    needs.insert(needs.end(), providers.begin(), providers.end());
    if (providers.empty() && loaded_index.providers(dep.contract_id).empty()) {
        return what + " but no bundle provides it";
    }
    return {};
}

/// For each bundle, the distinct bundles it must load after (never itself). Problems with the
/// requirements go to `problems`, each once, when it is not null.
[[nodiscard]] inline std::vector<std::vector<std::size_t>> requirement_edges(
    std::span<const manifest> bundles, std::span<const manifest> loaded,
    std::vector<std::string>* problems) {
    const capability_index index(bundles);
    const capability_index loaded_index(loaded);
    std::vector<std::vector<std::size_t>> needs(bundles.size());
    for (std::size_t i = 0; i < bundles.size(); ++i) {
        for (const manifest_dependency& dep : bundles[i].dependencies) {
            std::string problem =
                resolve_requirement(bundles, index, loaded, loaded_index, i, dep, needs[i]);
            if (problem.empty() || problems == nullptr) continue;
            // A manifest listing one dependency twice should not report it twice.
            if (std::find(problems->begin(), problems->end(), problem) == problems->end()) {
                problems->push_back(std::move(problem));
            }
        }
        std::sort(needs[i].begin(), needs[i].end());
        needs[i].erase(std::unique(needs[i].begin(), needs[i].end()), needs[i].end());
    }
    return needs;
}

/// The strongly connected components with more than one member, i.e. the dependency cycles, of
/// the graph `needs` (Tarjan). Iterative, so a long chain of bundles cannot overflow the stack.
[[nodiscard]] inline std::vector<std::vector<std::size_t>> dependency_cycles(
    const std::vector<std::vector<std::size_t>>& needs) {
    constexpr std::size_t unvisited = SIZE_MAX;
    struct frame {
        std::size_t node;
        std::size_t next_edge;
    };
    const std::size_t count = needs.size();
    std::vector<std::size_t> order(count, unvisited);  // Tarjan's discovery index
    std::vector<std::size_t> low(count, 0);
    std::vector<bool> on_stack(count, false);
    std::vector<std::size_t> stack;
    std::vector<frame> calls;
    std::vector<std::vector<std::size_t>> cycles;
    std::size_t next_order = 0;

    const auto enter = [&](std::size_t node) {
        order[node] = low[node] = next_order++;
        stack.push_back(node);
        on_stack[node] = true;
        calls.push_back({node, 0});
    };
    for (std::size_t root = 0; root < count; ++root) {
        if (order[root] != unvisited) continue;
        enter(root);
        while (!calls.empty()) {
            const std::size_t node = calls.back().node;
            if (calls.back().next_edge < needs[node].size()) {
                const std::size_t next = needs[node][calls.back().next_edge++];
                if (order[next] == unvisited) {
                    enter(next);
                } else if (on_stack[next]) {
                    low[node] = std::min(low[node], order[next]);
                }
                continue;
            }
            calls.pop_back();
            if (!calls.empty()) {
                const std::size_t parent = calls.back().node;
                low[parent] = std::min(low[parent], low[node]);
            }
            if (low[node] != order[node]) continue;
            std::vector<std::size_t> component;
            std::size_t member = unvisited;
            do {
                member = stack.back();
                stack.pop_back();
                on_stack[member] = false;
                component.push_back(member);
            } while (member != node);
            if (component.size() > 1) cycles.push_back(std::move(component));
        }
    }
    return cycles;
}

/// Kahn's algorithm over an acyclic `needs`: providers first, and among the bundles ready at any
/// step the one earliest in the input, so equal inputs always give equal orders.
[[nodiscard]] inline std::vector<std::size_t> providers_first(
    const std::vector<std::vector<std::size_t>>& needs) {
    const std::size_t count = needs.size();
    std::vector<std::size_t> waiting(count);
    std::vector<std::vector<std::size_t>> needed_by(count);
    for (std::size_t i = 0; i < count; ++i) {
        waiting[i] = needs[i].size();
        for (const std::size_t provider : needs[i]) needed_by[provider].push_back(i);
    }
    std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
    for (std::size_t i = 0; i < count; ++i) {
        if (waiting[i] == 0) ready.push(i);
    }
    std::vector<std::size_t> order;
    order.reserve(count);
    while (!ready.empty()) {
        const std::size_t next = ready.top();
        ready.pop();
        order.push_back(next);
        for (const std::size_t dependent : needed_by[next]) {
            if (--waiting[dependent] == 0) ready.push(dependent);
        }
    }
    return order;
}

/// `lines` under a first line saying what kind of failure it is and how many there are.
[[nodiscard]] inline std::string summarise(std::string_view summary,
                                           const std::vector<std::string>& lines) {
    std::string out(summary);
    for (const std::string& line : lines) out += "\n" + line;
    return out;
}

[[nodiscard]] inline std::string counted(std::size_t count, std::string_view one,
                                         std::string_view many) {
    return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

}  // namespace detail

/// Scans plugin directories for bundles (spec 9.2).
///
/// Each immediate subdirectory of a directory in `dirs` that holds a manifest.toml is a candidate
/// (flat files are ignored, subdirectories are not recursed, symlinked subdirectories are
/// followed) and is read with read_manifest(). Per directory, bundles come sorted by manifest name
/// (ties by path); across directories, in the order of `dirs`. A bundle directory reached twice
/// (the same canonical path: a directory listed twice, a symlink) appears once.
///
/// Never fails as a whole: whatever cannot be used becomes a diagnostic and scanning goes on.
/// Diagnostics, per directory in path order:
/// - a plugin directory that does not exist or cannot be read: errc::manifest_invalid, `bundle`
///   empty, the message names the directory;
/// - a candidate read_manifest() refuses: its code (errc::manifest_invalid,
///   errc::bundle_tampered), the message names the bundle directory and the problem;
/// - a second bundle with a name already kept: errc::manifest_invalid, "bundle 'x' in '<path2>'
///   has the same name as '<path1>'" (the first one found is kept).
///
/// Example:
/// @code
/// const std::vector<std::filesystem::path> dirs{"plugins", "/opt/app/plugins"};
/// polyplug::discovery_result found = polyplug::discover(dirs);
/// for (const auto& d : found.diagnostics) std::cerr << d.problem.message() << '\n';
/// @endcode
[[nodiscard]] inline discovery_result discover(std::span<const std::filesystem::path> dirs) {
    namespace fs = std::filesystem;
    discovery_result result;
    std::set<fs::path> seen_dirs;                    // identities of bundle dirs already read
    std::unordered_map<std::string, fs::path> kept;  // bundle name -> directory of the kept one
    for (const fs::path& dir : dirs) {
        std::vector<fs::path> candidates;
        if (status s = detail::list_candidates(dir, candidates); !s) {
            result.diagnostics.push_back({dir, {}, std::move(s)});
        }
        std::vector<manifest> found;
        std::vector<discovery_diagnostic> skipped;
        for (const fs::path& candidate : candidates) {
            if (!seen_dirs.insert(detail::directory_identity(candidate)).second) continue;
            manifest m;
            if (const status s = read_manifest(candidate, m); !s) {
                skipped.push_back({candidate,
                                   candidate.filename().string(),
                                   {s.code(), "bundle directory '" + candidate.string() +
                                                  "' skipped: " + s.message()}});
                continue;
            }
            found.push_back(std::move(m));
        }
        std::sort(found.begin(), found.end(), [](const manifest& a, const manifest& b) {
            return a.name != b.name ? a.name < b.name : a.dir < b.dir;
        });
        for (manifest& m : found) {
            const auto [first, inserted] = kept.try_emplace(m.name, m.dir);
            if (!inserted) {
                skipped.push_back(
                    {m.dir,
                     m.name,
                     {errc::manifest_invalid, "bundle '" + m.name + "' in '" + m.dir.string() +
                                                  "' has the same name as '" +
                                                  first->second.string() + "'"}});
                continue;
            }
            result.bundles.push_back(std::move(m));
        }
        std::stable_sort(skipped.begin(), skipped.end(),
                         [](const discovery_diagnostic& a, const discovery_diagnostic& b) {
                             return a.path < b.path;
                         });
        for (discovery_diagnostic& d : skipped) result.diagnostics.push_back(std::move(d));
    }
    return result;
}

/// Orders `bundles` so that every provider loads before the bundles that need it (spec 9.3).
///
/// A bundle provides the contracts in its `provides` and requires those of its `[[dependency]]`
/// entries (matched by contract id). A dependency naming a `bundle` is satisfied only by a bundle
/// of that name that lists the contract in its `provides`; otherwise every provider of the
/// contract loads first. Bundles in `already_loaded` count as providers but are not ordered and
/// their own requirements are not checked. A requirement a bundle satisfies itself is ignored.
/// Ties are broken by input order, so the result is deterministic. When names repeat in
/// `bundles`, a dependency naming one refers to the first.
///
/// On success `plan.order` holds every index into `bundles` once; on failure it is empty and
/// `plan.problems` holds one line per problem. Errors:
/// - errc::unsatisfied_dependency: some requirement has no provider, e.g. "bundle 'b' requires
///   contract 'c@1' (0x...) but no bundle provides it"; the message lists all of them, one per
///   line under a summary line. Checked before cycles.
/// - errc::dependency_cycle: bundles need each other, e.g. "dependency cycle between 'a', 'b'"
///   (every participant, sorted); every cycle is listed.
[[nodiscard]] inline status plan_load_order(std::span<const manifest> bundles,
                                            std::span<const manifest> already_loaded,
                                            load_plan& plan) {
    plan = {};
    const std::vector<std::vector<std::size_t>> needs =
        detail::requirement_edges(bundles, already_loaded, &plan.problems);
    if (!plan.problems.empty()) {
        const std::string summary =
            "cannot order the bundles: " + detail::counted(plan.problems.size(),
                                                           "requirement has no provider",
                                                           "requirements have no provider");
        return {errc::unsatisfied_dependency, detail::summarise(summary, plan.problems)};
    }

    for (const std::vector<std::size_t>& cycle : detail::dependency_cycles(needs)) {
        std::vector<std::string_view> names;
        for (const std::size_t member : cycle) names.push_back(bundles[member].name);
        std::sort(names.begin(), names.end());
        std::string line = "dependency cycle between ";
        for (std::size_t i = 0; i < names.size(); ++i) {
            line += (i == 0 ? "'" : ", '") + std::string(names[i]) + "'";
        }
        plan.problems.push_back(std::move(line));
    }
    if (!plan.problems.empty()) {
        std::sort(plan.problems.begin(), plan.problems.end());
        const std::string summary =
            "cannot order the bundles: " +
            detail::counted(plan.problems.size(), "dependency cycle", "dependency cycles");
        return {errc::dependency_cycle, detail::summarise(summary, plan.problems)};
    }

    plan.order = detail::providers_first(needs);
    return {};
}

/// The bundles (indices into `bundles`) that depend, directly or transitively, on a contract
/// provided by `bundles[target]`, dependents first: unloading them in this order and `target`
/// last never unloads a provider before a bundle that needs it. Dependencies are matched as in
/// plan_load_order(). Cycle-safe; excludes `target`; empty when `target` is out of range.
[[nodiscard]] inline std::vector<std::size_t> dependents_closure(std::span<const manifest> bundles,
                                                                 std::size_t target) {
    if (target >= bundles.size()) return {};
    const std::vector<std::vector<std::size_t>> needs =
        detail::requirement_edges(bundles, {}, nullptr);
    std::vector<std::vector<std::size_t>> needed_by(bundles.size());
    for (std::size_t i = 0; i < needs.size(); ++i) {
        for (const std::size_t provider : needs[i]) needed_by[provider].push_back(i);
    }

    // Depth-first over "is needed by", emitting a bundle once everything that needs it has been
    // emitted (post-order): that puts dependents first. Iterative, like the cycle search.
    struct frame {
        std::size_t node;
        std::size_t next_edge;
    };
    std::vector<bool> visited(bundles.size(), false);
    std::vector<frame> calls{{target, 0}};
    std::vector<std::size_t> closure;
    visited[target] = true;
    while (!calls.empty()) {
        const std::size_t node = calls.back().node;
        if (calls.back().next_edge < needed_by[node].size()) {
            const std::size_t next = needed_by[node][calls.back().next_edge++];
            if (!visited[next]) {
                visited[next] = true;
                calls.push_back({next, 0});
            }
            continue;
        }
        calls.pop_back();
        if (node != target) closure.push_back(node);
    }
    return closure;
}

POLYPLUG_END_NAMESPACE
