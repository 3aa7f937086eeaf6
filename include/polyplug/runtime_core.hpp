// SPDX-License-Identifier: MIT
/// @file runtime_core.hpp
/// The non-template engine behind every runtime: bundles and their lifecycle, loaders, init
/// windows, the guest and host registries, instances, last_error, logging and the revision
/// counter. `basic_runtime<Loaders...>` (runtime.hpp) owns one and adds its compile-time loaders;
/// the HostApi thunks (host_api.hpp) call into it.
#pragma once

#include <polyplug/detail/host_alloc.hpp>
#include <polyplug/detail/init_windows.hpp>
#include <polyplug/detail/last_error.hpp>
#include <polyplug/detail/logger.hpp>
#include <polyplug/detail/path_text.hpp>
#include <polyplug/detail/reader_tracker.hpp>
#include <polyplug/detail/manifest_cache.hpp>
#include <polyplug/detail/private_copies.hpp>
#include <polyplug/detail/staged_version.hpp>
#include <polyplug/detail/unmap_scheduler.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/bundle_info.hpp>
#include <polyplug/error.hpp>
#include <polyplug/graph.hpp>
#include <polyplug/host_contracts.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/loader.hpp>
#include <polyplug/manifest.hpp>
#include <polyplug/registry.hpp>
#include <polyplug/runtime_contract.h>
#include <polyplug/detail/state_handovers.hpp>
#include <polyplug/watcher.hpp>
#include <polyplug/runtime_options.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

POLYPLUG_BEGIN_NAMESPACE

class runtime_core {
public:
    explicit runtime_core(runtime_options options)
        : options_(std::move(options)), logger_(options_.log, options_.log_max_level) {
        unmaps_.set_thread_probe(options_.probe_threads_before_unmap);
    }

    runtime_core(const runtime_core&) = delete;
    runtime_core& operator=(const runtime_core&) = delete;

    /// Unloads every bundle (dependents first), closes their code, destroys cached host-contract
    /// singletons and C loaders. The HostApi stays valid until the very end, because library
    /// destructors may still call through it.
    ~runtime_core() {
        watcher_.stop();  // no reload or load may start from here on
        std::vector<std::uint64_t> order;
        {
            const auto lock = lock_state();
            std::vector<std::pair<std::uint64_t, std::uint64_t>> by_sequence;
            for (const auto& [id, record] : bundles_) by_sequence.emplace_back(record.sequence, id);
            std::sort(by_sequence.rbegin(), by_sequence.rend());
            for (const auto& entry : by_sequence) order.push_back(entry.second);
        }
        for (const std::uint64_t id : order) (void)unload(id, unload_mode::teardown);
        run_reclaims(/*force=*/true);
        unmaps_.close_all();
        host_contracts_.destroy_singletons();
        {
            std::unique_lock lock(loaders_mutex_);
            loaders_.clear();
        }
        std::atomic_ref(api_->core).store(nullptr, std::memory_order_release);
        if (unmaps_.left_mapped() == 0) {
            delete api_;
        } else {
            keep_for_the_process(api_);
            logger_.debug("runtime",
                          "the HostApi table outlives the runtime: plugin code stays mapped, and "
                          "a thread running it may still call through it (it answers "
                          "InvalidPointer)");
        }
    }

    // ---- wiring -------------------------------------------------------------------------------

    /// Installs the HostApi table (built by host_api.hpp) whose `runtime` field points here.
    void install_host_api(const HostApi& table) noexcept {
        api_->table = table;
        api_->table.runtime = api_;
        std::atomic_ref(api_->core).store(this, std::memory_order_release);
    }
    [[nodiscard]] const HostApi* host_api() const noexcept { return &api_->table; }

    /// The core behind a HostApi table this runtime handed out; null for null, and once the
    /// runtime is destroyed (the table outlives it while plugin code may still be mapped).
    [[nodiscard]] static runtime_core* from_host_api(const HostApi* table) noexcept {
        if (table == nullptr || table->runtime == nullptr) return nullptr;
        auto* block = static_cast<host_api_block*>(table->runtime);
        return std::atomic_ref(block->core).load(std::memory_order_acquire);
    }

    /// Storage for the built-in host.polyplug.Runtime contract (filled by runtime_contract.hpp;
    /// host contracts are registered by reference and must live as long as the runtime).
    template <std::size_t FunctionCount>
    struct builtin_contract_storage {
        HostContractInterface iface{};
        const void* table[FunctionCount]{};
    };
    using runtime_contract_storage = builtin_contract_storage<PolyplugRuntimeFn_Count>;
    using handover_contract_storage = builtin_contract_storage<PolyplugStateHandoverFn_Count>;
    [[nodiscard]] runtime_contract_storage& builtin_contract() noexcept { return builtin_; }
    /// Storage for the built-in host.polyplug.StateHandover contract (state_handover_contract.hpp).
    [[nodiscard]] handover_contract_storage& builtin_handover_contract() noexcept {
        return builtin_handover_;
    }

    /// Registers a host contract the runtime implements itself, its table already filled in
    /// `storage`: a native singleton whose instance data is this core.
    template <std::size_t FunctionCount>
    void install_builtin_contract(builtin_contract_storage<FunctionCount>& storage,
                                  std::uint64_t contract_id, Version version) {
        HostContractInterface& iface = storage.iface;
        iface.contract_id = contract_id;
        iface.contract_version = version;
        iface.singleton = true;
        iface.dispatch_type = DispatchType_Native;
        iface.runtime = this;
        iface.user_data = this;
        iface.create_instance = [](const HostContractInterface* self, const void*,
                                   HostContractInstance* out) {
            if (out != nullptr) out->data = self->user_data;  // the runtime itself
        };
        iface.destroy_instance = [](const HostContractInterface*, HostContractInstance) {
        };  // owned by the runtime
        iface.dispatch.native = {FunctionCount, storage.table};
        host_contracts_.add(&iface).throw_if_failed();
    }

    /// The object that owns this core (set by basic_runtime; used by the C shim to destroy it).
    void set_owner(void* owner) noexcept { owner_ = owner; }
    [[nodiscard]] void* owner() const noexcept { return owner_; }

    [[nodiscard]] const runtime_options& options() const noexcept { return options_; }

    /// Changes what happens to the code of bundles unloaded from now on.
    void set_unmap_policy(unmap_policy policy, std::chrono::milliseconds grace) {
        const auto lock = lock_state();
        options_.unmap = policy;
        options_.unload_grace_period =
            grace < std::chrono::milliseconds(0) ? std::chrono::milliseconds(0) : grace;
    }

    /// Libraries of unloaded bundles still mapped, waiting for their grace period.
    [[nodiscard]] std::size_t pending_unmaps() const { return unmaps_.pending(); }
    [[nodiscard]] const detail::logger& logger() const noexcept { return logger_; }

    // ---- loaders ------------------------------------------------------------------------------

    /// Adds a loader; a name already taken is refused with errc::duplicate_loader.
    [[nodiscard]] status add_loader(loader_handle handle) {
        std::unique_lock lock(loaders_mutex_);
        for (const auto& existing : loaders_) {
            if (existing->name() == handle.name())
                return fail({errc::duplicate_loader,
                             "a loader named '" + handle.name() + "' is already registered"});
        }
        loaders_.push_back(std::make_unique<loader_handle>(std::move(handle)));
        return {};
    }

    /// Names of the registered loaders, in registration order.
    [[nodiscard]] std::vector<std::string> loader_names() const {
        std::shared_lock lock(loaders_mutex_);
        std::vector<std::string> names;
        for (const auto& loader : loaders_) names.push_back(loader->name());
        return names;
    }

    // ---- bundles ------------------------------------------------------------------------------

