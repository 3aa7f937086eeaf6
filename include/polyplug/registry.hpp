// SPDX-License-Identifier: MIT
/// @file registry.hpp
/// The guest-contract registry: slots with generations, the runtime's own copies of every
/// registered interface and function table, registration rules (spec §8.1, §9.6), and lock-free
/// lookups through an immutable published index.
#pragma once

#include <polyplug/bundle_info.hpp>
#include <polyplug/detail/dispatch_check.hpp>
#include <polyplug/detail/reader_slots.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/error.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/version.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

namespace detail {

inline constexpr std::string_view stale_call_message =
    "stale handle: the bundle that provided this contract was unloaded";

// What a retired interface copy's entries are switched to: a host that cached the pointer gets a
// StaleHandle error instead of a jump into code that may already be unmapped.
inline void stale_native_call(GuestContractInstance, const void*, void*, AbiError* out_err) {
    if (out_err != nullptr)
        *out_err = {AbiErrorCode_StaleHandle, string_view_of(stale_call_message)};
}
inline void stale_vm_call(VmLoaderData, GuestContractInstance, std::uint32_t, const void*, void*,
                          CallArena*, AbiError* out_err) {
    if (out_err != nullptr)
        *out_err = {AbiErrorCode_StaleHandle, string_view_of(stale_call_message)};
}
inline void stale_create_instance(VmLoaderData, const HostApi*, const void*,
                                  GuestContractInstance* out_instance) {
    if (out_instance != nullptr) *out_instance = {nullptr, 0};
}
inline void stale_destroy_instance(VmLoaderData, const HostApi*, GuestContractInstance) {}

/// The runtime's copy of one registered interface. Its address is what resolve hands out, so it
/// lives as long as the registry (a retired copy is stubbed, never freed while the runtime lives).
struct interface_copy {
    GuestContractInterface iface{};
    std::unique_ptr<const void*[]> table;  // native function table; iface points at it
    std::uint32_t capacity = 0;            // entries `table` can hold
    std::vector<std::unique_ptr<const void*[]>> outgrown;  // tables a reload replaced: kept
    std::atomic<std::int64_t> live_instances{0};

    // A reload's new version of the same native contract, written over this copy so that every
    // cached pointer to it now reaches the new code. Each entry is one atomic store; a bigger
    // table is published before the bigger count, so a reader that sees the new count also sees
    // a table that long. Entries beyond a shrunken count become stubs.
    void rewrite(const interface_copy& fresh) {
        if (iface.dispatch_type == DispatchType_VirtualMachine) {
            rewrite_vm(fresh);
            return;
        }
        const std::uint32_t count = fresh.iface.dispatch.native.function_count;
        const std::uint32_t previous = iface.dispatch.native.function_count;
        if (count > capacity) {
            std::unique_ptr<const void*[]> bigger(new const void*[count]);
            for (std::uint32_t i = 0; i < count; ++i) bigger[i] = fresh.table[i];
            std::atomic_ref(iface.dispatch.native.functions)
                .store(bigger.get(), std::memory_order_release);
            outgrown.push_back(std::move(table));
            table = std::move(bigger);
            capacity = count;
        } else {
            for (std::uint32_t i = 0; i < count; ++i)
                std::atomic_ref(table[i]).store(fresh.table[i], std::memory_order_release);
            for (std::uint32_t i = count; i < previous; ++i)
                std::atomic_ref(table[i]).store(reinterpret_cast<const void*>(&stale_native_call),
                                                std::memory_order_release);
        }
        std::atomic_ref(iface.dispatch.native.function_count)
            .store(count, std::memory_order_release);
        std::atomic_ref(iface.create_instance)
            .store(fresh.iface.create_instance, std::memory_order_release);
        std::atomic_ref(iface.destroy_instance)
            .store(fresh.iface.destroy_instance, std::memory_order_release);
        std::atomic_ref(iface.contract_version.minor)
            .store(fresh.iface.contract_version.minor, std::memory_order_relaxed);
        std::atomic_ref(iface.contract_version.patch)
            .store(fresh.iface.contract_version.patch, std::memory_order_relaxed);
        live_instances.store(0, std::memory_order_relaxed);  // the old version's instances are dead
    }

