// SPDX-License-Identifier: MIT
/// @file registry.cpp
/// Registration rules (spec §8.1, §9.6), lookups, handles and generations, driven the way plugins
/// drive them: from inside a bundle's init window (through a scripted C loader).
#include "support.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace test_support;

namespace {

// The registry's own rules are under test here, so the manifests of these scripted bundles do not
// list what the bodies register, and the runtime lets that through (Yolo): the manifest's check
// of registrations is tested in staging.cpp.
polyplug::runtime_options yolo() {
    polyplug::runtime_options options;
    options.compat = polyplug::compatibility::yolo;
    return options;
}

struct registry_fixture {
    temp_dir dir;
    polyplug::runtime rt{yolo()};
    const HostApi* host = rt.host_api();
    scripted_loader* loader = add_scripted_loader(host);

    /// Loads a scripted bundle whose init runs `body`; returns the load's AbiError code.
    std::uint32_t load(const std::string& name, std::function<void(const HostApi*)> body,
                       const std::string& extra = {}, const std::string& tables = {}) {
        loader->on_load = [&](const HostApi* h, const LoaderBundleInfo*, AbiError*) { body(h); };
        AbiError err{};
        load_or_fail(host, make_scripted_bundle(dir.path(), name, extra, tables), err);
        loader->on_load = nullptr;
        return err.code;
    }

    AbiError register_one(const HostApi* h, const PluginDescriptor* d,
                          const GuestContractInterface* i) {
        AbiError err{};
        h->register_guest_contract(h, d, i, &err);
        return err;
    }
};

std::string message_of(const AbiError& err) {
    return std::string(polyplug::detail::view_of(err.message));
}

}  // namespace

TEST_CASE("registry - register, find and resolve a contract", "[registry]") {
    registry_fixture f;
    const GuestContractInterface iface = seven_interface("test.seven");
    const PluginDescriptor desc = descriptor_for("test.seven");
    AbiError err{};
    REQUIRE(f.load("seven", [&](const HostApi* h) { err = f.register_one(h, &desc, &iface); }) ==
            AbiErrorCode_Ok);
    CHECK(err.code == AbiErrorCode_Ok);

    const GuestContractHandle handle = f.host->find_guest_contract(f.host, iface.contract_id, 0);
    REQUIRE_FALSE(polyplug_handle_is_null(handle));
    const GuestContractInterface* resolved = f.host->resolve_guest_contract(f.host, handle);
    REQUIRE(resolved != nullptr);
    SECTION("resolve returns the runtime's copy, not the plugin's struct") {
        CHECK(resolved != &iface);
        CHECK(resolved->dispatch.native.functions != iface.dispatch.native.functions);
        CHECK(resolved->contract_id == iface.contract_id);
        CHECK(resolved->dispatch.native.function_count == 1);
    }
    SECTION("a call through the copy reaches the plugin's function") {
        std::uint32_t out = 0;
        AbiError call_err{};
        polyplug::function_cast<GuestContractFn>(resolved->dispatch.native.functions[0])(
            {nullptr, 0}, nullptr, &out, &call_err);
        CHECK(out == 7);
    }
    SECTION("repeated finds return the same slot") {
        CHECK(f.host->find_guest_contract(f.host, iface.contract_id, 0).index == handle.index);
    }
    SECTION("unknown contracts are not found") {
        CHECK(polyplug_handle_is_null(f.host->find_guest_contract(f.host, 12345, 0)));
    }
}