    /// Loads the bundle at `path` (its directory, or a file inside it): spec §9.5, with every
    /// registration of its init staged and published at once only if everything succeeded.
    [[nodiscard]] status load_bundle(const std::filesystem::path& path) {
        if (status st = detail::check_path_text(path, "load_bundle"); !st) return fail(st);
        shared_manifest m;
        if (status st = read_bundle_manifest(path, m); !st) return fail(st);
        return load_manifest(std::move(m));
    }

    /// Loads the bundle an already read manifest describes (load_dirs hands over the manifests
    /// its discovery parsed): the staging pipeline (stage_version), then one publication. A
    /// failure leaves the runtime as it was, including bundles the failed init loaded.
    [[nodiscard]] status load_manifest(shared_manifest m) {
        staged_version version;
        version.bundle_id = m->id;
        version.bundle = std::move(m);
        {
            const auto lock = lock_state();
            if (const auto it = bundles_.find(version.bundle_id); it != bundles_.end()) {
                return fail(
                    {errc::bundle_already_loaded,
                     "bundle '" + version.bundle->name + "' is already " +
                         (it->second.state == bundle_state::loading ? "being loaded" : "loaded") +
                         " (from '" + it->second.bundle->dir.string() + "')"});
            }
            bundle_record record;
            record.state = bundle_state::loading;
            record.bundle = version.bundle;
            record.sequence = ++load_sequence_;
            record.staging = &version;
            bundles_.emplace(version.bundle_id, std::move(record));
        }
        if (status st = stage_version(version, stage_kind::load); !st) {
            abandon_version(version);
            const auto lock = lock_state();
            bundles_.erase(version.bundle_id);
            return fail(st);
        }
        // Built only when someone listens (the default level, warn, drops it): a warm load is
        // a few microseconds, and this text would be a tenth of it.
        std::string loaded;
        if (logger_.enabled(log_level::info))
            loaded = "loaded bundle '" + version.bundle->name + "' " +
                     version.bundle->version.to_string() + " from '" +
                     version.bundle->dir.string() + "'";
        {
            const auto lock = lock_state();
            registry_.publish(version.bundle_id);
            bundle_record& record = bundles_.at(version.bundle_id);
            install_version(record, version);
            bump_revision();
        }
        init_windows_.note_nested_load(version.bundle_id);
        if (!loaded.empty()) logger_.info("runtime", loaded);
        return {};
    }

    /// Discovers the bundles in `dirs` (immediate subdirectories holding manifest.toml), checks
    /// the dependency graph (every requirement has a provider, no cycle) before loading anything,
    /// then loads them providers-first from the manifests the discovery read. Malformed
    /// candidates are skipped, reported in `report.skipped` and logged as warnings. All or
    /// nothing: if a bundle fails to load, the bundles this call loaded are unloaded again and
    /// the error names the one that failed.
    [[nodiscard]] status load_dirs(std::span<const std::filesystem::path> dirs,
                                   load_report& report) {
        report = {};
        if (status st = detail::check_path_text(dirs, "load_dirs"); !st) return fail(st);
        discovery_result found = discover(dirs);
        for (discovery_diagnostic& diagnostic : found.diagnostics) {
            logger_.warn("runtime", "scan: " + diagnostic.problem.message());
            report.skipped.push_back(std::move(diagnostic));
        }
        std::vector<manifest> candidates;
        std::vector<manifest> loaded = loaded_manifests();
        for (manifest& m : found.bundles) {
            const bool present = std::any_of(loaded.begin(), loaded.end(),
                                             [&](const manifest& l) { return l.id == m.id; });
            if (present)
                report.already_loaded.push_back(m.id);
            else
                candidates.push_back(std::move(m));
        }
        load_plan plan;
        if (status st = plan_load_order(candidates, loaded, plan); !st) return fail(st);
        for (const std::size_t index : plan.order) {
            const std::uint64_t id = candidates[index].id;
            status st =
                load_manifest(std::make_shared<const manifest>(std::move(candidates[index])));
            if (st) {
                report.loaded.push_back(id);
                continue;
            }
            for (auto it = report.loaded.rbegin(); it != report.loaded.rend(); ++it)
                (void)unload(*it, unload_mode::cascade);
            const std::size_t rolled_back = report.loaded.size();
            report.loaded.clear();
            return fail({st.code(), st.message() + " (load_dirs: the " +
                                        std::to_string(rolled_back) +
                                        " bundle(s) loaded before it were unloaded again)"});
        }
        return {};
    }

    /// Unloads `bundle_id` and, first, every loaded bundle that depends on it directly or
    /// transitively (cycle-safe), each with its own `Unloading` phase. `unloaded` receives the
    /// ids in the order they were unloaded.
    [[nodiscard]] status unload_cascade(std::uint64_t bundle_id,
                                        std::vector<std::uint64_t>* unloaded = nullptr) {
        std::vector<std::uint64_t> order;
        {
            const auto lock = lock_state();
            std::vector<manifest> manifests;
            std::size_t target = SIZE_MAX;
            for (const auto& [id, record] : bundles_) {
                if (record.state != bundle_state::loaded) continue;
                if (id == bundle_id) target = manifests.size();
                manifests.push_back(with_registered_contracts(*record.bundle));
            }
            if (target == SIZE_MAX)
                return fail({errc::bundle_not_loaded,
                             "unload: no loaded bundle has id " + format_id(bundle_id)});
            for (const std::size_t index : dependents_closure(manifests, target))
                order.push_back(manifests[index].id);
            order.push_back(bundle_id);
        }
        for (const std::uint64_t id : order) {
            if (status st = unload(id, unload_mode::cascade); !st) return st;
            if (unloaded != nullptr) unloaded->push_back(id);
        }
        return {};
    }