    // A VM version's copy: the new version's loader data is published before its call
    // function, so a reader that loads the new function (acquire) also sees the new data; one
    // that still loads the old function may pair it with either, which is harmless because a
    // loader's call function is the same for every version it loads.
    void rewrite_vm(const interface_copy& fresh) {
        std::atomic_ref(iface.dispatch.vm.loader_data.data)
            .store(fresh.iface.dispatch.vm.loader_data.data, std::memory_order_release);
        std::atomic_ref(iface.dispatch.vm.call)
            .store(fresh.iface.dispatch.vm.call, std::memory_order_release);
        std::atomic_ref(iface.create_instance)
            .store(fresh.iface.create_instance, std::memory_order_release);
        std::atomic_ref(iface.destroy_instance)
            .store(fresh.iface.destroy_instance, std::memory_order_release);
        std::atomic_ref(iface.contract_version.minor)
            .store(fresh.iface.contract_version.minor, std::memory_order_relaxed);
        std::atomic_ref(iface.contract_version.patch)
            .store(fresh.iface.contract_version.patch, std::memory_order_relaxed);
        live_instances.store(0, std::memory_order_relaxed);
    }

    // Entries are overwritten while other threads may be calling through them: pointer-sized
    // atomic stores, so a reader sees either the old or the new function, never a torn one.
    void stub() noexcept {
        stub_entries();
        // Orders the stubs before a writer's later check that no mediated call is inside plugin
        // code (runtime_core's reader_tracker::quiescent is seq_cst; these stores are release).
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }

    void stub_entries() noexcept {
        std::atomic_ref(iface.create_instance)
            .store(&stale_create_instance, std::memory_order_release);
        std::atomic_ref(iface.destroy_instance)
            .store(&stale_destroy_instance, std::memory_order_release);
        if (iface.dispatch_type == DispatchType_VirtualMachine) {
            std::atomic_ref(iface.dispatch.vm.call)
                .store(&stale_vm_call, std::memory_order_release);
            return;
        }
        for (std::uint32_t i = 0; i < iface.dispatch.native.function_count; ++i) {
            std::atomic_ref(table[i]).store(reinterpret_cast<const void*>(&stale_native_call),
                                            std::memory_order_release);
        }
    }
};

/// Immutable lookup index: contract id -> providers in registration order. Readers find it
/// through an atomic pointer; writers build a new one and retire the old. One allocation holds
/// the snapshot, its buckets and its providers: a registry write (every load and unload) builds
/// one, so it costs one allocation, not four.
class index_snapshot {
public:
    struct provider {
        GuestContractHandle handle;
        std::uint32_t major;
    };

    struct entry {
        std::uint64_t contract_id;
        std::uint64_t sequence;  // registration order
        provider value;
    };

    /// A snapshot of `entries` (reordered in place). Free it with `delete`.
    [[nodiscard]] static index_snapshot* make(std::span<entry> entries) {
        std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
            return a.contract_id != b.contract_id ? a.contract_id < b.contract_id
                                                  : a.sequence < b.sequence;
        });
        std::size_t distinct = 0;
        for (std::size_t i = 0; i < entries.size(); ++i)
            if (i == 0 || entries[i].contract_id != entries[i - 1].contract_id) ++distinct;
        std::size_t capacity = 8;
        while (capacity < distinct * 2) capacity *= 2;  // load factor <= 0.5: short probes

        static_assert(alignof(bucket) <= alignof(index_snapshot) &&
                      alignof(provider) <= alignof(bucket));
        const std::size_t bytes =
            sizeof(index_snapshot) + capacity * sizeof(bucket) + entries.size() * sizeof(provider);
        void* block = ::operator new(bytes);
        auto* snapshot = ::new (block) index_snapshot;
        auto* buckets =
            reinterpret_cast<bucket*>(static_cast<std::byte*>(block) + sizeof(index_snapshot));
        std::uninitialized_value_construct_n(buckets, capacity);
        snapshot->mask_ = capacity - 1;
        snapshot->buckets_ = buckets;
        snapshot->providers_ = reinterpret_cast<provider*>(buckets + capacity);
        std::uint32_t used = 0;
        for (std::size_t i = 0; i < entries.size();) {
            const std::uint64_t id = entries[i].contract_id;
            const std::uint32_t first = used;
            for (; i < entries.size() && entries[i].contract_id == id; ++i)
                std::construct_at(snapshot->providers_ + used++, entries[i].value);
            std::size_t b = snapshot->slot_for(id);
            while (snapshot->buckets_[b].count != 0) b = (b + 1) & snapshot->mask_;
            snapshot->buckets_[b] = {id, first, used - first};
        }
        return snapshot;
    }

    index_snapshot(const index_snapshot&) = delete;  // a copy would share the block
    index_snapshot& operator=(const index_snapshot&) = delete;

    // The block came from ::operator new in make(); buckets and providers are trivial.
    static void operator delete(void* block) { ::operator delete(block); }

    /// Providers of `contract_id`, in registration order (empty if none).
    [[nodiscard]] std::pair<const provider*, std::size_t> providers(
        std::uint64_t contract_id) const noexcept {
        for (std::size_t b = slot_for(contract_id);; b = (b + 1) & mask_) {
            const bucket& candidate = buckets_[b];
            if (candidate.count == 0) return {nullptr, 0};
            if (candidate.contract_id == contract_id)
                return {providers_ + candidate.first, candidate.count};
        }
    }

