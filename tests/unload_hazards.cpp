// SPDX-License-Identifier: MIT
/// @file unload_hazards.cpp
/// What unloading does when a bundle leaves something behind: a thread still running its code
/// (one it started, or a host thread inside a raw function pointer), thread_local destructors,
/// atexit handlers. Whether the process survives is only visible from outside it, so each case
/// runs in a child process (this executable, running one hidden "[.child]" case) and the parent
/// checks how the child ended (tests/child_process.hpp). A crash at exit or at thread exit fails
/// the parent's case.
#include "child_process.hpp"
#include "support.hpp"

#include <polyplug/detail/unload_hazards.hpp>

#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;

const std::string hazard_provides =
    "provides = [\"test.hazard@1\"]\nfunction_count = { \"test.hazard@1\" = 1 }\n";

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(2ms);
    }
    return condition();
}

/// An exported function of the library mapped from `library`, looked up through a handle that is
/// closed again at once (so the test holds no reference that would keep the code mapped).
template <class Fn>
Fn exported(const fs::path& library, const char* name) {
    void* handle = ::dlopen(library.c_str(), RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    REQUIRE(handle != nullptr);
    auto* fn = reinterpret_cast<Fn>(::dlsym(handle, name));
    ::dlclose(handle);
    REQUIRE(fn != nullptr);
    return fn;
}

struct hazard_runtime {
    temp_dir dir;
    log_capture logs;
    std::optional<polyplug::runtime> rt;
    fs::path library;

    explicit hazard_runtime(
        const std::string& fixture_name, bool probe = true,
        polyplug::unmap_policy unmap = polyplug::unmap_policy::after_grace_period) {
        polyplug::runtime_options options;
        options.unload_grace_period = 0ms;
        options.unmap = unmap;
        options.probe_threads_before_unmap = probe;
        options.log = logs.callback();
        options.log_max_level = polyplug::log_level::debug;
        rt.emplace(options);
        const fs::path bundle = make_bundle(dir.path(), "hazards", fixture_name, hazard_provides);
        library = bundle / "libhazards.so";
        rt->load_bundle(bundle);
        REQUIRE(is_mapped(library));
    }
    void unload() { rt->unload_bundle(polyplug::bundle_id("hazards")); }
};

}  // namespace

// ---- the cases, each run in a child process --------------------------------------------------

TEST_CASE("unload_hazards - a thread the bundle started keeps its code mapped, to process exit",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - thread left running");
}

TEST_CASE("unload_hazards child - thread left running", "[.child]") {
    hazard_runtime h("hazard_thread");
    auto running = exported<bool (*)()>(h.library, "hazard_thread_running");
    REQUIRE(wait_for(running, 2s));
    h.unload();
    CHECK(h.logs.contains("unmapping '" + h.library.string() + "' is deferred: thread "));
    CHECK(h.logs.contains("still running its code (checked again every 100 ms)"));
    // The worker retries every 100 ms; while it does, the library still counts as pending (a
    // load meanwhile must see the old version as mapped). Watched without pause across retries.
    std::size_t lowest_pending = 1;
    const auto until = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < until)
        lowest_pending = std::min(lowest_pending, h.rt->core().pending_unmaps());
    INFO("runtime log:\n" << h.logs.text());
    CHECK(is_mapped(h.library));
    CHECK(lowest_pending == 1);
    CHECK(h.rt->core().pending_unmaps() == 1);
    h.rt.reset();  // teardown: the thread still runs there, so the code stays
    CHECK(is_mapped(h.library));
    CHECK(h.logs.contains("' stays mapped for the rest of the process: thread "));
    CHECK(running());  // and the thread is fine; the process exits with it still running
}

TEST_CASE("unload_hazards - the HostApi table a plugin holds outlives the runtime with its code",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - HostApi after destroy");
}

TEST_CASE("unload_hazards child - HostApi after destroy", "[.child]") {
    hazard_runtime h("hazard_thread");
    auto running = exported<bool (*)()>(h.library, "hazard_thread_running");
    auto call_host = exported<std::uint32_t (*)(std::size_t*)>(h.library, "hazard_call_host");
    REQUIRE(wait_for(running, 2s));
    std::size_t error_len = 0;
    CHECK(call_host(&error_len) == AbiErrorCode_Generic);  // unknown bundle id, while alive
    CHECK(error_len > 0);
    h.rt.reset();  // teardown: the bundle's thread still runs its code, which stays mapped
    REQUIRE(is_mapped(h.library));
    // What that thread may do next: call the table it was given. The runtime is gone; the table
    // answers as for a null runtime instead of reaching freed memory.
    CHECK(call_host(&error_len) == AbiErrorCode_InvalidPointer);
    CHECK(error_len == std::string_view("null HostApi pointer").size());
}

