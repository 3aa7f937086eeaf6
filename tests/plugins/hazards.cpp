// SPDX-License-Identifier: MIT
/// @file hazards.cpp
/// Fixture: a C++ plugin that leaves behind what makes unloading unsafe (tests/unload_hazards.cpp).
/// It registers test.hazard@1 (one function, returns 1) and exports hooks the test calls through
/// pointers it looked up while the bundle was loaded:
/// - hazard_touch_thread_local(counter): gives the calling thread a thread_local object whose
///   destructor increments `counter` (registered through __cxa_thread_atexit);
/// - hazard_arm_atexit(counter): the atexit handler registered by init increments `counter`;
/// - hazard_wait(release): blocks the calling thread inside this library until `release` is set;
/// - hazard_spin(release): the same, running (never in a system call);
/// - with -DHAZARD_THREAD, init starts a thread that runs in this library until hazard_stop().
#include <polyplug/abi.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace {

std::atomic<std::atomic<int>*> g_atexit_counter{nullptr};

struct thread_local_guard {
    std::atomic<int>* counter = nullptr;
    ~thread_local_guard() {
        if (counter != nullptr) counter->fetch_add(1);
    }
};
thread_local thread_local_guard t_guard;

void on_exit_handler() {
    if (std::atomic<int>* counter = g_atexit_counter.load()) counter->fetch_add(1);
}

void sleep_a_little() {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

std::atomic<const HostApi*> g_host{nullptr};  // the table init was given, kept as plugins do

#ifdef HAZARD_THREAD
std::atomic<bool> g_stop{false};
std::atomic<bool> g_running{false};
#endif

std::uint64_t hazard_id() {
    return polyplug_guest_contract_id("test.hazard", 11, 1);
}

void hazard_create(VmLoaderData, const HostApi*, const void*, GuestContractInstance* out) {
    out->data = nullptr;
    out->contract_id = hazard_id();
}
void hazard_destroy(VmLoaderData, const HostApi*, GuestContractInstance) {}
void hazard_one(GuestContractInstance, const void*, void* out, AbiError* err) {
    *static_cast<std::uint32_t*>(out) = 1;
    err->code = AbiErrorCode_Ok;
}

const void* g_table[1];

}  // namespace

extern "C" {

POLYPLUG_PLUGIN_EXPORT void hazard_touch_thread_local(std::atomic<int>* counter) {
    t_guard.counter = counter;
}
POLYPLUG_PLUGIN_EXPORT void hazard_arm_atexit(std::atomic<int>* counter) {
    g_atexit_counter.store(counter);
}
/// Calls the HostApi table init was given, as a plugin thread may at any time: unload_bundle of
/// an unknown id, returning the AbiError code, and the length of the last error.
POLYPLUG_PLUGIN_EXPORT std::uint32_t hazard_call_host(std::size_t* error_len) {
    const HostApi* host = g_host.load();
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    host->unload_bundle(host, 12345, &err);
    *error_len = host->get_error_len(host);
    return err.code;
}

POLYPLUG_PLUGIN_EXPORT void hazard_wait(const std::atomic<bool>* release) {
    while (!release->load()) sleep_a_little();
}
// Runs inside this library without a system call (no return address of it on the stack, only
// the instruction pointer) until `release` is set.
POLYPLUG_PLUGIN_EXPORT void hazard_spin(const std::atomic<bool>* release) {
    while (!release->load(std::memory_order_relaxed)) {
    }
}
std::atomic<int> g_calls_back{0};
// Calls the host back from inside the library's code; the count afterwards keeps this frame on
// the stack during the call (no tail call), as a real plugin's work after a callback would.
POLYPLUG_PLUGIN_EXPORT void hazard_call_back(void (*callback)(void*), void* data) {
    callback(data);
    g_calls_back.fetch_add(1);
}
#ifdef HAZARD_THREAD
POLYPLUG_PLUGIN_EXPORT void hazard_stop() {
    g_stop.store(true);
}
POLYPLUG_PLUGIN_EXPORT bool hazard_thread_running() {
    return g_running.load();
}
#endif

POLYPLUG_PLUGIN_EXPORT std::uint32_t polyplug_abi_version() {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext*) {
    std::atexit(&on_exit_handler);
    g_host.store(host);
#ifdef HAZARD_THREAD
    // The flag is raised by the thread itself: a thread that exists but has not reached this
    // library's code yet is invisible to the runtime's probe (see detail/unload_hazards.hpp).
    std::thread([] {
        g_running.store(true);
        while (!g_stop.load()) sleep_a_little();
        g_running.store(false);
    }).detach();
#endif
    g_table[0] = POLYPLUG_FN_ENTRY(&hazard_one);
    GuestContractInterface hazard{};
    hazard.contract_id = hazard_id();
    hazard.contract_version = Version{1, 0, 0};
    hazard.dispatch_type = DispatchType_Native;
    hazard.create_instance = hazard_create;
    hazard.destroy_instance = hazard_destroy;
    hazard.dispatch.native.function_count = 1;
    hazard.dispatch.native.functions = g_table;
    const PluginDescriptor descriptor{polyplug_sv("test_hazards"), polyplug_sv("test.hazard"),
                                      Version{1, 0, 0}};
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    host->register_guest_contract(host, &descriptor, &hazard, &err);
    return err;
}

}  // extern "C"