TEST_CASE("registry - every null pointer is refused with InvalidPointer naming the field",
          "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.bad");
    GuestContractInterface iface = seven_interface("test.bad");
    std::string expected;
    std::uint32_t expected_code = AbiErrorCode_InvalidPointer;
    const GuestContractInterface* iface_ptr = &iface;
    const PluginDescriptor* desc_ptr = &desc;
    const void* bad_table[] = {reinterpret_cast<const void*>(&return_seven), nullptr};

    SECTION("null descriptor") {
        desc_ptr = nullptr, expected = "null descriptor";
    }
    SECTION("null interface") {
        iface_ptr = nullptr, expected = "null interface";
    }
    SECTION("null create_instance") {
        iface.create_instance = nullptr, expected = "null create_instance";
    }
    SECTION("null destroy_instance") {
        iface.destroy_instance = nullptr, expected = "null destroy_instance";
    }
    SECTION("null vm.call") {
        iface.dispatch_type = DispatchType_VirtualMachine;
        iface.dispatch.vm = {nullptr, {nullptr}};
        expected = "null dispatch.vm.call";
    }
    SECTION("null native table with function_count > 0") {
        iface.dispatch.native.functions = nullptr;
        expected = "null dispatch.native.functions";
    }
    SECTION("null entry inside the table") {
        iface.dispatch.native.function_count = 2;
        iface.dispatch.native.functions = bad_table;
        expected = "null entry";
    }
    SECTION("invalid dispatch type") {
        iface.dispatch_type = 7;
        expected = "invalid dispatch_type";
        expected_code = AbiErrorCode_Generic;
    }
    SECTION("empty contract name") {
        static const PluginDescriptor empty = {polyplug_sv("p"), {nullptr, 0}, {1, 0, 0}};
        desc_ptr = &empty;
        expected = "empty contract_name";
        expected_code = AbiErrorCode_Generic;
    }
    SECTION("contract name that is not UTF-8") {
        static const std::uint8_t bytes[] = {'a', 0xFF, 'b'};
        static const PluginDescriptor bad = {polyplug_sv("p"), {bytes, 3}, {1, 0, 0}};
        desc_ptr = &bad;
        expected = "not valid UTF-8";
        expected_code = AbiErrorCode_Generic;
    }
    SECTION("absurd function_count") {
        iface.dispatch.native.function_count = 0xFFFFFFFFu;
        expected = "function_count above the limit";
        expected_code = AbiErrorCode_Generic;
    }

    AbiError err{};
    std::string last;
    const std::uint32_t load_code = f.load("bad", [&](const HostApi* h) {
        err = f.register_one(h, desc_ptr, iface_ptr);
        last = take_last_error(h);
    });
    CHECK(load_code == AbiErrorCode_Ok);  // the scripted init ignores the refusal
    CHECK(err.code == expected_code);
    CHECK_THAT(message_of(err), Catch::Contains(expected));
    CHECK_THAT(last, Catch::Contains(expected));
    CHECK_THAT(last, Catch::Contains("bundle 'bad'"));
    CHECK(f.rt.core().contracts().contracts().empty());
}

TEST_CASE("registry - a descriptor with null name views is accepted", "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = {{nullptr, 0}, polyplug_sv("test.anonymous"), {1, 0, 0}};
    const GuestContractInterface iface = seven_interface("test.anonymous");
    AbiError err{};
    REQUIRE(f.load("anon", [&](const HostApi* h) { err = f.register_one(h, &desc, &iface); }) ==
            AbiErrorCode_Ok);
    CHECK(err.code == AbiErrorCode_Ok);
}

TEST_CASE("registry - same bundle twice is DuplicateProvider, detail in last_error", "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.dup");
    const GuestContractInterface iface = seven_interface("test.dup");
    AbiError first{}, second{};
    std::string last;
    REQUIRE(f.load("dup", [&](const HostApi* h) {
        first = f.register_one(h, &desc, &iface);
        second = f.register_one(h, &desc, &iface);
        last = take_last_error(h);
    }) == AbiErrorCode_Ok);
    CHECK(first.code == AbiErrorCode_Ok);
    CHECK(second.code == AbiErrorCode_DuplicateProvider);
    CHECK_THAT(last, Catch::Contains("already provided by this bundle"));
    ArrayOf_GuestContractHandle all =
        f.host->find_all_guest_contracts(f.host, iface.contract_id, 0);
    CHECK(all.len == 1);
    f.host->free(f.host, reinterpret_cast<std::uint8_t*>(all.items),
                 all.len * sizeof(GuestContractHandle), all.align);
}