    /// Reloads the bundle at `path` (its directory or a file inside it) with its new code: spec
    /// §10.1, as one transaction with the dependents that opted in (`needs_reinit_on_dep_reload`).
    /// Fires `Preparing` per member, warns about live instances, loads every member's new version
    /// beside the old one (native libraries from private copies), then swaps all of them in one
    /// publication: handles and cached interface pointers keep working and reach the new code.
    /// Any failure leaves every member on its old version and fires one `Failed` naming the member
    /// and the reason. Reloads are serialised; one started from inside a reload (an on_reload
    /// callback) is refused with errc::reload_in_progress instead of deadlocking.
    [[nodiscard]] status reload_bundle(const std::filesystem::path& path) {
        // The unmap's stack scan starts here (see detail::runtime_entry).
        const detail::runtime_entry entry(__builtin_frame_address(0));
        if (status st = detail::check_path_text(path, "reload_bundle"); !st) return fail(st);
        if (reloading_thread_.load(std::memory_order_acquire) == std::this_thread::get_id())
            return fail(
                {errc::reload_in_progress,
                 "reload of '" + path.string() +
                     "' refused: this thread is already reloading (reload_bundle called from "
                     "an on_reload callback?); reloads are serialised and cannot nest"});
        std::lock_guard reload_lock(reload_mutex_);
        reloading_thread_.store(std::this_thread::get_id(), std::memory_order_release);
        struct clear_on_exit {
            std::atomic<std::thread::id>& owner;
            ~clear_on_exit() { owner.store(std::thread::id(), std::memory_order_release); }
        } clear{reloading_thread_};

        if (!options_.hot_reload_enabled)
            return fail(
                {errc::hot_reload_disabled, "reload of '" + path.string() +
                                                "' refused: hot reload is disabled in the "
                                                "runtime configuration (hot_reload_enabled)"});
        shared_manifest read;
        if (status st = read_bundle_manifest(path, read); !st) {
            fire_phase(ReloadPhaseType_Failed, 0, path.string(), st.message());
            return fail(st);
        }
        const manifest& m = *read;
        reload_transaction members;
        if (status st = plan_reload(read, members); !st) return fail(st);

        for (const staged_version& member : members) {
            fire_phase(ReloadPhaseType_Preparing, member.bundle_id, member.bundle->name, {});
            for (const contract_info& c : registry_.contracts_of(member.bundle_id))
                if (c.live_instances > 0)
                    logger_.warn("reload", "bundle '" + member.bundle->name +
                                               "': " + std::to_string(c.live_instances) +
                                               " live instance(s) of '" + c.contract_name +
                                               "' were not destroyed before the reload");
        }

        // Every member's new version is staged first (the same pipeline as a load); the
        // hand-overs then run back to back, right before the swap, so the window in which calls
        // reach an old version after its state was saved stays as short as possible.
        const auto roll_back = [&](std::size_t failed, const status& st) {
            for (staged_version& member : members) abandon_version(member);  // all: states too
            {
                const auto lock = lock_state();
                for (staged_version& member : members) {
                    bundle_record& record = bundles_.at(member.bundle_id);
                    record.state = bundle_state::loaded;
                    record.staging = nullptr;
                }
            }
            const std::string reason = members[failed].bundle_id == m.id
                                           ? st.message()
                                           : "dependent bundle '" + members[failed].bundle->name +
                                                 "' failed to reload: " + st.message();
            fire_phase(ReloadPhaseType_Failed, m.id, m.name, reason);
            return fail({st.code(), reason});
        };
        for (std::size_t i = 0; i < members.size(); ++i)
            if (status st = stage_version(members[i], stage_kind::reload); !st)
                return roll_back(i, st);
        for (std::size_t i = 0; i < members.size(); ++i)
            if (status st = hand_over_state(members[i]); !st) return roll_back(i, st);

        // The swap: every member's new version is published at once; what the old versions
        // used is collected to be released after the lock.
        std::vector<std::uint64_t> ids;
        for (const staged_version& member : members) ids.push_back(member.bundle_id);
        std::vector<released_version> released;
        {
            const auto lock = lock_state();
            (void)registry_.swap_reloaded(ids);
            for (staged_version& member : members) {
                bundle_record& record = bundles_.at(member.bundle_id);
                released.push_back({record.loader, record.load_id, std::move(record.artifact),
                                    record.private_copy});  // install_version sets the new one
                record.bundle = member.bundle;
                install_version(record, member);
            }
            bump_revision();
        }
        for (const released_version& old : released)
            retire_version(old.loader, old.load_id, old.artifact, old.private_copy, unmap_grace());
        for (const staged_version& member : members) {
            fire_phase(ReloadPhaseType_Reloaded, member.bundle_id, member.bundle->name, {});
            logger_.info("reload", "reloaded bundle '" + member.bundle->name + "' (now " +
                                       member.bundle->version.to_string() + ")");
        }
        return {};
    }

    /// Watches plugin directories: a bundle whose manifest or artifact changes is reloaded, a
    /// bundle directory that appears is loaded (see watcher.hpp). Replaces any earlier watch.
    /// Needs hot_reload_enabled.
    [[nodiscard]] status watch(std::span<const std::filesystem::path> dirs,
                               const watch_options& options) {
        if (status st = detail::check_path_text(dirs, "watch"); !st) return fail(st);
        if (!options_.hot_reload_enabled)
            return fail({errc::hot_reload_disabled,
                         "watch refused: hot reload is disabled in the runtime configuration "
                         "(hot_reload_enabled)"});
        directory_watcher::actions act;
        act.is_loaded = [this](const std::filesystem::path& dir) {
            std::error_code ec;
            const std::filesystem::path wanted = std::filesystem::weakly_canonical(dir, ec);
            const auto lock = lock_state();
            for (const auto& [id, record] : bundles_) {
                if (!is_live(record.state)) continue;
                std::error_code record_ec;
                if (std::filesystem::weakly_canonical(record.bundle->dir, record_ec) == wanted)
                    return true;
            }
            return false;
        };
        act.reload = [this](const std::filesystem::path& dir) { return reload_bundle(dir); };
        act.load = [this](const std::filesystem::path& dir) { return load_bundle(dir); };
        return fail(watcher_.start(dirs, options, std::move(act)));
    }

    /// Stops watching (joins the watcher's thread, unless called from it).
    void unwatch() { watcher_.stop(); }

    /// Manual watching (watch_options::background_thread = false): acts on settled changes now,
    /// on this thread. Returns how many bundles were reloaded or loaded.
    std::size_t poll_watch() { return watcher_.poll(); }

    [[nodiscard]] const directory_watcher& watcher() const noexcept { return watcher_; }

    /// Unloads a bundle: refused while another loaded bundle declared a dependency on a contract
    /// it provides. Fires `Unloading`, invalidates its contracts (handles go stale, cached
    /// interface pointers report StaleHandle), then reclaims its code once no runtime-mediated
    /// call is inside it.
    [[nodiscard]] status unload_bundle(std::uint64_t bundle_id) {
        return unload(bundle_id, unload_mode::refuse_if_needed);
    }

    /// Ids of every loaded bundle, in load order.
    [[nodiscard]] std::vector<std::uint64_t> bundle_ids() const {
        const auto lock = lock_state();
        std::vector<std::pair<std::uint64_t, std::uint64_t>> by_sequence;
        for (const auto& [id, record] : bundles_)
            if (is_live(record.state)) by_sequence.emplace_back(record.sequence, id);
        std::sort(by_sequence.begin(), by_sequence.end());
        std::vector<std::uint64_t> ids;
        for (const auto& entry : by_sequence) ids.push_back(entry.second);
        return ids;
    }

    /// Metadata of every loaded bundle, in load order.
    [[nodiscard]] std::vector<bundle_info> bundles() const {
        std::vector<bundle_info> result;
        for (const std::uint64_t id : bundle_ids())
            if (auto info = bundle(id)) result.push_back(std::move(*info));
        return result;
    }

    /// Metadata of one loaded bundle.
    [[nodiscard]] std::optional<bundle_info> bundle(std::uint64_t id) const {
        const auto lock = lock_state();
        const auto it = bundles_.find(id);
        if (it == bundles_.end() || !is_live(it->second.state)) return std::nullopt;
        const bundle_record& record = it->second;
        bundle_info info;
        info.id = id;
        info.name = record.bundle->name;
        info.version = record.bundle->version;
        info.loader = record.loader->name();
        info.language = record.loader->language();
        info.dir = record.bundle->dir;
        info.contracts = registry_.contracts_of(id);
        info.dependencies = record.bundle->dependencies;
        return info;
    }

    // ---- registration and lookups -------------------------------------------------------------

    /// `register_guest_contract`: only inside a bundle's init window (the calling thread's
    /// innermost one), staged until the load publishes. The manifest's word is checked before
    /// the plugin's table is read: a native table whose function_count differs from the one the
    /// manifest declares, or a contract the manifest does not declare at all, is that check's
    /// mismatch (spec §9.4 step 3): refused in Strict, a warning in Relaxed, allowed in Yolo.
    [[nodiscard]] registration_failure register_guest_contract(
        const PluginDescriptor* descriptor, const GuestContractInterface* iface) {
        const std::uint64_t bundle_id = init_windows_.current_bundle();
        std::string bundle_name;
        bool reloading = false;
        registration_failure failure;
        if (bundle_id != 0) {
            const auto lock = lock_state();
            const auto it = bundles_.find(bundle_id);
            if (it != bundles_.end() && it->second.staging != nullptr) {
                const staged_version& staging = *it->second.staging;
                bundle_name = staging.bundle->name;
                reloading = it->second.state == bundle_state::reloading;
                failure = check_against_manifest(*staging.bundle, descriptor, iface);
            }
        }
        if (bundle_id == 0 || bundle_name.empty()) {
            failure = {errc::registration_outside_init, "registration outside an init window",
                       "register_guest_contract: refused outside a bundle's init window (contracts "
                       "are registered "
                       "by polyplug_init while the runtime loads the bundle)"};
        } else if (failure.code == errc::ok) {
            failure = registry_.stage(bundle_id, bundle_name, descriptor, iface, reloading);
        } else {
            // Remembered, so that a load whose init ignores the refusal still fails with it.
            const auto lock = lock_state();
            if (const auto it = bundles_.find(bundle_id); it != bundles_.end() &&
                                                          it->second.staging != nullptr &&
                                                          it->second.staging->refused.ok())
                it->second.staging->refused = {failure.code, failure.detail};
        }
        if (failure.code != errc::ok) {
            last_error_.set(failure.detail);
            logger_.warn("registry", failure.detail);
        }
        return failure;
    }