TEST_CASE("unload_hazards - a deferred unmap happens once the bundle's thread has stopped",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - thread stops later");
}

TEST_CASE("unload_hazards child - thread stops later", "[.child]") {
    hazard_runtime h("hazard_thread");
    auto running = exported<bool (*)()>(h.library, "hazard_thread_running");
    auto stop = exported<void (*)()>(h.library, "hazard_stop");
    REQUIRE(wait_for(running, 2s));
    h.unload();
    CHECK(h.logs.contains("is deferred"));
    CHECK(is_mapped(h.library));
    stop();  // safe: its code is still mapped
    CHECK(wait_for([&] { return !is_mapped(h.library); }, 5s));
    // The worker logs after its dlclose returns: the unmap can be seen before the line is.
    CHECK(
        wait_for([&] { return h.logs.contains("unmapped '" + h.library.string() + "' now"); }, 5s));
    // Counted until the worker's attempt is over, a moment after that line.
    CHECK(wait_for([&] { return h.rt->core().pending_unmaps() == 0; }, 5s));
}

TEST_CASE("unload_hazards - a host thread inside a raw function pointer defers the unmap",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - host thread inside");
}

TEST_CASE("unload_hazards child - host thread inside", "[.child]") {
    hazard_runtime h("hazards");
    auto wait = exported<void (*)(const std::atomic<bool>*)>(h.library, "hazard_wait");
    std::atomic<bool> release{false};
    std::atomic<bool> entered{false};
    std::thread caller([&] {
        entered = true;
        wait(&release);  // a pointer the host kept: no runtime-mediated call protects it
    });
    REQUIRE(wait_for([&] { return entered.load(); }, 2s));
    std::this_thread::sleep_for(20ms);  // inside hazard_wait's loop now
    h.unload();                         // grace period 0: would unmap at once
    CHECK(h.logs.contains("is deferred: thread "));
    CHECK(is_mapped(h.library));
    release = true;
    caller.join();
    CHECK(wait_for([&] { return !is_mapped(h.library); }, 5s));
}

TEST_CASE("unload_hazards - the unloading thread itself inside the library defers the unmap",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - unloading thread inside");
}

TEST_CASE("unload_hazards child - unloading thread inside", "[.child]") {
    // The host unloads the bundle from a callback the bundle's own code is running: returning
    // from the callback goes back into the library, so it must stay mapped until then. The
    // process has no other thread: only the unloading thread's own stack can say so.
    hazard_runtime h("hazards");
    auto call_back = exported<void (*)(void (*)(void*), void*)>(h.library, "hazard_call_back");
    call_back([](void* data) { static_cast<hazard_runtime*>(data)->unload(); }, &h);
    CHECK(h.logs.contains("is deferred: thread "));  // and we came back through mapped code
    CHECK(wait_for([&] { return !is_mapped(h.library); }, 5s));
    // The worker logs after its dlclose returns: the unmap can be seen before the line is.
    CHECK(
        wait_for([&] { return h.logs.contains("unmapped '" + h.library.string() + "' now"); }, 5s));
}

TEST_CASE("unload_hazards - a pointer to the library's code on the stack alone does not defer",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - code pointer on the stack");
}

TEST_CASE("unload_hazards child - code pointer on the stack", "[.child]") {
    // The stack scan sees a word pointing into the library's code (a function pointer the host
    // keeps in a local, not a frame): the backtrace then says no thread is inside, and the unmap
    // happens at once.
    hazard_runtime h("hazards");
    using wait_fn = void (*)(const std::atomic<bool>*);
    volatile wait_fn kept = exported<wait_fn>(h.library, "hazard_wait");  // never called
    REQUIRE(kept != nullptr);
    h.unload();
    CHECK_FALSE(h.logs.contains("is deferred"));
    CHECK_FALSE(is_mapped(h.library));
    CHECK(kept != nullptr);  // still on the stack during the unload
}