TEST_CASE("registry - multiple providers: find returns the first registered, find_all all of them",
          "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.multi");
    const GuestContractInterface iface = seven_interface("test.multi");
    for (const char* name : {"provider-a", "provider-b", "provider-c"})
        REQUIRE(f.load(name, [&](const HostApi* h) {
            REQUIRE(f.register_one(h, &desc, &iface).code == 0);
        }) == 0);

    const auto handles = f.rt.find_all(iface.contract_id);
    REQUIRE(handles.size() == 3);
    const auto infos = f.rt.core().contracts().contracts();
    const GuestContractHandle first = f.host->find_guest_contract(f.host, iface.contract_id, 0);
    CHECK(first.index == handles[0].index);
    const auto first_info = f.rt.core().bundle(polyplug::bundle_id("provider-a"));
    REQUIRE(first_info);
    REQUIRE(first_info->contracts.size() == 1);
    CHECK(first_info->contracts[0].handle.index == first.index);

    SECTION("the C find_all array is host-allocated, align 4, and frees with len * 8") {
        ArrayOf_GuestContractHandle all =
            f.host->find_all_guest_contracts(f.host, iface.contract_id, 0);
        REQUIRE(all.len == 3);
        CHECK(all.align == 4);
        for (std::size_t i = 0; i < all.len; ++i) CHECK(all.items[i].index == handles[i].index);
        f.host->free(f.host, reinterpret_cast<std::uint8_t*>(all.items),
                     all.len * sizeof(GuestContractHandle), all.align);
    }
    SECTION("an empty result is {NULL, 0, 4}") {
        ArrayOf_GuestContractHandle none = f.host->find_all_guest_contracts(f.host, 42, 0);
        CHECK(none.items == nullptr);
        CHECK(none.len == 0);
        CHECK(none.align == 4);
    }
}

TEST_CASE("registry - min_version is a major floor", "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.floor");
    GuestContractInterface iface = seven_interface("test.floor");
    iface.contract_version = {2, 0, 0};
    REQUIRE(f.load("floor", [&](const HostApi* h) {
        REQUIRE(f.register_one(h, &desc, &iface).code == 0);
    }) == 0);
    for (std::uint32_t floor : {0u, 1u, 2u}) {
        INFO("floor " << floor);
        CHECK_FALSE(
            polyplug_handle_is_null(f.host->find_guest_contract(f.host, iface.contract_id, floor)));
    }
    CHECK(polyplug_handle_is_null(f.host->find_guest_contract(f.host, iface.contract_id, 3)));
    CHECK(f.rt.find_all(iface.contract_id, 3).empty());
}

TEST_CASE("registry - two names hashing to one id are a collision", "[registry]") {
    registry_fixture f;
    const GuestContractInterface iface = seven_interface("test.one");
    const PluginDescriptor one = descriptor_for("test.one");
    const PluginDescriptor other = descriptor_for("test.other");  // same id, different name
    AbiError err{};
    std::string last;
    REQUIRE(f.load("first", [&](const HostApi* h) {
        REQUIRE(f.register_one(h, &one, &iface).code == 0);
    }) == 0);
    REQUIRE(f.load("second", [&](const HostApi* h) {
        err = f.register_one(h, &other, &iface);
        last = take_last_error(h);
    }) == 0);
    CHECK(err.code == AbiErrorCode_Generic);
    CHECK_THAT(last, Catch::Contains("hash to the same id"));
    CHECK(f.rt.find_all(iface.contract_id).size() == 1);
}

TEST_CASE("registry - registering outside an init window is refused", "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.outside");
    const GuestContractInterface iface = seven_interface("test.outside");
    AbiError err{};
    f.host->register_guest_contract(f.host, &desc, &iface, &err);
    CHECK(err.code == AbiErrorCode_Generic);
    CHECK_THAT(take_last_error(f.host), Catch::Contains("outside a bundle's init window"));
    CHECK(polyplug_handle_is_null(f.host->find_guest_contract(f.host, iface.contract_id, 0)));
}

TEST_CASE("registry - registrations are invisible until the load publishes them", "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.staged");
    const GuestContractInterface iface = seven_interface("test.staged");
    bool visible_during_init = true;
    REQUIRE(f.load("staged", [&](const HostApi* h) {
        REQUIRE(f.register_one(h, &desc, &iface).code == 0);
        visible_during_init = !f.rt.find_all(iface.contract_id).empty();
    }) == 0);
    CHECK_FALSE(visible_during_init);
    CHECK(f.rt.find_all(iface.contract_id).size() == 1);
}