private:
    index_snapshot() = default;

    struct bucket {
        std::uint64_t contract_id = 0;
        std::uint32_t first = 0;
        std::uint32_t count = 0;  // 0 marks an empty bucket
    };

    // Contract ids are already FNV hashes, but their low bits are weaker than their high bits.
    [[nodiscard]] std::size_t slot_for(std::uint64_t id) const noexcept {
        return static_cast<std::size_t>((id ^ (id >> 29) ^ (id >> 47)) & mask_);
    }

    bucket* buckets_ = nullptr;      // mask_ + 1 of them, right after this object
    provider* providers_ = nullptr;  // right after the buckets
    std::size_t mask_ = 0;
};

}  // namespace detail

/// Why a registration was refused: the code, a static message for `AbiError.message` (naming the
/// offending field), and the detail for `last_error` and the log.
struct registration_failure {
    errc code = errc::ok;
    std::string_view abi_message;
    std::string detail;
};

/// The guest-contract registry of one runtime.
///
/// Readers (`find`, `visit_providers`, `resolve`) never lock and write nothing shared: they read
/// an immutable published index and atomically published slot state, and announce themselves
/// only in a per-thread reader slot (detail::reader_slots), so that a writer frees a replaced
/// index only once no reader can be inside it. Writers serialise on an internal mutex.
class registry {
public:
    // The chunk pointers are raw memory: each is constructed when its chunk is allocated, so
    // creating a registry neither writes nor walks all max_chunks entries (zeroing their 32 KiB
    // was most of what creating a runtime cost, and pushed a load's data out of the cache).
    // `fence` is for tests: detail::reader_fence::seq_cst exercises the path used where
    // membarrier is missing.
    explicit registry(detail::reader_fence fence = detail::reader_fence::automatic)
        : chunks_(std::allocator<std::atomic<slot*>>().allocate(max_chunks)), readers_(fence) {
        try {
            index_.store(detail::index_snapshot::make({}), std::memory_order_release);
        } catch (...) {
            std::allocator<std::atomic<slot*>>().deallocate(chunks_, max_chunks);
            throw;
        }
    }

    ~registry() {
        delete index_.load(std::memory_order_acquire);
        const std::uint32_t count = slot_count_.load(std::memory_order_relaxed);
        for (std::uint32_t i = 0; i < count; ++i) std::destroy_at(&slot_at(i));
        const std::size_t used = (count + chunk_size - 1) >> chunk_bits;
        for (std::size_t i = 0; i < used; ++i)
            std::allocator<slot>().deallocate(chunks_[i].load(std::memory_order_relaxed),
                                              chunk_size);
        std::allocator<std::atomic<slot*>>().deallocate(chunks_, max_chunks);
    }

    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // ---- readers -----------------------------------------------------------------------------

    /// First registered live provider of `contract_id` whose major is >= `min_major` (0 = any);
    /// the null handle if none.
    [[nodiscard]] GuestContractHandle find(std::uint64_t contract_id,
                                           std::uint32_t min_major) const noexcept {
        const auto guard = readers_.enter();
        const auto [first, count] = index_.load(std::memory_order_seq_cst)->providers(contract_id);
        for (std::size_t i = 0; i < count; ++i)
            if (first[i].major >= min_major) return first[i].handle;
        return polyplug_null_handle();
    }

    /// Calls `sink(count)` once with the number of matching providers, then `emit(handle)` for
    /// each, in registration order, all under one snapshot (count and contents agree).
    template <class CountSink, class Emit>
    void visit_providers(std::uint64_t contract_id, std::uint32_t min_major, CountSink&& sink,
                         Emit&& emit) const {
        const auto guard = readers_.enter();
        const auto [first, count] = index_.load(std::memory_order_seq_cst)->providers(contract_id);
        std::size_t matching = 0;
        for (std::size_t i = 0; i < count; ++i) matching += first[i].major >= min_major ? 1 : 0;
        if (!sink(matching)) return;
        for (std::size_t i = 0; i < count; ++i)
            if (first[i].major >= min_major) emit(first[i].handle);
    }