    /// `find_guest_contract` with init-window enforcement: inside a bundle's init only declared
    /// dependencies are found.
    [[nodiscard]] GuestContractHandle find(std::uint64_t contract_id,
                                           std::uint32_t min_major) const {
        if (!init_windows_.may_look_up(contract_id)) return polyplug_null_handle();
        return registry_.find(contract_id, min_major);
    }

    [[nodiscard]] bool may_look_up(std::uint64_t contract_id) const {
        return init_windows_.may_look_up(contract_id);
    }

    /// `find_all_guest_contracts`: calls `sink(count)` once with the number of providers of
    /// `contract_id` with major >= `min_major`, then (if it returned true) `emit(handle)` for
    /// each in registration order, from one snapshot. Inside a bundle's init window only its
    /// declared dependencies are found (count 0 otherwise).
    template <class CountSink, class Emit>
    void find_all(std::uint64_t contract_id, std::uint32_t min_major, CountSink&& sink,
                  Emit&& emit) const {
        if (!init_windows_.may_look_up(contract_id)) {
            (void)sink(std::size_t{0});
            return;
        }
        registry_.visit_providers(contract_id, min_major, sink, emit);
    }

    /// Registers a host contract (stored by reference for the runtime's life); refused inside a
    /// bundle's init window (it would outlive the bundle's code), and for a malformed or
    /// duplicate interface.
    [[nodiscard]] status register_host_contract(const HostContractInterface* iface) {
        if (status refused = refuse_inside_init_window("register_host_contract"); !refused)
            return fail(refused);
        return fail(host_contracts_.add(iface));
    }

    /// Registers a loader given as a C table (ownership passes to the runtime on every path);
    /// refused inside a bundle's init window and for a malformed table or a name taken.
    [[nodiscard]] status register_loader(BundleLoader* table) {
        loader_handle handle;
        status st = loader_handle::adopt(table, handle);
        if (st) st = refuse_inside_init_window("register_loader");
        if (st) st = add_loader(std::move(handle));
        return fail(st);
    }

    [[nodiscard]] const GuestContractInterface* resolve(GuestContractHandle handle) const noexcept {
        return registry_.resolve(handle);
    }

    [[nodiscard]] const registry& contracts() const noexcept { return registry_; }
    [[nodiscard]] host_contract_registry& host_contracts() noexcept { return host_contracts_; }

    /// The calling bundle's declared dependencies (empty outside an init window).
    [[nodiscard]] std::vector<DependencyInfo> current_dependencies() const {
        const std::uint64_t id = init_windows_.current_bundle();
        std::vector<DependencyInfo> result;
        if (id == 0) return result;
        const auto lock = lock_state();
        const auto it = bundles_.find(id);
        if (it == bundles_.end()) return result;
        for (const manifest_dependency& dep : it->second.bundle->dependencies)
            result.push_back({dep.contract_id, dep.major, dep.bundle_id});
        return result;
    }

    /// Host contracts and loaders are stored by reference for the runtime's life; registered from
    /// a bundle's init they would point into code that an unload (or a failed init) unmaps. So
    /// they are refused there, naming the bundle.
    [[nodiscard]] status refuse_inside_init_window(std::string_view operation) const {
        const std::uint64_t bundle_id = init_windows_.current_bundle();
        if (bundle_id == 0) return {};
        std::string name = format_id(bundle_id);
        {
            const auto lock = lock_state();
            if (const auto it = bundles_.find(bundle_id); it != bundles_.end())
                name = "'" + it->second.bundle->name + "'";
        }
        return {errc::generic, std::string(operation) + ": refused during the init of bundle " +
                                   name +
                                   ": it is stored for the runtime's life and would outlive the "
                                   "bundle's code; register it from the host"};
    }

    /// host.polyplug.StateHandover's Offer: records what the version whose init runs on this
    /// thread offers for hand-overs (refused outside an init, naming the problem).
    [[nodiscard]] status offer_state(const PolyplugStateOffer* offer) {
        if (offer == nullptr)
            return fail({errc::invalid_pointer, "host.polyplug.StateHandover.Offer: null offer"});
        if (offer->reserved != 0)
            return fail({errc::generic,
                         "host.polyplug.StateHandover.Offer: `reserved` must be 0 (a newer "
                         "plugin for a newer runtime?)"});
        const std::uint64_t bundle_id = init_windows_.current_bundle();
        std::uint64_t load_id = 0;
        std::string name;
        if (bundle_id != 0) {
            const auto lock = lock_state();
            if (const auto it = bundles_.find(bundle_id);
                it != bundles_.end() && it->second.staging != nullptr) {
                name = it->second.staging->bundle->name;
                load_id = it->second.staging->load_id;
            }
        }
        if (load_id == 0)
            return fail({errc::registration_outside_init,
                         "host.polyplug.StateHandover.Offer: refused outside a bundle's init (a "
                         "version offers its state hand-over while it initialises)"});
        handovers_.offer(load_id, *offer);
        logger_.debug("reload", "bundle '" + name + "' offers a state hand-over (schema " +
                                    std::to_string(offer->schema_version) + ")");
        return {};
    }

    // ---- instances ----------------------------------------------------------------------------

    /// `create_guest_instance`: calls the interface's factory (loader data for VM contracts, null
    /// for native ones) and counts instances with non-null data.
    void create_instance(const GuestContractInterface* iface, const void* args,
                         GuestContractInstance* out) {
        if (out == nullptr) {
            record_failure({errc::invalid_pointer, "create_guest_instance: null out_instance"});
            return;
        }
        *out = {nullptr, 0};
        if (iface == nullptr) {
            record_failure({errc::invalid_pointer, "create_guest_instance: null interface"});
            return;
        }
        mediated_call(
            iface, &GuestContractInterface::create_instance,
            [&](GuestCreateInstanceFn create, VmLoaderData data, std::atomic<std::int64_t>* live) {
                create(data, host_api(), args, out);
                if (live != nullptr && out->data != nullptr)
                    live->fetch_add(1, std::memory_order_relaxed);
            });
    }

    /// `destroy_guest_instance`: the mirror of create_instance.
    void destroy_instance(const GuestContractInterface* iface, GuestContractInstance instance) {
        if (iface == nullptr) {
            record_failure({errc::invalid_pointer, "destroy_guest_instance: null interface"});
            return;
        }
        mediated_call(iface, &GuestContractInterface::destroy_instance,
                      [&](GuestDestroyInstanceFn destroy, VmLoaderData data,
                          std::atomic<std::int64_t>* live) {
                          destroy(data, host_api(), instance);
                          if (live != nullptr && instance.data != nullptr)
                              live->fetch_sub(1, std::memory_order_relaxed);
                      });
    }

    // ---- errors, logging, revision ------------------------------------------------------------

    /// Records a failure in last_error and the log (scope "runtime"), and returns it.
    status fail(status st) const {
        record_failure(st);
        return st;
    }

    /// Records a failure in last_error and the log; success is ignored.
    void record_failure(const status& st) const {
        if (st.ok()) return;
        last_error_.set(st.message());
        logger_.debug("runtime", st.message());
    }

    [[nodiscard]] detail::last_error& last_error() const noexcept { return last_error_; }