TEST_CASE("registry - handles: out of range, stale after unload, slot reuse never leaks",
          "[registry]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.gen");
    const GuestContractInterface iface = seven_interface("test.gen");
    auto body = [&](const HostApi* h) { REQUIRE(f.register_one(h, &desc, &iface).code == 0); };
    REQUIRE(f.load("gen", body) == 0);
    const GuestContractHandle old_handle = f.rt.find(iface.contract_id);
    REQUIRE(f.rt.resolve(old_handle) != nullptr);

    CHECK(f.host->resolve_guest_contract(f.host, {9999, 0}) == nullptr);
    CHECK_THAT(take_last_error(f.host), Catch::Contains("out of range"));
    CHECK(f.host->resolve_guest_contract(f.host, polyplug_null_handle()) == nullptr);
    CHECK(f.host->get_error_len(f.host) == 0);  // the null handle is not an error

    f.rt.unload_bundle(polyplug::bundle_id("gen"));
    CHECK(f.host->resolve_guest_contract(f.host, old_handle) == nullptr);
    CHECK_THAT(take_last_error(f.host), Catch::Contains("stale"));
    CHECK(polyplug_handle_is_null(f.rt.find(iface.contract_id)));

    REQUIRE(f.load("gen", body) == 0);  // reuses the slot with a new generation
    const GuestContractHandle new_handle = f.rt.find(iface.contract_id);
    CHECK(new_handle.index == old_handle.index);
    CHECK(new_handle.generation != old_handle.generation);
    CHECK(f.rt.resolve(old_handle) == nullptr);
    CHECK(f.rt.resolve(new_handle) != nullptr);
}

TEST_CASE("registry - concurrent lookups while bundles come and go", "[registry][concurrency]") {
    registry_fixture f;
    const PluginDescriptor desc = descriptor_for("test.churn");
    const GuestContractInterface stable = seven_interface("test.stable");
    const PluginDescriptor stable_desc = descriptor_for("test.stable");
    REQUIRE(f.load("stable", [&](const HostApi* h) {
        REQUIRE(f.register_one(h, &stable_desc, &stable).code == 0);
    }) == 0);
    const GuestContractInterface churn = seven_interface("test.churn");

    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            while (!stop.load()) {
                const GuestContractInterface* s = f.rt.resolve(f.rt.find(stable.contract_id));
                if (s == nullptr || s->contract_id != stable.contract_id) ++bad;
                const GuestContractInterface* c = f.rt.resolve(f.rt.find(churn.contract_id));
                if (c != nullptr && c->contract_id != churn.contract_id) ++bad;
            }
        });
    }
    // Alternating two different contracts through the same slot: a handle for one must never
    // resolve to the other (the slot-reuse race a single generation check would let through).
    const GuestContractInterface other = seven_interface("test.churn-other");
    const PluginDescriptor other_desc = descriptor_for("test.churn-other");
    for (int round = 0; round < 400; ++round) {
        const bool first = round % 2 == 0;
        const char* name = first ? "churn" : "churn-other";
        REQUIRE(f.load(name, [&](const HostApi* h) {
            REQUIRE(f.register_one(h, first ? &desc : &other_desc, first ? &churn : &other).code ==
                    0);
        }) == 0);
        f.rt.unload_bundle(polyplug::bundle_id(name));
    }
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(bad.load() == 0);
}

// ---- reclamation of replaced index snapshots (readers write only their own slot) -------------

namespace {

/// One contract registered straight into a registry (no runtime), as one bundle.
struct direct_contract {
    std::string name;
    GuestContractInterface iface;
    PluginDescriptor desc;

    explicit direct_contract(std::string contract)
        : name(std::move(contract)),
          iface(seven_interface(name)),
          desc(descriptor_for(name.c_str())) {}

    /// Stages and publishes; false if the registry refused (checked by the caller, on the test's
    /// thread: Catch2 assertions are not thread-safe).
    [[nodiscard]] bool publish(polyplug::registry& reg, std::uint64_t bundle) const {
        if (reg.stage(bundle, "direct", &desc, &iface, false).code != polyplug::errc::ok)
            return false;
        reg.publish(bundle);
        return true;
    }
};

polyplug::detail::reader_fence fence_of_section(bool seq_cst) {
    return seq_cst ? polyplug::detail::reader_fence::seq_cst
                   : polyplug::detail::reader_fence::automatic;
}

}  // namespace