    /// The runtime's copy of the interface behind `handle`, or NULL for the null handle, an index
    /// out of range, a vacant slot or a generation that no longer matches (stale).
    [[nodiscard]] const GuestContractInterface* resolve(GuestContractHandle handle) const noexcept {
        if (handle.index >= slot_count_.load(std::memory_order_acquire)) return nullptr;
        const slot& s = slot_at(handle.index);
        if (s.generation.load(std::memory_order_acquire) != handle.generation) return nullptr;
        const detail::interface_copy* copy = s.live.load(std::memory_order_acquire);
        // Checked again: between the two loads the slot may have been vacated (generation bumped)
        // and reused by another contract; the first check alone could hand out its interface.
        // Writers bump the generation before publishing a new occupant, so an unchanged
        // generation here means `copy` belongs to this handle's contract.
        if (copy == nullptr || s.generation.load(std::memory_order_acquire) != handle.generation)
            return nullptr;
        return &copy->iface;
    }

    /// Why `handle` does not resolve (for error messages): "null", "out of range", "vacant" or
    /// "stale"; empty if it resolves.
    [[nodiscard]] std::string_view diagnose(GuestContractHandle handle) const noexcept {
        if (polyplug_handle_is_null(handle)) return "null handle";
        if (handle.index >= slot_count_.load(std::memory_order_acquire))
            return "handle index out of range";
        const slot& s = slot_at(handle.index);
        if (s.generation.load(std::memory_order_acquire) != handle.generation)
            return "stale handle (generation mismatch: the provider was unloaded)";
        if (s.live.load(std::memory_order_acquire) == nullptr)
            return "handle refers to a vacant slot";
        return {};
    }

    /// Live-instance counter of one of our interface copies; NULL if `iface` is not one of ours.
    [[nodiscard]] std::atomic<std::int64_t>* instance_counter(
        const GuestContractInterface* iface) const {
        std::lock_guard lock(copies_mutex_);
        const auto it = copy_index_.find(iface);
        return it == copy_index_.end() ? nullptr : &it->second->live_instances;
    }

    // ---- writers -----------------------------------------------------------------------------

    /// Validates a registration and stages it for `bundle_id`: the slot exists but stays invisible
    /// to lookups until publish(bundle_id). `reloading` lets a bundle register contracts it
    /// already provides (a reload's new version).
    [[nodiscard]] registration_failure stage(std::uint64_t bundle_id, std::string_view bundle_name,
                                             const PluginDescriptor* descriptor,
                                             const GuestContractInterface* iface, bool reloading) {
        registration_failure failure = validate(bundle_name, descriptor, iface);
        if (failure.code != errc::ok) return failure;
        const std::string contract_name(detail::view_of(descriptor->contract_name));
        const std::string plugin_name(detail::view_of(descriptor->name));

        std::lock_guard lock(write_mutex_);
        const auto [same_id, same_id_end] = occupied_.equal_range(iface->contract_id);
        for (auto it = same_id; it != same_id_end; ++it) {
            const slot& other = slot_at(it->second);
            if (other.contract_name != contract_name) {
                return {errc::contract_id_collision, "contract id collision",
                        prefix(bundle_name) + "contract '" + contract_name + "' and contract '" +
                            other.contract_name + "' hash to the same id " +
                            format_id(iface->contract_id)};
            }
            const bool same_bundle = other.bundle_id == bundle_id;
            if (same_bundle && (other.state == slot_state::pending || !reloading)) {
                return {errc::duplicate_provider, "duplicate provider",
                        prefix(bundle_name) + "contract '" + contract_name +
                            "' is already provided by this bundle"};
            }
        }

        // A copy the last publication of this bundle's contract left unused (adopt_retired_copy)
        // is filled again: no allocation and no index entry per load after the first.
        std::unique_ptr<detail::interface_copy> fresh;
        detail::interface_copy* copy = nullptr;
        if (!spare_copies_.empty()) {
            copy = spare_copies_.back();
            spare_copies_.pop_back();
        } else {
            fresh = std::make_unique<detail::interface_copy>();
            copy = fresh.get();
        }
        copy->iface = *iface;
        copy->live_instances.store(0, std::memory_order_relaxed);
        if (iface->dispatch_type == DispatchType_Native) {
            const std::uint32_t count = iface->dispatch.native.function_count;
            if (copy->table == nullptr || copy->capacity < count) {
                copy->table.reset(new const void*[count == 0 ? 1 : count]);
                copy->capacity = count;
            }
            for (std::uint32_t i = 0; i < count; ++i)
                copy->table[i] = iface->dispatch.native.functions[i];
            copy->iface.dispatch.native.functions = copy->table.get();
        }

        const std::uint32_t index = acquire_vacant_slot();
        slot& s = slot_at(index);
        s.state = slot_state::pending;
        s.contract_id = iface->contract_id;
        s.bundle_id = bundle_id;
        s.sequence = ++sequence_;
        s.contract_name = contract_name;
        s.plugin_name = plugin_name;
        s.version = iface->contract_version;
        s.copy = copy;
        occupied_.emplace(s.contract_id, index);
        if (fresh != nullptr) {
            {
                std::lock_guard copies_lock(copies_mutex_);
                copy_index_.emplace(&fresh->iface, copy);
            }
            copies_.push_back(std::move(fresh));
        }
        return {};
    }