namespace {
// The scan from a frame of its own, below the caller's locals, as the runtime's unload calls it:
// inlined into the caller, it would start at the caller's frame address, above its locals (an
// optimised build inlines it).
[[gnu::noinline]] bool scan_from_below(const polyplug::detail::library_image& image,
                                       std::uintptr_t scan_from = 0) {
    return polyplug::detail::hazards::stack_may_touch(image, scan_from);
}

// Scans with a word pointing inside the library's code in a local of this frame, as a return
// address would. A function of its own, so that the word is gone (below the caller's frame, not
// scanned) once it returns. `entry_scan`: the scan is the unload's own, from the frame its
// runtime_entry marked (as retire_version passes it); otherwise from its own frame.
[[gnu::noinline]] bool scan_with_code_word(const polyplug::detail::library_image& image,
                                           std::uintptr_t offset, bool entry_scan = false) {
    volatile std::uintptr_t word = image.code_begin + offset;
    const bool seen =
        scan_from_below(image, entry_scan ? polyplug::detail::hazards::runtime_entry_frame : 0);
    word = 0;
    return seen && word == 0;
}

// The runtime's unload marks its own frame (runtime_entry) and its close scans from there: a
// word in a frame below the entry (here: scan_with_code_word's local, as a stale return address
// in one of the unload's own frames would be) is not looked at. A scan that is not the unload's
// own (the teardown's, the worker's) ignores the mark and sees it.
[[gnu::noinline]] bool scan_with_code_word_below_entry(const polyplug::detail::library_image& image,
                                                       bool entry_scan) {
    const polyplug::detail::runtime_entry entry(__builtin_frame_address(0));
    return scan_with_code_word(image, 32, entry_scan);
}

[[gnu::noinline]] bool enter_and_scan(const polyplug::detail::library_image& image) {
    const polyplug::detail::runtime_entry entry(__builtin_frame_address(0));
    return scan_from_below(image, polyplug::detail::hazards::runtime_entry_frame);
}

// A word above the entry (the frames of whoever called the unload: the host, or the plugin
// whose callback unloads it) is still seen.
[[gnu::noinline]] bool scan_with_code_word_above_entry(
    const polyplug::detail::library_image& image) {
    volatile std::uintptr_t word = image.code_begin + 32;
    const bool seen = enter_and_scan(image);
    word = 0;
    return seen && word == 0;
}
}  // namespace