    /// Address of the revision counter: changes on every publication and unload.
    [[nodiscard]] const std::uint64_t* revision_counter() const noexcept { return &revision_; }
    [[nodiscard]] std::uint64_t revision() const noexcept {
        return std::atomic_ref(const_cast<std::uint64_t&>(revision_))
            .load(std::memory_order_acquire);
    }

private:
    enum class bundle_state { loading, loaded, reloading, unloading };
    // refuse_if_needed: the plain unload; cascade: a member of a computed dependents closure (no
    // refusal, phases fired); teardown: runtime destruction (no refusal, no phases).
    enum class unload_mode { refuse_if_needed, cascade, teardown };

    struct bundle_record {
        bundle_state state = bundle_state::loading;
        shared_manifest bundle;
        const loader_handle* loader = nullptr;
        detail::init_windows::allowed_set allowed;
        std::filesystem::path artifact;  // the file actually loaded (a private copy after a reload)
        bool private_copy = false;       // whether `artifact` is ours to delete
        std::uint64_t load_id = 0;       // the loader's key for the current version
        std::uint64_t sequence = 0;
        detail::staged_version* staging = nullptr;  // the version whose init runs, if any
    };

    using staged_version = detail::staged_version;
    using reload_transaction = detail::reload_transaction;
    enum class stage_kind { load, reload };

    // What a reload's swap takes from the running version, to release after the lock.
    struct released_version {
        const loader_handle* loader;
        std::uint64_t load_id;
        std::filesystem::path artifact;
        bool private_copy;
    };

    // The state lock, with the log deferred until after it is released: a host's log callback
    // may call back into the runtime (detail::logger::deferral). Members are destroyed in
    // reverse: the unlock first, then the delivery.
    struct state_lock {
        detail::logger::deferral deferred_log;
        std::unique_lock<std::mutex> lock;
    };
    [[nodiscard]] state_lock lock_state() const {
        return {detail::logger::deferral(logger_), std::unique_lock(state_mutex_)};
    }

    struct pending_reclaim {
        const loader_handle* loader;  // null: the loader already let go (it handed over)
        std::uint64_t load_id;
        std::filesystem::path private_copy;  // removed once the loader let go of it
    };

    template <class Fn>
    static Fn read_entry(const Fn& entry) noexcept {
        // Our interface copies are re-pointed to stubs while other threads read them.
        return std::atomic_ref(const_cast<Fn&>(entry)).load(std::memory_order_acquire);
    }

    // Calls an interface's lifecycle entry with the runtime counted as inside plugin code, so an
    // unload meanwhile defers closing the library. Our own copies may be re-pointed to stubs
    // concurrently (hence the atomic read); a foreign interface is called as given.
    template <class Fn, class Body>
    void mediated_call(const GuestContractInterface* iface, Fn GuestContractInterface::*entry,
                       Body&& body) {
        {
            const auto inside = mediated_calls_.enter();
            std::atomic<std::int64_t>* live = registry_.instance_counter(iface);
            const Fn fn = live != nullptr ? read_entry(iface->*entry) : iface->*entry;
            if (fn == nullptr) {
                record_failure({errc::invalid_pointer, "interface has a null lifecycle function"});
                return;
            }
            const VmLoaderData data = iface->dispatch_type == DispatchType_VirtualMachine
                                          ? iface->dispatch.vm.loader_data
                                          : VmLoaderData{nullptr};
            body(fn, data, live);
        }
        run_reclaims_if_pending();
    }

    static std::string join(const std::vector<std::string>& names) {
        std::string out;
        for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
        return out.empty() ? "none" : out;
    }

    // A negative grace tells the scheduler "only at teardown".
    [[nodiscard]] std::chrono::milliseconds unmap_grace() const {
        const auto lock = lock_state();
        return options_.unmap == unmap_policy::never ? std::chrono::milliseconds(-1)
                                                     : options_.unload_grace_period;
    }

    // Unique per load or reload, never 0 (caller holds state_mutex_).
    std::uint64_t next_load_id() noexcept { return ++last_load_id_; }

    void bump_revision() noexcept {
        std::atomic_ref(revision_).fetch_add(1, std::memory_order_release);
    }

    [[nodiscard]] static bool is_live(bundle_state state) noexcept {
        return state == bundle_state::loaded || state == bundle_state::reloading;
    }

    // The reload's members (detail::reload_members): the bundle and the dependents that opted
    // in, each with its manifest read again; ordered providers first. Marks them all
    // `reloading` (caller holds reload_mutex_).
    [[nodiscard]] status plan_reload(const shared_manifest& read, reload_transaction& members) {
        const manifest& target = *read;
        std::vector<std::uint64_t> ids;
        struct dependent {
            std::uint64_t id;
            std::string name;  // as loaded, for the message if its manifest cannot be read
            std::filesystem::path dir;
        };
        std::vector<dependent> to_read;
        {
            const auto lock = lock_state();
            const auto it = bundles_.find(target.id);
            if (it == bundles_.end() || it->second.state != bundle_state::loaded)
                return {errc::bundle_not_loaded,
                        "reload: bundle '" + target.name +
                            "' is not loaded (load it before reloading it)"};
            std::vector<detail::reload_candidate> candidates;
            for (const auto& [id, record] : bundles_) {
                if (record.state != bundle_state::loaded) continue;
                detail::reload_candidate c;
                c.id = id;
                c.opted_in = record.bundle->needs_reinit_on_dep_reload;
                if (record.allowed) c.depends_on = *record.allowed;
                for (const contract_info& info : registry_.contracts_of(id))
                    c.provides.push_back(info.contract_id);
                for (const provided_contract& p : record.bundle->provides)
                    c.provides.push_back(p.contract_id);
                candidates.push_back(std::move(c));
            }
            ids = detail::reload_members(target.id, candidates);
            for (const std::uint64_t id : ids)
                if (id != target.id)
                    to_read.push_back(
                        {id, bundles_.at(id).bundle->name, bundles_.at(id).bundle->dir});
        }
        reload_transaction planned;
        for (const std::uint64_t id : ids) {
            staged_version member;
            member.bundle_id = id;
            if (id == target.id) {
                member.bundle = read;
            } else {
                const dependent& d = *std::find_if(to_read.begin(), to_read.end(),
                                                   [&](const dependent& e) { return e.id == id; });
                if (status st = read_manifest_cached(d.dir, member.bundle); !st)
                    return {st.code(), "reload: dependent bundle '" + d.name + "' in '" +
                                           d.dir.string() + "': " + st.message()};
            }
            planned.push_back(std::move(member));
        }
        const auto lock = lock_state();
        for (const staged_version& member : planned) {
            const auto it = bundles_.find(member.bundle_id);
            if (it == bundles_.end() || it->second.state != bundle_state::loaded)
                return {errc::bundle_not_loaded, "reload: bundle '" + member.bundle->name +
                                                     "' was unloaded while the reload began"};
        }
        // Providers first; among opted-in bundles in a cycle, the order found above.
        std::vector<manifest> manifests;
        for (const staged_version& member : planned) manifests.push_back(*member.bundle);
        load_plan plan;
        if (plan_load_order(manifests, loaded_manifests_locked(ids), plan).ok()) {
            for (const std::size_t index : plan.order) members.push_back(std::move(planned[index]));
        } else {
            members = std::move(planned);
        }
        for (staged_version& member : members) {
            bundle_record& record = bundles_.at(member.bundle_id);
            record.state = bundle_state::reloading;
            record.staging = &member;
        }
        return {};
    }