    /// Makes every staged registration of `bundle_id` visible, in one publication.
    void publish(std::uint64_t bundle_id) {
        std::lock_guard lock(write_mutex_);
        for (std::uint32_t i = 0; i < slot_count_.load(std::memory_order_relaxed); ++i) {
            slot& s = slot_at(i);
            if (s.state != slot_state::pending || s.bundle_id != bundle_id) continue;
            adopt_retired_copy(s);
            s.state = slot_state::live;
            s.live.store(s.copy, std::memory_order_release);
        }
        rebuild_index();
    }

    /// Publishes the staged registrations of reloading bundles in one step. A contract a bundle
    /// already provides keeps its slot (same index, same generation): for native contracts its
    /// interface copy is rewritten in place, so handles and cached interface pointers reach the new
    /// code; otherwise (VM, or a change of dispatch type) the slot points at the new copy and the
    /// old copy reports StaleHandle. A contract the new version no longer registers is retired
    /// (stale); a new one is published. Returns the retired ones.
    std::vector<contract_info> swap_reloaded(std::span<const std::uint64_t> bundle_ids) {
        std::lock_guard lock(write_mutex_);
        const auto member = [&](std::uint64_t id) {
            return std::find(bundle_ids.begin(), bundle_ids.end(), id) != bundle_ids.end();
        };
        const std::uint32_t count = slot_count_.load(std::memory_order_relaxed);
        std::vector<bool> current(count, false);  // slots holding the new version afterwards
        for (std::uint32_t i = 0; i < count; ++i) {
            slot& staged = slot_at(i);
            if (staged.state != slot_state::pending || !member(staged.bundle_id)) continue;
            slot* kept = nullptr;
            std::uint32_t kept_index = 0;
            const auto [same_id, same_id_end] = occupied_.equal_range(staged.contract_id);
            for (auto it = same_id; it != same_id_end && kept == nullptr; ++it) {
                slot& old = slot_at(it->second);
                if (old.state == slot_state::live && old.bundle_id == staged.bundle_id)
                    kept = &old, kept_index = it->second;
            }
            if (kept == nullptr) {
                staged.state = slot_state::live;
                staged.live.store(staged.copy, std::memory_order_release);
                current[i] = true;
                continue;
            }
            const std::uint32_t kept_type = kept->copy->iface.dispatch_type;
            if (kept_type == staged.copy->iface.dispatch_type &&
                (kept_type == DispatchType_Native || kept_type == DispatchType_VirtualMachine)) {
                kept->copy->rewrite(*staged.copy);
                offer_spare(staged.copy);
            } else {
                kept->copy->stub();
                kept->copy = staged.copy;
                kept->live.store(staged.copy, std::memory_order_release);
            }
            kept->version = staged.version;
            kept->plugin_name = staged.plugin_name;
            current[kept_index] = true;
            vacate(i);
        }
        std::vector<contract_info> retired;
        for (std::uint32_t i = 0; i < count; ++i) {
            slot& s = slot_at(i);
            if (s.state != slot_state::live || !member(s.bundle_id) || current[i]) continue;
            retired.push_back(info_of(i, s));
            s.copy->stub();
            vacate(i);
        }
        rebuild_index();
        return retired;
    }

    /// Drops every staged registration of `bundle_id` (a failed load): nothing was ever visible.
    void discard_pending(std::uint64_t bundle_id) {
        std::lock_guard lock(write_mutex_);
        for (std::uint32_t i = 0; i < slot_count_.load(std::memory_order_relaxed); ++i) {
            slot& s = slot_at(i);
            if (s.state != slot_state::pending || s.bundle_id != bundle_id) continue;
            offer_spare(s.copy);
            vacate(i);
        }
    }

