// SPDX-License-Identifier: MIT
/// @file shim.cpp
/// libpolyplug.so through its two exports: counterparts of every test in the original's ffi.rs
/// (seed), plus an end-to-end load and the create/destroy stress. Links the shim only, not the
/// header-only runtime.
#include "catch.hpp"

#include <polyplug/abi.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("shim - runtime new and free", "[shim][seed]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    REQUIRE(host != nullptr);
    polyplug_runtime_destroy(host);
}

TEST_CASE("shim - multiple runtimes are isolated (last_error per runtime)", "[shim][seed]") {
    const HostApi* host1 = polyplug_runtime_create(nullptr);
    const HostApi* host2 = polyplug_runtime_create(nullptr);
    REQUIRE(host1 != nullptr);
    REQUIRE(host2 != nullptr);
    CHECK(host1 != host2);

    AbiError rc1{};
    host1->load_bundle(host1, nullptr, 0, &rc1);
    CHECK(rc1.code == AbiErrorCode_InvalidPointer);
    CHECK(host1->get_error_len(host1) > 0);
    CHECK(host2->get_error_len(host2) == 0);

    AbiError rc2{};
    host2->load_bundle(host2, nullptr, 0, &rc2);
    CHECK(rc2.code == AbiErrorCode_InvalidPointer);
    CHECK(host2->get_error_len(host2) > 0);
    polyplug_runtime_destroy(host1);
    polyplug_runtime_destroy(host2);
}

TEST_CASE("shim - multiple runtimes with config", "[shim][seed]") {
    RuntimeConfig config1{};
    config1.compatibility = Compatibility_Strict;
    config1.hot_reload_enabled = true;
    RuntimeConfig config2{};
    config2.compatibility = Compatibility_Relaxed;
    config2.hot_reload_enabled = false;
    const HostApi* host1 = polyplug_runtime_create(&config1);
    const HostApi* host2 = polyplug_runtime_create(&config2);
    REQUIRE(host1 != nullptr);
    REQUIRE(host2 != nullptr);
    CHECK(host1 != host2);
    polyplug_runtime_destroy(host1);
    polyplug_runtime_destroy(host2);
}

TEST_CASE("shim - load_bundle returns InvalidPointer on a null path", "[shim][seed]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    AbiError result{};
    host->load_bundle(host, nullptr, 0, &result);
    CHECK(result.code == AbiErrorCode_InvalidPointer);
    polyplug_runtime_destroy(host);
}

TEST_CASE("shim - find on an empty registry returns the null handle", "[shim][seed]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    CHECK(polyplug_handle_is_null(host->find_guest_contract(host, 12345, 0)));
    polyplug_runtime_destroy(host);
}

TEST_CASE("shim - get_error_len on a clean runtime is 0", "[shim][seed]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    CHECK(host->get_error_len(host) == 0);
    polyplug_runtime_destroy(host);
}

TEST_CASE("shim - concurrent create/destroy (4 threads x 10)", "[shim][seed]") {
    std::atomic<int> success{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10; ++i) {
                const HostApi* host = polyplug_runtime_create(nullptr);
                if (host != nullptr) {
                    ++success;
                    polyplug_runtime_destroy(host);
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(success == 40);
}

TEST_CASE("shim - interleaved lifecycles and null config", "[shim][seed]") {
    for (int i = 0; i < 3; ++i) {
        const HostApi* host = polyplug_runtime_create(nullptr);
        REQUIRE(host != nullptr);
        polyplug_runtime_destroy(host);
    }
}

TEST_CASE("shim - destroy(NULL) is safe", "[shim][seed]") {
    polyplug_runtime_destroy(nullptr);
    SUCCEED("destroy(NULL) returned");
}

TEST_CASE("shim - 8 threads, each its own runtime, loading a bad path", "[shim][seed]") {
    std::atomic<int> ok{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            const HostApi* host = polyplug_runtime_create(nullptr);
            if (host == nullptr) return;
            AbiError result{};
            host->load_bundle(host, reinterpret_cast<const std::uint8_t*>("/bad"), 4, &result);
            (result.code == AbiErrorCode_Ok ? ok : failed)++;
            polyplug_runtime_destroy(host);
        });
    }
    for (auto& t : threads) t.join();
    CHECK(ok + failed == 8);
    CHECK(failed == 8);  // stricter than the seed: "/bad" must fail
}

TEST_CASE("shim - resolve of the null handle is NULL", "[shim][seed]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    CHECK(host->resolve_guest_contract(host, polyplug_null_handle()) == nullptr);
    polyplug_runtime_destroy(host);
}

TEST_CASE("shim - HostApi has a runtime pointer and every operation", "[shim][seed]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    CHECK(host->runtime != nullptr);
    CHECK(host->register_guest_contract != nullptr);
    CHECK(host->alloc != nullptr);
    CHECK(host->free != nullptr);
    CHECK(host->find_guest_contract != nullptr);
    CHECK(host->find_all_guest_contracts != nullptr);
    CHECK(host->resolve_guest_contract != nullptr);
    CHECK(host->get_host_contract != nullptr);
    CHECK(host->resolve_host_contract_interface != nullptr);
    CHECK(host->list_bundles != nullptr);
    CHECK(host->get_dependencies != nullptr);
    CHECK(host->load_bundle != nullptr);
    CHECK(host->reload_bundle != nullptr);
    CHECK(host->register_host_contract != nullptr);
    CHECK(host->register_loader != nullptr);
    CHECK(host->get_last_error != nullptr);
    CHECK(host->get_error_len != nullptr);
    CHECK(host->unload_bundle != nullptr);
    CHECK(host->log != nullptr);
    CHECK(host->create_guest_instance != nullptr);
    CHECK(host->destroy_guest_instance != nullptr);
    CHECK(host->revision_counter != nullptr);
    CHECK(host->reserved == nullptr);
    polyplug_runtime_destroy(host);
}

TEST_CASE("shim - create/destroy cycles leave the runtime count at zero", "[shim]") {
    // 2,000 cycles with a config and a failed load each: under AddressSanitizer this is a leak
    // check of the whole teardown path.
    RuntimeConfig config{};
    config.log_max_level = LogLevel_Error;
    for (int i = 0; i < 2000; ++i) {
        const HostApi* host = polyplug_runtime_create(&config);
        REQUIRE(host != nullptr);
        AbiError err{};
        host->load_bundle(host, reinterpret_cast<const std::uint8_t*>("/bad"), 4, &err);
        polyplug_runtime_destroy(host);
    }
    SUCCEED("2000 cycles");
}