TEST_CASE(
    "unload_hazards - the stack scan: the caller's own description of the library is no "
    "candidate, a code address is",
    "[unload_hazards]") {
    // The unloading thread holds the library's description (library_image) in a local, so the
    // start of its code is always on the stack it scans. Counting it made every unload pay for
    // a backtrace (some 20,000 instructions). A return address is never a segment's first byte.
    void* handle = ::dlopen(fixture("hazards").c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(handle != nullptr);
    polyplug::detail::library_image image;
    REQUIRE(polyplug::detail::describe_library(handle, image));
    REQUIRE(image.code_end - image.code_begin > 64);        // a length: no address in this frame
    volatile std::uintptr_t begin_copy = image.code_begin;  // as a copy of the image would hold
    CHECK_FALSE(polyplug::detail::hazards::stack_may_touch(image));
    CHECK(scan_with_code_word(image, 32));
    CHECK(scan_with_code_word(image, 1));
    CHECK_FALSE(polyplug::detail::hazards::stack_may_touch(image));
    CHECK(begin_copy != 0);
    ::dlclose(handle);
}

TEST_CASE(
    "unload_hazards - the stack scan starts at the runtime's entry frame: below it nothing "
    "counts, above it a code address does",
    "[unload_hazards]") {
    void* handle = ::dlopen(fixture("hazards").c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(handle != nullptr);
    polyplug::detail::library_image image;
    REQUIRE(polyplug::detail::describe_library(handle, image));
    CHECK(scan_with_code_word(image, 32));  // no entry marked: the whole stack from the scan up
    CHECK_FALSE(scan_with_code_word_below_entry(image, /*entry_scan=*/true));
    CHECK(scan_with_code_word_below_entry(image, /*entry_scan=*/false));  // not the unload's scan
    CHECK(scan_with_code_word_above_entry(image));
    CHECK(polyplug::detail::hazards::runtime_entry_frame == 0);  // each entry restored on exit
    ::dlclose(handle);
}

namespace {
struct walk_probe {
    const polyplug::detail::library_image* image;
    bool touches = false;
};
[[gnu::noinline]] void walk_from_here(void* data) {
    auto& probe = *static_cast<walk_probe*>(data);
    probe.touches = polyplug::detail::hazards::unwinder_touches(*probe.image);
}
}  // namespace

TEST_CASE("unload_hazards - a frame walk that meets code in no loaded object (a JIT's) answers yes",
          "[unload_hazards]") {
    // Code a JIT wrote lies in no loaded object, and its unwind tables, if any, may hold only at
    // its call sites (LuaJIT's): stepping past such a frame from a signal aborted the host. The
    // walk stops there and answers yes (the frames above are unknown, so the unmap waits).
#if !defined(__x86_64__)
    WARN("skipped: the stand-in for JIT code is x86-64 machine code");
#else
    void* handle = ::dlopen(fixture("hazards").c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(handle != nullptr);
    polyplug::detail::library_image image;
    REQUIRE(polyplug::detail::describe_library(handle, image));
    walk_probe probe{&image};
    walk_from_here(&probe);
    CHECK_FALSE(probe.touches);  // every frame is in a loaded object, none in the library

    // f(data, callback): sub $8,%rsp; call *%rsi; add $8,%rsp; ret. Not at the page's start:
    // clang's -fsanitize=function reads the bytes around a function it calls.
    const unsigned char stub[] = {0x48, 0x83, 0xec, 0x08, 0xff, 0xd6, 0x48, 0x83, 0xc4, 0x08, 0xc3};
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    void* code = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(code != MAP_FAILED);
    std::memcpy(static_cast<unsigned char*>(code) + 64, stub, sizeof stub);
    REQUIRE(::mprotect(code, page, PROT_READ | PROT_EXEC) == 0);
    using stub_fn = void (*)(void*, void (*)(void*));
    const auto jit = reinterpret_cast<stub_fn>(static_cast<unsigned char*>(code) + 64);
    probe.touches = false;
    jit(&probe, &walk_from_here);
    CHECK(probe.touches);  // stopped at the stub's frame
    ::munmap(code, page);
    ::dlclose(handle);
#endif
}

TEST_CASE(
    "unload_hazards - a thread that blocks SIGURG, waiting outside the library, does not "
    "stall the unmap",
    "[unload_hazards]") {
    require_clean_child("unload_hazards child - thread blocks the probe");
}

TEST_CASE("unload_hazards child - thread blocks the probe", "[.child]") {
    hazard_runtime h("hazards");
    std::atomic<bool> blocked{false};
    std::atomic<bool> finish{false};
    std::thread quiet([&] {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGURG);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        blocked = true;
        while (!finish) std::this_thread::sleep_for(1ms);
    });
    REQUIRE(wait_for([&] { return blocked.load(); }, 2s));
    const auto start = std::chrono::steady_clock::now();
    h.unload();
    CHECK_FALSE(is_mapped(h.library));  // unmapped at once: its stack was read from outside
    CHECK(std::chrono::steady_clock::now() - start < 150ms);
    // (1 here; sanitizer runtimes add threads of their own that block every signal.)
    CHECK(
        h.logs.contains(" thread(s) blocking SIGURG or not answering the probe were looked at "
                        "from outside, waiting in the kernel, before unmapping"));
    CHECK_FALSE(h.logs.contains("is deferred"));
    finish = true;
    quiet.join();
}

namespace {
void block_probe_signal() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGURG);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}
}  // namespace

TEST_CASE("unload_hazards - a thread that blocks SIGURG inside the library defers the unmap",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - quiet thread inside");
}

TEST_CASE("unload_hazards child - quiet thread inside", "[.child]") {
    // It cannot answer the probe; it sleeps inside hazard_wait, so its stack, read from outside
    // while it waits in the kernel, holds a return address into the library.
    hazard_runtime h("hazards");
    auto wait = exported<void (*)(const std::atomic<bool>*)>(h.library, "hazard_wait");
    std::atomic<bool> release{false};
    std::atomic<bool> entered{false};
    std::thread quiet([&] {
        block_probe_signal();
        entered = true;
        wait(&release);
    });
    REQUIRE(wait_for([&] { return entered.load(); }, 2s));
    std::this_thread::sleep_for(20ms);  // inside hazard_wait's loop now
    h.unload();
    CHECK(h.logs.contains("is deferred: thread "));
    CHECK(h.logs.contains(" is still running its code (checked again every 100 ms)"));
    CHECK(is_mapped(h.library));
    release = true;
    quiet.join();
    CHECK(wait_for([&] { return !is_mapped(h.library); }, 5s));
}

