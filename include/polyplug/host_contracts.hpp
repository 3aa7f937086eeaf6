// SPDX-License-Identifier: MIT
/// @file host_contracts.hpp
/// Host contracts: services a host offers to plugins, matched by id and packed version
/// ((major << 16) | minor), with a singleton cache that never caches null and never holds a lock
/// while calling out (spec §8.1, §9.10).
#pragma once

#include <polyplug/detail/dispatch_check.hpp>
#include <polyplug/error.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/registry.hpp>

#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// True when `offered` satisfies a packed request: 0 matches anything, otherwise the major must
/// be equal and the minor at least the requested one.
[[nodiscard]] constexpr bool host_version_matches(const Version& offered,
                                                  std::uint32_t packed) noexcept {
    if (packed == 0) return true;
    return offered.major == (packed >> 16) && offered.minor >= (packed & 0xFFFFu);
}

class host_contract_registry {
public:
    host_contract_registry() = default;
    host_contract_registry(const host_contract_registry&) = delete;
    host_contract_registry& operator=(const host_contract_registry&) = delete;

    /// Registers `iface` by reference (it must outlive the runtime). Refuses null pointers, a bad
    /// dispatch table and a second registration of the same id.
    [[nodiscard]] status add(const HostContractInterface* iface) {
        if (iface == nullptr)
            return {errc::invalid_pointer, "register_host_contract: null interface"};
        if (iface->create_instance == nullptr)
            return {errc::invalid_pointer, "register_host_contract: null create_instance"};
        if (iface->destroy_instance == nullptr)
            return {errc::invalid_pointer, "register_host_contract: null destroy_instance"};
        if (const detail::dispatch_problem problem =
                detail::check_dispatch(iface->dispatch_type, iface->dispatch);
            !problem.ok())
            return {problem.code, "register_host_contract: " + std::string(problem.what) +
                                      (problem.detail.empty() ? "" : " (" + problem.detail + ")")};
        std::unique_lock lock(mutex_);
        if (!contracts_.emplace(iface->contract_id, iface).second)
            return {errc::duplicate_host_contract, "duplicate host contract registration"};
        return {};
    }

    /// The registered interface for `contract_id` matching the packed version, or NULL with the
    /// reason in `why`.
    [[nodiscard]] const HostContractInterface* match(std::uint64_t contract_id,
                                                     std::uint32_t packed, status& why) const {
        std::shared_lock lock(mutex_);
        const auto it = contracts_.find(contract_id);
        if (it == contracts_.end()) {
            why = {errc::host_contract_not_found,
                   "no host contract registered with id " + format_id(contract_id)};
            return nullptr;
        }
        const Version& offered = it->second->contract_version;
        if (!host_version_matches(offered, packed)) {
            why = {errc::host_contract_version_mismatch,
                   "host contract " + format_id(contract_id) + " has version " +
                       std::to_string(offered.major) + "." + std::to_string(offered.minor) +
                       ", requested " + std::to_string(packed >> 16) + "." +
                       std::to_string(packed & 0xFFFFu) + " (same major, at least that minor)"};
            return nullptr;
        }
        return it->second;
    }

    /// An instance of the matching host contract: the cached one for singletons (created on first
    /// request with args = NULL), a new one otherwise (the caller destroys it through the
    /// interface). A null instance is returned, never cached, when creation fails.
    [[nodiscard]] HostContractInstance instance(std::uint64_t contract_id, std::uint32_t packed,
                                                status& why) {
        const HostContractInterface* iface = match(contract_id, packed, why);
        if (iface == nullptr) return {nullptr};
        if (iface->singleton) {
            std::lock_guard lock(singletons_mutex_);
            const auto it = singletons_.find(contract_id);
            if (it != singletons_.end()) return it->second;
        }
        // No lock is held here: create_instance may register host contracts or ask for others.
        HostContractInstance created{nullptr};
        iface->create_instance(iface, nullptr, &created);
        if (created.data == nullptr) {
            why = {errc::host_contract_call_failed,
                   "host contract " + format_id(contract_id) +
                       ": create_instance returned a null instance"};
            return created;
        }
        if (!iface->singleton) return created;
        HostContractInstance winner{nullptr};
        {
            std::lock_guard lock(singletons_mutex_);
            const auto [it, inserted] = singletons_.emplace(contract_id, created);
            if (inserted) return created;
            winner = it->second;
        }
        // Another thread created one first: keep theirs, release ours (no lock held).
        iface->destroy_instance(iface, created);
        return winner;
    }

    /// Destroys every cached singleton (at runtime teardown, after all bundles are gone).
    void destroy_singletons() {
        std::vector<std::pair<const HostContractInterface*, HostContractInstance>> doomed;
        {
            std::lock_guard lock(singletons_mutex_);
            std::shared_lock contracts_lock(mutex_);
            for (const auto& [id, instance] : singletons_) {
                const auto it = contracts_.find(id);
                if (it != contracts_.end()) doomed.emplace_back(it->second, instance);
            }
            singletons_.clear();
        }
        for (const auto& [iface, instance] : doomed) iface->destroy_instance(iface, instance);
    }

    [[nodiscard]] std::size_t size() const {
        std::shared_lock lock(mutex_);
        return contracts_.size();
    }

private:
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::uint64_t, const HostContractInterface*> contracts_;
    std::mutex singletons_mutex_;
    std::unordered_map<std::uint64_t, HostContractInstance> singletons_;
};

POLYPLUG_END_NAMESPACE