    // The one staging pipeline, for a load and for each member of a reload alike. In order:
    // the manifest's own rules (declared function counts), the artifact (inside the bundle), the
    // loader the manifest names, the dependency versions against what is loaded, a private copy
    // where dlopen would hand back a mapping it has, then, inside the bundle's init window, the
    // loader's own checks and the init (loader_handle::load or reload), then the registration
    // checks. Nothing is published here. On failure the caller calls abandon_version.
    [[nodiscard]] status stage_version(staged_version& v, stage_kind kind) {
        const manifest& m = *v.bundle;
        if (status st = check_declared_function_counts(m); !st) return st;
        if (status st = resolve_artifact(m, options_.allow_symlinks_outside_bundle, v.artifact,
                                         &v.artifact_identity);
            !st)
            return st;
        v.loader = find_loader(m.loader);
        if (v.loader == nullptr)
            return {errc::no_loader, "bundle '" + m.name + "': no loader named '" + m.loader +
                                         "' (registered: " + join(loader_names()) + ")"};
        if (kind == stage_kind::reload && !v.loader->supports_hot_reload())
            return {errc::hot_reload_disabled, "reload: bundle '" + m.name + "': loader '" +
                                                   v.loader->name() + "' cannot reload bundles"};
        if (m.dependencies.empty()) {
            // The common case shares one empty set (an allocation saved per load).
            static const auto none = std::make_shared<const std::vector<std::uint64_t>>();
            v.allowed = none;
        } else {
            auto allowed = std::make_shared<std::vector<std::uint64_t>>();
            for (const manifest_dependency& dep : m.dependencies)
                allowed->push_back(dep.contract_id);
            v.allowed = std::move(allowed);
        }
        {
            const auto lock = lock_state();
            if (status st = check_dependency_versions(m); !st) return st;
            v.load_id = next_load_id();
        }
        // glibc hands back the library it has mapped for this path, and the new code would
        // never run: on a reload, the running version; on a load, a version this runtime
        // released that is still in its grace period. A mapping held by the host or another
        // runtime is shared, as dlopen shares it.
        if (v.loader->wants_private_copies() && needs_private_copy(v.artifact, kind)) {
            std::filesystem::path copy;
            if (status st = copies_.make(v.artifact, v.load_id, copy); !st)
                return {st.code(), "bundle '" + m.name + "': " + st.message()};
            v.artifact = std::move(copy);
            v.artifact_identity = {};
            v.private_copy = true;
        }
        // The artifact path is lent to the context for the loader's call and taken back after
        // it (a copy saved per load); nothing reads `v.artifact` meanwhile.
        bundle_context context{host_api(), v.bundle_id, v.bundle.get(),     std::move(v.artifact),
                               v.load_id,  &options_,   v.artifact_identity};
        struct give_back {
            std::filesystem::path& to;
            std::filesystem::path& from;
            ~give_back() { to = std::move(from); }
        } artifact_back{v.artifact, context.artifact};
        status loaded;
        try {
            const detail::init_windows::scope window(init_windows_, v.bundle_id, v.allowed,
                                                     &v.nested_loads);
            loaded = kind == stage_kind::load ? v.loader->load(context) : v.loader->reload(context);
        } catch (const std::exception& e) {
            // A C++ loader that throws must not leave the bundle half-registered.
            loaded = {errc::init_failed, "bundle '" + m.name + "': loader '" + v.loader->name() +
                                             "' threw: " + e.what()};
        } catch (...) {
            loaded = {errc::init_failed, "bundle '" + m.name + "': loader '" + v.loader->name() +
                                             "' threw a non-standard exception"};
        }
        // A registration the manifest's check refused fails the load with that reason, whether
        // the init went on regardless or failed because of it.
        {
            const auto lock = lock_state();
            if (!v.refused.ok()) return v.refused;
        }
        return loaded;
    }

    // Makes a staged version the bundle's running one (caller holds the state lock and has
    // published its registrations).
    // The caller installs the manifest (a load exchanges it, a reload's swap copies it). The
    // artifact path moves into the record: neither caller reads `v.artifact` afterwards.
    static void install_version(bundle_record& record, staged_version& v) {
        record.loader = v.loader;
        record.allowed = v.allowed;
        record.artifact = std::move(v.artifact);
        record.private_copy = v.private_copy;
        record.load_id = v.load_id;
        record.staging = nullptr;
        record.state = bundle_state::loaded;
    }

    [[nodiscard]] bool needs_private_copy(const std::filesystem::path& artifact,
                                          stage_kind kind) const {
        if (kind == stage_kind::reload) return detail::unmap_scheduler::is_mapped(artifact);
        // Nothing of ours in its grace period: no mapping to ask glibc about (a dlopen and a
        // dlclose saved on every load that follows an unload with no grace).
        if (unmaps_.pending() == 0) return false;
        void* mapped = detail::unmap_scheduler::pin(artifact);
        if (mapped == nullptr) return false;
        const bool ours = unmaps_.holds(mapped);
        ::dlclose(mapped);
        return ours;
    }

    // Undoes a staged version: the bundles its init loaded (newest first), its staged
    // registrations, its loaded code, its hand-over offer and its private copy. The running
    // version, on a reload, was never touched and serves on.
    void abandon_version(staged_version& v) {
        for (auto it = v.nested_loads.rbegin(); it != v.nested_loads.rend(); ++it) {
            if (status st = unload(*it, unload_mode::cascade); st)
                logger_.warn("runtime", "bundle '" + v.bundle->name + "' failed: the bundle " +
                                            format_id(*it) + " its init loaded was unloaded again");
        }
        v.nested_loads.clear();
        registry_.discard_pending(v.bundle_id);
        if (v.load_id != 0 && v.loader != nullptr) v.loader->unload(host_api(), v.load_id);
        handovers_.forget(v.load_id);
        if (v.private_copy) detail::private_copies::remove(v.artifact);
    }

    // Hands the member's state from its old version to its new one (host.polyplug.StateHandover),
    // when the old version saves and the new one restores.
    [[nodiscard]] status hand_over_state(const staged_version& member) {
        std::uint64_t old_load_id = 0;
        {
            const auto lock = lock_state();
            old_load_id = bundles_.at(member.bundle_id).load_id;
        }
        detail::state_handovers::outcome outcome{};
        if (status st = handovers_.hand_over(host_api(), member.bundle->name, old_load_id,
                                             member.load_id, outcome);
            !st)
            return st;
        if (outcome == detail::state_handovers::outcome::handed_over)
            logger_.info("reload", "bundle '" + member.bundle->name +
                                       "': state handed over to the new version");
        else if (outcome == detail::state_handovers::outcome::dropped)
            logger_.warn("reload", "bundle '" + member.bundle->name +
                                       "': the old version saved state but the new version does "
                                       "not restore any; the state is dropped");
        return {};
    }

    // Releases one loaded version: the loader lets go of it once no mediated call is inside, and
    // its code stays mapped for `grace` (see unmap_scheduler; negative: until teardown).
    void retire_version(const loader_handle* loader, std::uint64_t load_id,
                        const std::filesystem::path& artifact, bool private_copy,
                        std::chrono::milliseconds grace) {
        handovers_.forget(load_id);  // its callbacks live in the code being released
        // The reference that keeps the code mapped: the loader's own handle when it hands it
        // over (the native loader: it forgets the version now, and the scheduler's dlclose is
        // the last), else one more taken by name before the loader lets go, so that the mapping
        // outlives the loader's close.
        const bool handed_over = loader->hands_over_libraries();
        void* mapping =
            handed_over ? loader->release_library(load_id) : detail::unmap_scheduler::pin(artifact);
        if (!handed_over || private_copy) {
            std::lock_guard lock(reclaim_mutex_);
            reclaims_.push_back({handed_over ? nullptr : loader, load_id,
                                 private_copy ? artifact : std::filesystem::path()});
            reclaims_pending_.store(true, std::memory_order_release);
        }
        run_reclaims(/*force=*/grace.count() < 0);
        // This thread's stack is scanned from where its unload or reload entered the runtime.
        unmaps_.schedule(mapping, grace, detail::hazards::runtime_entry_frame);
    }

    [[nodiscard]] std::vector<manifest> loaded_manifests_locked(
        const std::vector<std::uint64_t>& except) const {
        std::vector<manifest> result;
        for (const auto& [id, record] : bundles_)
            if (is_live(record.state) &&
                std::find(except.begin(), except.end(), id) == except.end())
                result.push_back(*record.bundle);
        return result;
    }