namespace {
// A thread in the library's code, interrupted by SIGUSR1 whose handler blocks every signal (so
// the probe's SIGURG too) and waits in the kernel until released: the case the look from outside
// has to read through the signal frame. On an alternate signal stack when `alternate`.
std::atomic<bool> g_in_handler{false};
std::atomic<bool> g_leave_handler{false};
void waiting_handler(int) {
    g_in_handler = true;
    while (!g_leave_handler.load()) ::usleep(1000);
}

void interrupted_inside(bool alternate, const char* entry) {
    hazard_runtime h("hazards");
    auto code = exported<void (*)(const std::atomic<bool>*)>(h.library, entry);
    std::atomic<bool> release{false};
    std::atomic<bool> entered{false};
    std::vector<char> alt(alternate ? 1 << 16 : 0);
    std::thread inside([&] {
        // The thread's previous alternate stack is put back before it exits: a sanitizer
        // runtime unmaps the one it finds then, thinking it its own.
        stack_t previous{};
        if (alternate) {
            stack_t ss{};
            ss.ss_sp = alt.data();
            ss.ss_size = alt.size();
            if (::sigaltstack(&ss, &previous) != 0) std::abort();
        }
        struct sigaction action {};
        action.sa_handler = &waiting_handler;
        action.sa_flags = alternate ? SA_ONSTACK : 0;
        sigfillset(&action.sa_mask);
        if (::sigaction(SIGUSR1, &action, nullptr) != 0) std::abort();
        entered = true;
        code(&release);
        if (alternate) ::sigaltstack(&previous, nullptr);
    });
    REQUIRE(wait_for([&] { return entered.load(); }, 2s));
    std::this_thread::sleep_for(20ms);  // inside the library's loop now
    ::pthread_kill(inside.native_handle(), SIGUSR1);
    REQUIRE(wait_for([&] { return g_in_handler.load(); }, 2s));
    std::this_thread::sleep_for(20ms);  // waiting in the handler's usleep now
    h.unload();
    CHECK(h.logs.contains("is deferred: thread "));
    CHECK(is_mapped(h.library));
    g_leave_handler = true;
    release = true;
    inside.join();
    CHECK(wait_for([&] { return !is_mapped(h.library); }, 5s));
}
}  // namespace

TEST_CASE(
    "unload_hazards - a thread interrupted inside the library by a handler that blocks "
    "SIGURG defers the unmap",
    "[unload_hazards]") {
    require_clean_child("unload_hazards child - interrupted inside on its own stack");
    require_clean_child("unload_hazards child - interrupted inside on an alternate stack");
    require_clean_child("unload_hazards child - interrupted in a wait on an alternate stack");
}

TEST_CASE("unload_hazards child - interrupted inside on its own stack", "[.child]") {
    interrupted_inside(false, "hazard_spin");  // the saved instruction pointer is the library's
}
TEST_CASE("unload_hazards child - interrupted inside on an alternate stack", "[.child]") {
    interrupted_inside(true, "hazard_spin");  // the context, on the alternate stack, says so
}
TEST_CASE("unload_hazards child - interrupted in a wait on an alternate stack", "[.child]") {
    // Interrupted in the C library's sleep: only the thread's own stack, which the context on
    // the alternate stack leads to, holds the library's return address.
    interrupted_inside(true, "hazard_wait");
}

TEST_CASE(
    "unload_hazards - a thread that blocks SIGURG and never waits keeps the library mapped "
    "until it does",
    "[unload_hazards]") {
    require_clean_child("unload_hazards child - quiet thread spinning");
}

TEST_CASE("unload_hazards child - quiet thread spinning", "[.child]") {
    // Running in user space the whole time (here outside the library, but nothing can tell):
    // neither the probe nor a look from outside can see its frames, so the unmap waits until the
    // thread waits in the kernel.
    hazard_runtime h("hazards");
    std::atomic<bool> spinning{false};
    std::atomic<bool> stop_spinning{false};
    std::atomic<bool> finish{false};
    std::thread quiet([&] {
        block_probe_signal();
        spinning = true;
        while (!stop_spinning.load()) {
        }
        while (!finish) std::this_thread::sleep_for(1ms);
    });
    REQUIRE(wait_for([&] { return spinning.load(); }, 2s));
    h.unload();
    CHECK(
        h.logs.contains(" blocks the probe signal SIGURG and never waited in the kernel while "
                        "looked at, so whether it runs its code is unknown (checked again "
                        "every 100 ms)"));
    CHECK(is_mapped(h.library));
    stop_spinning = true;
    CHECK(wait_for([&] { return !is_mapped(h.library); }, 5s));
    finish = true;
    quiet.join();
}