    /// Retires every live slot of `bundle_id` (unload): generation bumped, removed from the index,
    /// interface copies stubbed to report StaleHandle. Returns the retired contracts that still
    /// had live instances (the caller warns about them): usually none, and then nothing is copied.
    std::vector<contract_info> retire_bundle(std::uint64_t bundle_id) {
        std::vector<contract_info> abandoned;
        std::lock_guard lock(write_mutex_);
        for (std::uint32_t i = 0; i < slot_count_.load(std::memory_order_relaxed); ++i) {
            slot& s = slot_at(i);
            if (s.state == slot_state::vacant || s.bundle_id != bundle_id) continue;
            if (s.copy->live_instances.load(std::memory_order_relaxed) > 0)
                abandoned.push_back(info_of(i, s));
            s.copy->stub();
            keep_retired_copy(s.bundle_id, s.contract_id, s.copy);
            vacate(i);
        }
        rebuild_index();
        return abandoned;
    }

    /// Contracts registered by `bundle_id` (live ones, and staged ones when `include_pending`).
    /// With `pending_only`, only staged ones.
    [[nodiscard]] std::vector<contract_info> contracts_of(std::uint64_t bundle_id,
                                                          bool include_pending = false,
                                                          bool pending_only = false) const {
        std::vector<contract_info> found;
        std::lock_guard lock(write_mutex_);
        for (std::uint32_t i = 0; i < slot_count_.load(std::memory_order_relaxed); ++i) {
            const slot& s = slot_at(i);
            if (s.bundle_id != bundle_id) continue;
            const bool wanted = s.state == slot_state::pending
                                    ? include_pending
                                    : s.state == slot_state::live && !pending_only;
            if (wanted) found.push_back(info_of(i, s));
        }
        return found;
    }

    /// Index snapshots allocated right now: the published one plus those replaced but not yet
    /// freed because a reader might still be inside them. For tests and diagnostics.
    [[nodiscard]] std::size_t live_snapshots() const {
        std::lock_guard lock(write_mutex_);
        return 1 + retired_.size();
    }

    /// Whether lookups rely on membarrier (true) or fence themselves (false); see reader_slots.
    [[nodiscard]] bool lookups_use_membarrier() const noexcept { return readers_.expedited(); }

    /// Every live contract.
    [[nodiscard]] std::vector<contract_info> contracts() const {
        std::vector<contract_info> found;
        std::lock_guard lock(write_mutex_);
        for (std::uint32_t i = 0; i < slot_count_.load(std::memory_order_relaxed); ++i) {
            const slot& s = slot_at(i);
            if (s.state == slot_state::live) found.push_back(info_of(i, s));
        }
        return found;
    }

private:
    enum class slot_state : std::uint8_t { vacant, pending, live };

    struct slot {
        // Read by lock-free readers.
        std::atomic<std::uint32_t> generation{0};
        std::atomic<detail::interface_copy*> live{nullptr};
        // Written and read under write_mutex_ only.
        slot_state state = slot_state::vacant;
        std::uint64_t contract_id = 0;
        std::uint64_t bundle_id = 0;
        std::uint64_t sequence = 0;
        std::string contract_name;
        std::string plugin_name;
        polyplug::version version;
        detail::interface_copy* copy = nullptr;
    };

    // Slots live in fixed-size chunks that never move, so a reader can index them while a writer
    // appends: 4096 chunks of 256 slots (about a million contracts per runtime). A chunk is raw
    // memory; each slot is constructed when it is first handed out (before slot_count_ admits
    // it, and every reader checks an index against slot_count_), so a runtime's first
    // registration does not construct 256 slots (some 5,000 instructions).
    static constexpr std::size_t chunk_bits = 8;
    static constexpr std::size_t chunk_size = std::size_t{1} << chunk_bits;
    static constexpr std::size_t max_chunks = 4096;

    [[nodiscard]] slot& slot_at(std::uint32_t index) const noexcept {
        return chunks_[index >> chunk_bits].load(
            std::memory_order_acquire)[index & (chunk_size - 1)];
    }

    static std::string prefix(std::string_view bundle_name) {
        return bundle_name.empty()
                   ? std::string("register_guest_contract: ")
                   : "bundle '" + std::string(bundle_name) + "': register_guest_contract: ";
    }