    // `m` with every contract the bundle registered added to `provides`, so that dependency
    // relations agree with the plain unload's refusal (which looks at registrations too) even for
    // a bundle whose manifest leaves `provides` out (caller holds state_mutex_).
    [[nodiscard]] manifest with_registered_contracts(const manifest& m) const {
        manifest result = m;
        for (const contract_info& c : registry_.contracts_of(m.id)) {
            if (std::any_of(
                    result.provides.begin(), result.provides.end(),
                    [&](const provided_contract& p) { return p.contract_id == c.contract_id; }))
                continue;
            provided_contract p;
            p.name = c.contract_name.substr(0, c.contract_name.find('@'));
            p.major = c.version.major;
            p.contract_id = c.contract_id;
            result.provides.push_back(std::move(p));
        }
        return result;
    }

    [[nodiscard]] std::vector<manifest> loaded_manifests() const {
        const auto lock = lock_state();
        std::vector<manifest> result;
        for (const auto& [id, record] : bundles_)
            if (is_live(record.state)) result.push_back(*record.bundle);
        return result;
    }

    [[nodiscard]] const loader_handle* find_loader(const std::string& name) const {
        std::shared_lock lock(loaders_mutex_);
        for (const auto& loader : loaders_)
            if (loader->name() == name) return loader.get();
        return nullptr;
    }

    // `path` is the bundle's directory (tried first: one open in the common case) or a file
    // inside it; what it is, is looked at only when the first try fails.
    status read_bundle_manifest(const std::filesystem::path& path, shared_manifest& m) {
        status st = read_manifest_cached(path, m);
        if (st) return st;
        std::error_code ec;
        const auto kind = std::filesystem::status(path, ec).type();
        if (kind == std::filesystem::file_type::not_found ||
            (ec && kind == std::filesystem::file_type::none))
            return {errc::manifest_invalid,
                    "no bundle at '" + path.string() + "': the path does not exist"};
        if (kind == std::filesystem::file_type::directory) return st;
        return read_manifest_cached(path.parent_path(), m);
    }

    // read_manifest, parsing only text this runtime has not parsed before (manifest_cache).
    status read_manifest_cached(const std::filesystem::path& dir, shared_manifest& m) {
        return manifests_.read(dir, m);
    }

    /// Strict fails, Relaxed warns (scope "runtime") and goes on, Yolo ignores (spec §9.4).
    [[nodiscard]] status apply_compatibility(status mismatch) const {
        if (mismatch.ok()) return mismatch;
        switch (options_.compat) {
            case compatibility::strict:
                return mismatch;
            case compatibility::relaxed:
                logger_.warn("runtime", mismatch.message());
                return {};
            case compatibility::yolo:
                return {};
        }
        return mismatch;
    }

    // Spec §9.4 check 2: every provided contract has a function_count entry.
    [[nodiscard]] status check_declared_function_counts(const manifest& m) const {
        for (const provided_contract& provided : m.provides) {
            if (m.function_count.contains(provided.key())) continue;
            status st =
                apply_compatibility({errc::function_count_mismatch,
                                     "bundle '" + m.name + "': provides '" + provided.key() +
                                         "' but its manifest has no function_count entry for it"});
            if (!st) return st;
        }
        return {};
    }

    // Spec §9.4 check 3, made when the init registers a contract, before the registry reads the
    // plugin's table: the contract is one the manifest declares (in `provides` or
    // `function_count`), and a native table's function_count is the declared one. Strict
    // refuses, Relaxed warns, Yolo allows (apply_compatibility). Caller holds the state lock.
    [[nodiscard]] registration_failure check_against_manifest(
        const manifest& m, const PluginDescriptor* descriptor,
        const GuestContractInterface* iface) const {
        // Null and malformed fields are the registry's to report, with the field named
        // (registry::stage validates); only a registration well-formed up to its table is
        // held against the manifest here.
        if (descriptor == nullptr || iface == nullptr || iface->create_instance == nullptr ||
            iface->destroy_instance == nullptr || descriptor->contract_name.ptr == nullptr ||
            descriptor->contract_name.len == 0 ||
            !detail::is_valid_utf8(descriptor->contract_name.ptr, descriptor->contract_name.len))
            return {};
        if (iface->dispatch_type == DispatchType_Native) {
            const NativeDispatch& native = iface->dispatch.native;
            if (native.function_count > max_function_count ||
                (native.function_count > 0 && native.functions == nullptr))
                return {};
        } else if (iface->dispatch_type != DispatchType_VirtualMachine ||
                   iface->dispatch.vm.call == nullptr) {
            return {};
        }
        const std::string_view name = detail::view_of(descriptor->contract_name);
        const std::string key = std::string(name.substr(0, name.find('@'))) + "@" +
                                std::to_string(iface->contract_version.major);
        const auto declared = m.function_count.find(key);
        // `provides` is scanned only when `function_count` (a map) does not name the contract:
        // registering n contracts stays O(n log n), not O(n^2).
        const std::string_view bare = name.substr(0, name.find('@'));
        const auto is_it = [&](const provided_contract& p) {
            return p.major == iface->contract_version.major && p.name == bare;
        };
        const bool undeclared = declared == m.function_count.end() &&
                                std::none_of(m.provides.begin(), m.provides.end(), is_it);
        status mismatch;
        std::string_view abi_message;
        if (undeclared) {
            abi_message = "contract not declared in the bundle's manifest";
            mismatch = {errc::function_count_mismatch,
                        "bundle '" + m.name + "': registers contract '" + key +
                            "', which its manifest does not declare (no `provides` or "
                            "`function_count` entry names it)"};
        } else if (iface->dispatch_type == DispatchType_Native &&
                   declared != m.function_count.end() &&
                   declared->second != iface->dispatch.native.function_count) {
            abi_message = "function_count differs from the manifest's";
            mismatch = {errc::function_count_mismatch,
                        "bundle '" + m.name + "': contract '" + key + "' declared function_count " +
                            std::to_string(declared->second) + " but interface exports " +
                            std::to_string(iface->dispatch.native.function_count)};
        }
        if (const status st = apply_compatibility(mismatch); !st)
            return {st.code(), abi_message, st.message()};
        return {};
    }

    // Spec §9.4 check 1, against loaded providers (caller holds state_mutex_).
    [[nodiscard]] status check_dependency_versions(const manifest& m) const {
        for (const manifest_dependency& dep : m.dependencies) {
            if (dep.min_version.empty()) continue;
            polyplug::version required{dep.major, 0, 0};
            if (const auto parsed = polyplug::version::parse(dep.min_version)) required = *parsed;
            for (const auto& [id, record] : bundles_) {
                if (record.state != bundle_state::loaded ||
                    record.bundle->find_provided(dep.contract) == nullptr)
                    continue;
                if (!dep.bundle.empty() && record.bundle->name != dep.bundle) continue;
                if (record.bundle->version.is_compatible_with(required)) continue;
                status st = apply_compatibility(
                    {errc::version_mismatch,
                     "bundle '" + m.name + "': version mismatch: requires '" + dep.contract + "' " +
                         required.to_string() + " (same major, at least that minor) but bundle '" +
                         record.bundle->name + "' provides version " +
                         record.bundle->version.to_string()});
                if (!st) return st;
            }
        }
        return {};
    }