TEST_CASE("unload_hazards - thread_local destructors run from mapped code at thread exit",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - thread_local destructors");
}

TEST_CASE("unload_hazards child - thread_local destructors", "[.child]") {
    hazard_runtime h("hazards");
    auto touch = exported<void (*)(std::atomic<int>*)>(h.library, "hazard_touch_thread_local");
    std::atomic<int> destroyed{0};
    std::atomic<bool> touched{false};
    std::atomic<bool> finish{false};
    std::thread owner([&] {
        touch(&destroyed);  // registers the destructor, then leaves the library's code
        touched = true;
        while (!finish) std::this_thread::sleep_for(1ms);
    });
    REQUIRE(wait_for([&] { return touched.load(); }, 2s));
    h.unload();
    CHECK_FALSE(h.logs.contains("is deferred"));  // no thread is inside its code...
    CHECK(is_mapped(h.library));                  // ...but glibc keeps it for the destructor
    CHECK(
        h.logs.contains("' stays mapped until the threads that used its thread_local objects "
                        "have exited"));
    finish = true;
    owner.join();
    CHECK(destroyed == 1);  // the destructor ran, from mapped code
    h.rt.reset();           // teardown closes it once more: now glibc unmaps it
    CHECK_FALSE(is_mapped(h.library));
}

TEST_CASE("unload_hazards - atexit handlers run at the unmap, not at process exit",
          "[unload_hazards]") {
    require_clean_child("unload_hazards child - atexit at unmap");
    require_clean_child("unload_hazards child - atexit with unmap policy never");
}

namespace {
// Static: if a handler ran at process exit instead, it would still find its counter.
std::atomic<int> g_atexit_runs{0};
}  // namespace

TEST_CASE("unload_hazards child - atexit at unmap", "[.child]") {
    hazard_runtime h("hazards");
    exported<void (*)(std::atomic<int>*)>(h.library, "hazard_arm_atexit")(&g_atexit_runs);
    h.unload();
    CHECK(g_atexit_runs == 1);  // glibc ran it at the last dlclose...
    CHECK_FALSE(is_mapped(h.library));
    // ...so nothing of the library is left to run at exit.
}

TEST_CASE("unload_hazards child - atexit with unmap policy never", "[.child]") {
    hazard_runtime h("hazards", true, polyplug::unmap_policy::never);
    exported<void (*)(std::atomic<int>*)>(h.library, "hazard_arm_atexit")(&g_atexit_runs);
    h.unload();
    CHECK(g_atexit_runs == 0);  // still mapped: not yet
    h.rt.reset();
    CHECK(g_atexit_runs == 1);
    CHECK_FALSE(is_mapped(h.library));
}

TEST_CASE("unload_hazards - without the thread probe, a thread left running crashes the process",
          "[unload_hazards]") {
    // The control case: it shows the probe is what keeps the process alive above.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define POLYPLUG_TEST_UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(POLYPLUG_TEST_UNDER_TSAN)
    // ThreadSanitizer's fault handler hangs instead of ending a process that jumps into
    // unmapped code; the GCC and ASan builds run this case.
    WARN("skipped under ThreadSanitizer: a crash in unmapped code hangs its fault handler");
    return;
#endif
    const child_result child = run_child("unload_hazards child - no probe");
    INFO("child output:\n" << child.output);
    CHECK_FALSE((child.exited && child.code == 0));
    CHECK(child.output.find("All tests passed") == std::string::npos);
}

TEST_CASE("unload_hazards child - no probe", "[.child]") {
    hazard_runtime h("hazard_thread", /*probe=*/false);
    auto running = exported<bool (*)()>(h.library, "hazard_thread_running");
    REQUIRE(wait_for(running, 2s));
    h.unload();
    CHECK_FALSE(is_mapped(h.library));
    std::this_thread::sleep_for(500ms);  // the thread wakes up in unmapped code
}