    static registration_failure invalid(std::string_view bundle_name, errc code,
                                        std::string_view abi_message,
                                        std::string_view detail = {}) {
        return {code, abi_message,
                prefix(bundle_name) + std::string(abi_message) +
                    (detail.empty() ? "" : " (" + std::string(detail) + ")")};
    }

    // Spec §8.1: every pointer the runtime will later call or read is checked here, once, so
    // that calls never need checking.
    static registration_failure validate(std::string_view bundle_name,
                                         const PluginDescriptor* descriptor,
                                         const GuestContractInterface* iface) {
        if (descriptor == nullptr)
            return invalid(bundle_name, errc::invalid_pointer, "null descriptor");
        if (iface == nullptr) return invalid(bundle_name, errc::invalid_pointer, "null interface");
        if (iface->create_instance == nullptr)
            return invalid(bundle_name, errc::invalid_pointer, "null create_instance");
        if (iface->destroy_instance == nullptr)
            return invalid(bundle_name, errc::invalid_pointer, "null destroy_instance");
        if (const detail::dispatch_problem problem =
                detail::check_dispatch(iface->dispatch_type, iface->dispatch);
            !problem.ok())
            return invalid(bundle_name, problem.code, problem.what, problem.detail);
        if (descriptor->contract_name.ptr == nullptr || descriptor->contract_name.len == 0)
            return invalid(bundle_name, errc::generic, "empty contract_name");
        if (!detail::is_valid_utf8(descriptor->contract_name.ptr, descriptor->contract_name.len))
            return invalid(bundle_name, errc::generic, "contract_name is not valid UTF-8");
        if (descriptor->name.ptr != nullptr &&
            !detail::is_valid_utf8(descriptor->name.ptr, descriptor->name.len))
            return invalid(bundle_name, errc::generic, "descriptor name is not valid UTF-8");
        return {};
    }

    // A vacated slot if there is one (its generation already moved on), else a new one: O(1),
    // so that registering n contracts costs O(n), not O(n^2).
    std::uint32_t acquire_vacant_slot() {
        if (!vacant_.empty()) {
            const std::uint32_t index = vacant_.back();
            vacant_.pop_back();
            return index;
        }
        const std::uint32_t count = slot_count_.load(std::memory_order_relaxed);
        const std::size_t chunk = count >> chunk_bits;
        if (chunk >= max_chunks) throw std::length_error("polyplug registry: too many contracts");
        // slot_count_ only grows: the first slot of a chunk is the moment to allocate it. Readers
        // see the chunk's pointer only through an index below slot_count_, released below.
        if ((count & (chunk_size - 1)) == 0)
            std::construct_at(&chunks_[chunk], std::allocator<slot>().allocate(chunk_size));
        slot* memory = chunks_[chunk].load(std::memory_order_relaxed);
        std::construct_at(memory + (count & (chunk_size - 1)));
        slot_count_.store(count + 1, std::memory_order_release);
        return count;
    }

    // A copy retired by an earlier unload of this bundle's same contract takes the new version,
    // rewritten in place as on a reload, and the staged copy is dropped. Copies are never freed
    // while the registry lives (a host may still hold a pointer to one), so without this every
    // load/unload cycle would keep one more; with it the memory stays flat. A pointer cached
    // before the unload reaches the new code again, as it would across a reload; handles from
    // before the unload stay stale (the slot's generation moved on).
    void adopt_retired_copy(slot& s) {
        const auto it = std::find_if(
            retired_copies_.begin(), retired_copies_.end(), [&](const retired_copy& r) {
                return r.bundle_id == s.bundle_id && r.contract_id == s.contract_id;
            });
        if (it == retired_copies_.end()) return;
        detail::interface_copy* old = it->copy;
        *it = retired_copies_.back();  // order does not matter
        retired_copies_.pop_back();
        const std::uint32_t type = old->iface.dispatch_type;
        if (type != s.copy->iface.dispatch_type ||
            (type != DispatchType_Native && type != DispatchType_VirtualMachine) ||
            s.copy->live_instances.load(std::memory_order_relaxed) != 0)
            return;
        old->rewrite(*s.copy);
        offer_spare(s.copy);
        s.copy = old;
    }

    // A staged copy that was never visible (nothing resolved to it: a publication rewrote an
    // older copy instead, or the load failed) stays owned by copies_ and indexed, and the next
    // registration fills it again (stage). Without room to list it, it is only stubbed.
    void offer_spare(detail::interface_copy* copy) noexcept {
        try {
            spare_copies_.push_back(copy);
        } catch (...) {
            copy->stub();
        }
    }