TEST_CASE("registry - a replaced index is not freed while a reader is inside it", "[registry]") {
    bool seq_cst = false;
    SECTION("readers rely on membarrier where the kernel has it") {
        seq_cst = false;
    }
    SECTION("readers fence themselves (the fallback without membarrier)") {
        seq_cst = true;
    }
    polyplug::registry reg(fence_of_section(seq_cst));
    const direct_contract paused("test.paused");
    REQUIRE(paused.publish(reg, 1));
    REQUIRE(paused.publish(
        reg, 2));  // a second provider: the reader reads the index again after a pause
    REQUIRE(reg.live_snapshots() == 1);  // nobody was reading: replaced snapshots are freed
    const GuestContractHandle first = reg.find(paused.iface.contract_id, 0);
    REQUIRE_FALSE(polyplug_handle_is_null(first));

    std::mutex mutex;
    std::condition_variable changed;
    bool inside = false;
    bool leave = false;
    std::vector<GuestContractHandle> emitted;
    GuestContractHandle nested{};
    std::thread reader([&] {
        reg.visit_providers(
            paused.iface.contract_id, 0, [](std::size_t count) { return count == 2; },
            [&](GuestContractHandle handle) {
                emitted.push_back(handle);
                if (emitted.size() != 1) return;
                // A nested lookup on the same thread must not end the outer read's protection.
                nested = reg.find(paused.iface.contract_id, 0);
                std::unique_lock lock(mutex);
                inside = true;
                changed.notify_all();
                changed.wait(lock, [&] { return leave; });
            });
    });
    {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return inside; });
    }
    // Each write replaces the index; the reader is inside the first one, so none may be freed.
    for (std::uint64_t round = 0; round < 3; ++round) {
        const direct_contract other("test.other." + std::to_string(round));
        REQUIRE(other.publish(reg, 10 + round));
        CHECK(reg.live_snapshots() == 2 + round);
    }
    reg.retire_bundle(10);
    CHECK(reg.live_snapshots() == 5);
    {
        std::lock_guard lock(mutex);
        leave = true;
    }
    changed.notify_all();
    reader.join();
    // The reader went on reading its (old) snapshot after the writes: it saw both providers.
    REQUIRE(emitted.size() == 2);
    CHECK(emitted[0].index == first.index);
    CHECK(emitted[1].index != first.index);
    CHECK(nested.index == first.index);
    // The reader has left: the next write frees everything replaced so far.
    reg.retire_bundle(11);
    CHECK(reg.live_snapshots() == 1);
    CHECK(polyplug_handle_is_null(reg.find(polyplug::guest_contract_id("test.other.1", 1), 0)));
}

TEST_CASE("registry - lookups stay correct while writers publish and retire", "[registry]") {
    bool seq_cst = false;
    SECTION("membarrier where available") {
        seq_cst = false;
    }
    SECTION("seq_cst readers") {
        seq_cst = true;
    }
    polyplug::registry reg(fence_of_section(seq_cst));
    if (seq_cst) CHECK_FALSE(reg.lookups_use_membarrier());  // the fallback really is in use
    const direct_contract stable("test.stable");
    REQUIRE(stable.publish(reg, 1));
    const direct_contract twice("test.twice");
    REQUIRE(twice.publish(reg, 2));
    REQUIRE(twice.publish(reg, 3));
    const GuestContractHandle stable_handle = reg.find(stable.iface.contract_id, 0);
    std::vector<GuestContractHandle> twice_handles;
    reg.visit_providers(
        twice.iface.contract_id, 0, [](std::size_t) { return true; },
        [&](GuestContractHandle h) { twice_handles.push_back(h); });
    REQUIRE(twice_handles.size() == 2);
    const direct_contract churn_a("test.churn-a");
    const direct_contract churn_b("test.churn-b");

    std::atomic<bool> stop{false};
    std::atomic<int> wrong{0};
    std::atomic<std::uint64_t> lookups{0};
    const auto same = [](GuestContractHandle a, GuestContractHandle b) {
        return a.index == b.index && a.generation == b.generation;
    };
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            std::uint64_t done = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                const GuestContractHandle s = reg.find(stable.iface.contract_id, 0);
                const GuestContractInterface* si = reg.resolve(s);
                if (!same(s, stable_handle) || si == nullptr ||
                    si->contract_id != stable.iface.contract_id)
                    ++wrong;
                std::size_t n = 0;
                bool in_order = true;
                reg.visit_providers(
                    twice.iface.contract_id, 0, [&](std::size_t count) { return count == 2; },
                    [&](GuestContractHandle h) {
                        in_order &= n < 2 && same(h, twice_handles[n++]);
                    });
                if (n != 2 || !in_order) ++wrong;
                for (const direct_contract* churn : {&churn_a, &churn_b}) {
                    const GuestContractInterface* c =
                        reg.resolve(reg.find(churn->iface.contract_id, 0));
                    if (c != nullptr && c->contract_id != churn->iface.contract_id) ++wrong;
                }
                ++done;
            }
            lookups += done;
        });
    }
    std::atomic<int> refused{0};
    std::vector<std::thread> writers;
    for (const direct_contract* churn : {&churn_a, &churn_b}) {
        writers.emplace_back([&reg, &refused, churn, bundle = churn == &churn_a ? 100u : 200u] {
            for (int round = 0; round < 200; ++round) {
                if (!churn->publish(reg, bundle)) ++refused;
                reg.retire_bundle(bundle);
            }
        });
    }
    for (auto& w : writers) w.join();
    stop = true;
    for (auto& r : readers) r.join();
    CHECK(refused.load() == 0);
    CHECK(wrong.load() == 0);
    CHECK(lookups.load() > 0);
    reg.retire_bundle(999);  // a write with no reader inside frees every replaced snapshot
    CHECK(reg.live_snapshots() == 1);
}