    [[nodiscard]] status unload(std::uint64_t bundle_id, unload_mode mode) {
        // The unmap's stack scan starts here (see detail::runtime_entry).
        const detail::runtime_entry entry(__builtin_frame_address(0));
        std::string name;
        const loader_handle* loader = nullptr;
        std::filesystem::path artifact;
        std::uint64_t load_id = 0;
        bool private_copy = false;
        {
            const auto lock = lock_state();
            const auto it = bundles_.find(bundle_id);
            if (it == bundles_.end() || it->second.state == bundle_state::loading)
                return fail({errc::bundle_not_loaded,
                             "unload: no loaded bundle has id " + format_id(bundle_id)});
            if (it->second.state == bundle_state::reloading)
                return fail({errc::bundle_not_loaded,
                             "unload: bundle '" + it->second.bundle->name + "' is being reloaded"});
            if (it->second.state == bundle_state::unloading)
                return fail({errc::bundle_not_loaded, "unload: bundle '" + it->second.bundle->name +
                                                          "' is already being unloaded"});
            name = it->second.bundle->name;
            loader = it->second.loader;
            // Moved out: nothing reads the artifact of a bundle being unloaded, and the record
            // goes away below.
            artifact = std::move(it->second.artifact);
            load_id = it->second.load_id;
            private_copy = it->second.private_copy;
            if (mode == unload_mode::refuse_if_needed) {
                const std::vector<std::string> dependents = dependents_of(bundle_id);
                if (!dependents.empty())
                    return fail({errc::dependency_in_use,
                                 "unload: bundle '" + name + "' is still needed by " +
                                     join(dependents) + " (unload those first)"});
            }
            it->second.state = bundle_state::unloading;
        }

        if (mode != unload_mode::teardown)
            fire_phase(ReloadPhaseType_Unloading, bundle_id, name, {});

        std::vector<contract_info> retired;
        {
            const auto lock = lock_state();
            retired = registry_.retire_bundle(bundle_id);
            bundles_.erase(bundle_id);
            bump_revision();
        }
        for (const contract_info& contract : retired) {
            if (contract.live_instances > 0 && mode != unload_mode::teardown)
                logger_.warn("runtime", "unload: bundle '" + name + "' still has " +
                                            std::to_string(contract.live_instances) +
                                            " live instance(s) of '" + contract.contract_name +
                                            "'; they were not destroyed before unload");
        }
        retire_version(
            loader, load_id, artifact, private_copy,
            mode == unload_mode::teardown ? std::chrono::milliseconds(-1) : unmap_grace());
        if (logger_.enabled(log_level::info))
            logger_.info("runtime", "unloaded bundle '" + name + "'");
        return {};
    }

    // Names of other loaded bundles that declared a dependency on a contract `bundle_id`
    // provides (caller holds state_mutex_).
    [[nodiscard]] std::vector<std::string> dependents_of(std::uint64_t bundle_id) const {
        // Most bundles depend on nothing: then nobody can depend on this one, and the list of
        // what it provides (a registry walk and a copy of each contract's name) is not needed.
        const bool anyone_depends =
            std::any_of(bundles_.begin(), bundles_.end(), [&](const auto& b) {
                return b.first != bundle_id && b.second.allowed && !b.second.allowed->empty();
            });
        if (!anyone_depends) return {};
        std::vector<std::uint64_t> provided;
        for (const contract_info& contract : registry_.contracts_of(bundle_id))
            provided.push_back(contract.contract_id);
        if (const auto it = bundles_.find(bundle_id); it != bundles_.end())
            for (const provided_contract& p : it->second.bundle->provides)
                provided.push_back(p.contract_id);
        std::vector<std::string> names;
        for (const auto& [id, record] : bundles_) {
            if (id == bundle_id || record.state == bundle_state::unloading || !record.allowed)
                continue;
            const bool depends =
                std::any_of(record.allowed->begin(), record.allowed->end(), [&](std::uint64_t c) {
                    return std::find(provided.begin(), provided.end(), c) != provided.end();
                });
            if (depends) names.push_back("'" + record.bundle->name + "'");
        }
        return names;
    }

    void fire_phase(std::uint32_t phase, std::uint64_t bundle_id, const std::string& name,
                    std::string_view reason) const {
        if (!options_.on_reload) return;
        const ReloadPhase event{
            phase, bundle_id, detail::string_view_of(name),
            reason.empty() ? StringView{nullptr, 0} : detail::string_view_of(reason)};
        try {
            options_.on_reload(event);
        } catch (...) {
            // A host callback that throws must not abandon the unload halfway.
            logger_.error("runtime", "on_reload callback threw; ignored");
        }
    }

    void run_reclaims_if_pending() {
        if (reclaims_pending_.load(std::memory_order_acquire)) run_reclaims(false);
    }

    // Closes the code of unloaded bundles once no runtime-mediated call (instance create or
    // destroy) is inside any plugin. Hook calls run outside every lock: library destructors may
    // call back into the runtime.
    void run_reclaims(bool force) {
        std::vector<pending_reclaim> ready;
        {
            std::lock_guard lock(reclaim_mutex_);
            if (reclaims_.empty() || (!force && !mediated_calls_.quiescent())) return;
            ready.swap(reclaims_);
            reclaims_pending_.store(false, std::memory_order_release);
        }
        for (const pending_reclaim& reclaim : ready) {
            if (reclaim.loader != nullptr) reclaim.loader->unload(host_api(), reclaim.load_id);
            // The mapping may live on (grace period); the file is no longer needed for it.
            if (!reclaim.private_copy.empty()) {
                std::error_code ignored;
                std::filesystem::remove(reclaim.private_copy, ignored);
            }
        }
    }

    runtime_options options_;
    detail::logger logger_;
    // The HostApi table plugins hold, in a block of its own: a thread a bundle left running
    // (its library then stays mapped at teardown) may call through it after the runtime is
    // gone. The destructor empties `core` (every thunk then answers as for a null runtime) and
    // frees the block only if no plugin code stays mapped; otherwise it is kept, one small
    // block per such runtime, for the rest of the process.
    struct host_api_block {
        HostApi table{};
        runtime_core* core = nullptr;  // atomic_ref: read by thunks on plugin threads
        host_api_block* next_kept = nullptr;
    };

    // Blocks kept for the rest of the process are linked from here: reachable, so not a leak
    // to LeakSanitizer (they are what a thread still running plugin code may call through).
    static void keep_for_the_process(host_api_block* block) noexcept {
        static std::atomic<host_api_block*> kept{nullptr};
        block->next_kept = kept.load(std::memory_order_relaxed);
        while (!kept.compare_exchange_weak(block->next_kept, block, std::memory_order_release,
                                           std::memory_order_relaxed)) {
        }
    }
    host_api_block* api_ = new host_api_block;
    void* owner_ = nullptr;
    runtime_contract_storage builtin_;
    handover_contract_storage builtin_handover_;
    detail::state_handovers handovers_;  // what each loaded version offered, by load id
    mutable detail::last_error last_error_;

    registry registry_;
    host_contract_registry host_contracts_;
    detail::init_windows init_windows_;
    detail::reader_tracker mediated_calls_;

    mutable std::shared_mutex loaders_mutex_;
    std::vector<std::unique_ptr<loader_handle>> loaders_;  // never shrinks while bundles exist

    mutable std::mutex state_mutex_;
    std::map<std::uint64_t, bundle_record> bundles_;
    std::uint64_t load_sequence_ = 0;
    std::uint64_t last_load_id_ = 0;

    std::mutex reload_mutex_;  // serialises reloads (held across a whole reload, cascade included)
    std::atomic<std::thread::id> reloading_thread_{};
    detail::private_copies copies_{this};
    detail::manifest_cache manifests_;

    detail::unmap_scheduler unmaps_{[this] { return mediated_calls_.quiescent(); }, logger_};

    std::mutex reclaim_mutex_;
    std::vector<pending_reclaim> reclaims_;
    std::atomic<bool> reclaims_pending_{false};

    alignas(std::atomic_ref<std::uint64_t>::required_alignment) std::uint64_t revision_ = 0;

    // Last: destroyed first, so its thread never outlives what it calls (also stopped
    // explicitly at the top of the destructor).
    directory_watcher watcher_{logger_};
};

POLYPLUG_END_NAMESPACE