    // Remembers a stubbed copy for the next load of the same bundle's same contract (one per
    // pair: a newer one replaces the older, which stays owned by copies_).
    void keep_retired_copy(std::uint64_t bundle_id, std::uint64_t contract_id,
                           detail::interface_copy* copy) {
        for (retired_copy& r : retired_copies_) {
            if (r.bundle_id == bundle_id && r.contract_id == contract_id) {
                r.copy = copy;
                return;
            }
        }
        retired_copies_.push_back({bundle_id, contract_id, copy});
    }

    // Bumping the generation first makes every outstanding handle stale before the slot can be
    // reused by a new registration.
    void vacate(std::uint32_t index) {
        slot& s = slot_at(index);
        const auto [same_id, same_id_end] = occupied_.equal_range(s.contract_id);
        for (auto it = same_id; it != same_id_end; ++it) {
            if (it->second != index) continue;
            occupied_.erase(it);
            break;
        }
        vacant_.push_back(index);
        s.generation.fetch_add(1, std::memory_order_acq_rel);
        s.live.store(nullptr, std::memory_order_release);
        s.state = slot_state::vacant;
        s.bundle_id = 0;
        s.contract_id = 0;
        s.copy = nullptr;
        s.contract_name.clear();
        s.plugin_name.clear();
    }

    [[nodiscard]] contract_info info_of(std::uint32_t index, const slot& s) const {
        contract_info info;
        info.handle = {index, s.generation.load(std::memory_order_relaxed)};
        info.contract_id = s.contract_id;
        info.contract_name = s.contract_name;
        info.plugin_name = s.plugin_name;
        info.version = s.version;
        info.bundle_id = s.bundle_id;
        info.dispatch_type = s.copy->iface.dispatch_type;
        info.function_count = info.dispatch_type == DispatchType_Native
                                  ? s.copy->iface.dispatch.native.function_count
                                  : 0;
        info.live_instances = s.copy->live_instances.load(std::memory_order_relaxed);
        return info;
    }

    void rebuild_index() {
        std::vector<detail::index_snapshot::entry>& entries = index_entries_;  // capacity kept
        entries.clear();
        for (std::uint32_t i = 0; i < slot_count_.load(std::memory_order_relaxed); ++i) {
            const slot& s = slot_at(i);
            if (s.state != slot_state::live) continue;
            entries.push_back(
                {s.contract_id,
                 s.sequence,
                 {{i, s.generation.load(std::memory_order_relaxed)}, s.version.major}});
        }
        auto* fresh = detail::index_snapshot::make(entries);
        retired_.emplace_back(index_.exchange(fresh, std::memory_order_seq_cst));
        // Frees every index replaced so far once no reader can still be inside one; otherwise
        // they wait for a later write (reader_slots explains why that is safe).
        if (readers_.synchronize()) retired_.clear();
    }

    std::atomic<slot*>* chunks_;  // max_chunks, constructed up to the chunks in use
    std::atomic<std::uint32_t> slot_count_{0};
    std::atomic<detail::index_snapshot*> index_{nullptr};
    detail::reader_slots readers_;

    mutable std::mutex write_mutex_;
    std::uint64_t sequence_ = 0;
    // Writers' indexes (write_mutex_): the pending and live slots of each contract id (duplicate
    // and collision checks, reload matching), and the vacated slots ready for reuse.
    std::unordered_multimap<std::uint64_t, std::uint32_t> occupied_;
    std::vector<std::uint32_t> vacant_;
    std::vector<std::unique_ptr<detail::index_snapshot>> retired_;
    std::vector<std::unique_ptr<detail::interface_copy>> copies_;  // kept for the registry's life

    mutable std::mutex copies_mutex_;
    std::unordered_map<const GuestContractInterface*, detail::interface_copy*> copy_index_;
    /// Stubbed copies of unloaded contracts, one per (bundle id, contract id), for the next load
    /// of the same bundle to reuse (write_mutex_). Flat: an unload and the next load neither
    /// allocate nor free a node.
    struct retired_copy {
        std::uint64_t bundle_id;
        std::uint64_t contract_id;
        detail::interface_copy* copy;
    };
    std::vector<retired_copy> retired_copies_;
    /// Staged copies a publication did not need (it rewrote a retired copy instead), to be filled
    /// by the next registration (write_mutex_); owned by copies_.
    std::vector<detail::interface_copy*> spare_copies_;
    /// rebuild_index's scratch list (write_mutex_), kept so that a rebuild does not allocate it.
    std::vector<detail::index_snapshot::entry> index_entries_;
};

POLYPLUG_END_NAMESPACE