TEST_CASE("registry - a thread's reader slot never outlives its registry", "[registry]") {
    const direct_contract contract("test.serial");
    auto first = std::make_unique<polyplug::registry>();
    REQUIRE(contract.publish(*first, 1));
    const GuestContractHandle handle = first->find(contract.iface.contract_id, 0);
    REQUIRE_FALSE(polyplug_handle_is_null(handle));
    first.reset();  // this thread's cache still names the destroyed registry's slot

    // A new registry (possibly at the same address) must not use the dead slot: under ASan that
    // would be a use after free, and without ASan its writers could not see this thread's reads.
    auto second = std::make_unique<polyplug::registry>();
    REQUIRE(contract.publish(*second, 1));
    CHECK(second->find(contract.iface.contract_id, 0).index == handle.index);

    SECTION("alternating between registries, and reading one inside a read of another") {
        polyplug::registry third;
        const direct_contract other("test.serial-other");
        REQUIRE(other.publish(third, 7));
        for (int i = 0; i < 3; ++i) {
            CHECK(second->resolve(second->find(contract.iface.contract_id, 0)) != nullptr);
            CHECK(third.resolve(third.find(other.iface.contract_id, 0)) != nullptr);
        }
        GuestContractHandle inner{};
        second->visit_providers(
            contract.iface.contract_id, 0, [](std::size_t) { return true; },
            [&](GuestContractHandle) { inner = third.find(other.iface.contract_id, 0); });
        CHECK_FALSE(polyplug_handle_is_null(inner));
        // Both reads ended: each registry's next write frees what it replaced.
        second->retire_bundle(5);
        third.retire_bundle(5);
        CHECK(second->live_snapshots() == 1);
        CHECK(third.live_snapshots() == 1);
    }
    SECTION("threads that come and go") {
        int found = 0;
        for (int t = 0; t < 40; ++t) {
            std::thread([&] {
                found += second->find(contract.iface.contract_id, 0).index == handle.index ? 1 : 0;
            }).join();
        }
        CHECK(found == 40);
        second->retire_bundle(5);
        CHECK(second->live_snapshots() == 1);
    }
}

TEST_CASE("registry - a writer skips the membarrier only while no other thread has ever read",
          "[registry]") {
    polyplug::detail::reader_slots slots;
    if (!slots.expedited()) {
        WARN("membarrier is not available here: readers fence themselves, nothing to skip");
        return;
    }
    { const auto guard = slots.enter(); }  // the writer's own reads need no barrier
    CHECK(slots.synchronize());
    CHECK(slots.last_barrier_skipped());
    std::thread([&] { const auto guard = slots.enter(); }).join();
    CHECK(slots.synchronize());
    CHECK_FALSE(slots.last_barrier_skipped());  // once another thread read, always the barrier
    CHECK(slots.synchronize());
    CHECK_FALSE(slots.last_barrier_skipped());
}
