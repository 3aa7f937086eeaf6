// SPDX-License-Identifier: MIT
/// @file detail/unload_hazards.hpp
/// What makes unmapping a library unsafe right now, looked for before its last dlclose: threads
/// still running its code, and thread_local destructors it registers (glibc then keeps it).
#pragma once

#include <polyplug/config.hpp>

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>
#include <fcntl.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <unwind.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

// glibc: the stack pointer at process start, just below argc, argv and the environment.
extern "C" void* __libc_stack_end;

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Where one opened library lies in memory, read from its dlopen handle.
struct library_image {
    struct segment {
        std::uintptr_t begin;
        std::uintptr_t end;
    };
    std::string name;               ///< the path it was opened by (link_map::l_name)
    std::uintptr_t base = 0;        ///< load bias (link_map::l_addr)
    std::vector<segment> segments;  ///< its PT_LOAD segments, relocated
    /// It imports __cxa_thread_atexit(_impl): it may register thread_local destructors, which
    /// make glibc keep it mapped after the last dlclose until the threads that own them exit.
    bool registers_thread_local_destructors = false;

    [[nodiscard]] bool contains(const void* address) const noexcept {
        const auto at = reinterpret_cast<std::uintptr_t>(address);
        for (const segment& s : segments)
            if (at >= s.begin && at < s.end) return true;
        return false;
    }
    /// From the first executable segment's start to the last one's end (0, 0: none).
    std::uintptr_t code_begin = 0, code_end = 0;
};

namespace hazards {

// The dynamic section's addresses, relocated: glibc rewrites them in place on most targets, on
// others they are still link-time offsets (below any load bias of a shared object).
inline std::uintptr_t relocated(const link_map& map, std::uintptr_t address) noexcept {
    return address < map.l_addr ? address + map.l_addr : address;
}

// Whether the library has an undefined dynamic symbol of one of `names`. Undefined symbols are
// never in a GNU hash table, so they all sit below its `symoffset`; with only a SysV hash table
// its `nchain` counts every symbol.
inline bool imports_any(const link_map& map, std::initializer_list<std::string_view> names) {
    const ElfW(Sym)* symbols = nullptr;
    const char* strings = nullptr;
    std::size_t strings_size = 0;
    std::size_t count = 0;
    for (const ElfW(Dyn)* d = map.l_ld; d != nullptr && d->d_tag != DT_NULL; ++d) {
        const auto value = static_cast<std::uintptr_t>(d->d_un.d_ptr);
        switch (d->d_tag) {
            case DT_SYMTAB:
                symbols = reinterpret_cast<const ElfW(Sym)*>(relocated(map, value));
                break;
            case DT_STRTAB:
                strings = reinterpret_cast<const char*>(relocated(map, value));
                break;
            case DT_STRSZ:
                strings_size = static_cast<std::size_t>(d->d_un.d_val);
                break;
            case DT_HASH:
                count = reinterpret_cast<const std::uint32_t*>(relocated(map, value))[1];
                break;
            case DT_GNU_HASH:
                if (count == 0)
                    count = reinterpret_cast<const std::uint32_t*>(relocated(map, value))[1];
                break;
            default:
                break;
        }
    }
    if (symbols == nullptr || strings == nullptr) return false;
    for (std::size_t i = 1; i < count; ++i) {
        const ElfW(Sym)& symbol = symbols[i];
        if (symbol.st_shndx != SHN_UNDEF || symbol.st_name >= strings_size) continue;
        const char* name = strings + symbol.st_name;
        const std::string_view text(name, ::strnlen(name, strings_size - symbol.st_name));
        for (const std::string_view wanted : names)
            if (text == wanted) return true;
    }
    return false;
}

// The probe: each thread is asked, by a signal, whether any of its frames lies in the library,
// and answers from its interrupted stack (interrupted_thread_touches). SIGURG because it is ignored
// by default, so a delivery that arrives after the probe has put the host's disposition back is
// harmless. The state is process-wide because a signal disposition is; one probe runs at a time.
inline constexpr int probe_signal = SIGURG;
inline constexpr std::size_t max_probed_threads = 2048;

enum answer : int { pending = 0, outside = 1, inside = 2 };

struct probe_slot {
    std::atomic<long> tid{0};
    std::atomic<int> answer{pending};
};

// A readable region of the process's memory, from /proc/self/maps.
struct memory_region {
    std::uintptr_t begin, end;
};

struct probe_state {
    std::mutex mutex;
    std::atomic<const library_image*> image{nullptr};
    std::atomic<std::size_t> count{0};
    std::atomic<int> running{0};  ///< handlers executing now
    struct sigaction previous {};
    std::vector<memory_region> regions;  ///< read before a probe signals; handlers only read it
    probe_slot slots[max_probed_threads];
};

inline probe_state& probe() {
    static probe_state state;
    return state;
}

inline long current_tid() noexcept {
    return static_cast<long>(::syscall(SYS_gettid));
}

// Whether a walk of the calling thread's frames (the unwinder's, from here outwards) meets a
// return address in the library. The walk stops, answering yes, at a frame whose code lies in no
// loaded object: code a JIT compiled. Its caller frames are unknown, and stepping past it is
// unsafe: LuaJIT registers unwind tables for its traces that hold only at their call sites, and
// libgcc's unwinder, asked about a trace interrupted elsewhere (as the probe's signal does),
// computes a frame from garbage and aborts the process. "Yes" is the safe side: the unmap waits
// and asks again. Past max_frames the walk answers yes too (the old fixed-depth backtrace said
// no there, however deep the library's frame).
struct frame_walk {
    const library_image* image;
    unsigned frames = 0;
    bool touches = false;
    static constexpr unsigned max_frames = 4096;
};
inline _Unwind_Reason_Code walk_one_frame(_Unwind_Context* context, void* argument) noexcept {
    auto& walk = *static_cast<frame_walk*>(argument);
    int before_call = 0;
    const auto ip = static_cast<std::uintptr_t>(_Unwind_GetIPInfo(context, &before_call));
    if (ip == 0) return _URC_END_OF_STACK;  // the outermost frame
    if (walk.image->contains(reinterpret_cast<const void*>(ip)) ||
        ++walk.frames > walk.max_frames) {
        walk.touches = true;
        return _URC_END_OF_STACK;
    }
#ifdef DLFO_STRUCT_HAS_EH_DBASE  // _dl_find_object (glibc 2.35): lock-free, signal-safe
    dl_find_object found;
    if (::_dl_find_object(reinterpret_cast<void*>(ip), &found) != 0) {
        walk.touches = true;  // JIT-compiled code: see above
        return _URC_END_OF_STACK;
    }
#endif
    return _URC_NO_REASON;
}
inline bool unwinder_touches(const library_image& image) noexcept {
    frame_walk walk{&image};
    _Unwind_Backtrace(&walk_one_frame, &walk);
    return walk.touches;
}

// The calling thread's stack: [low, high), high clamped to __libc_stack_end on the main thread
// (above it lie only argv and the environment). Found once per thread: for the main thread
// glibc reads /proc/self/maps. {0, 0} when unknown.
struct stack_range {
    std::uintptr_t low = 0, high = 0;
};
inline stack_range this_thread_stack() noexcept {
    thread_local const stack_range range = [] {
        stack_range r;
        pthread_attr_t attr;
        if (::pthread_getattr_np(::pthread_self(), &attr) != 0) return r;
        void* address = nullptr;
        std::size_t size = 0;
        if (::pthread_attr_getstack(&attr, &address, &size) == 0) {
            r.low = reinterpret_cast<std::uintptr_t>(address);
            r.high = r.low + size;
        }
        ::pthread_attr_destroy(&attr);
        const auto start = reinterpret_cast<std::uintptr_t>(__libc_stack_end);
        if (start > r.low && start < r.high) r.high = start;
        return r;
    }();
    return range;
}

// The frame where this thread entered the runtime's unload or reload (0: none; innermost when
// nested). The unload's own close scans this thread's stack from there (the caller passes it
// explicitly: a scan that no unload or reload started, such as a teardown's, must not use an
// entry some enclosing call left): every frame below it, down to the scan, is the runtime's own
// and cannot be running plugin code, while a word in those frames that points into the library
// is either stale (a return address an earlier call at that depth left, such as the plugin's
// calls during its own init) or a pointer the runtime holds, and each would send the unload to
// the backtrace (some 20,000 instructions) for nothing.
inline thread_local std::uintptr_t runtime_entry_frame = 0;

}  // namespace hazards

/// Marks the caller's frame as where this thread entered the runtime's unload or reload, for
/// the scope's life: construct it with __builtin_frame_address(0) in the entry function itself,
/// whose callees down to the unmap contain no plugin or host code that is still running. Read
/// (hazards::runtime_entry_frame) only by that unload's own close, which passes it to the scan.
class runtime_entry {
public:
    explicit runtime_entry(void* frame) noexcept : previous_(hazards::runtime_entry_frame) {
        hazards::runtime_entry_frame = reinterpret_cast<std::uintptr_t>(frame);
    }
    ~runtime_entry() { hazards::runtime_entry_frame = previous_; }
    runtime_entry(const runtime_entry&) = delete;
    runtime_entry& operator=(const runtime_entry&) = delete;

private:
    std::uintptr_t previous_;
};

namespace hazards {

// Whether a word of [from, to) points into the library's code. One unsigned comparison per
// word against the span from the first executable segment to the end of the last (a word in a
// gap between them is only a candidate more), four words per branch: a few instructions per word
// of live stack. The span leaves out its first byte: a return address follows a call
// instruction, so it is never the start of a segment, while the caller's own library_image
// (code_begin), often a local on this very stack, is exactly that value and would make every
// scan a false candidate. Reads whole frames, redzones included, and words other threads may be
// writing (a local atomic shared with workers): not instrumented for ASan or TSan.
POLYPLUG_NO_SANITIZE_MEMORY inline bool words_point_into(const library_image& image,
                                                         std::uintptr_t from,
                                                         std::uintptr_t to) noexcept {
    if (image.code_end - image.code_begin < 2) return false;
    const std::uintptr_t low = image.code_begin + 1;
    const std::uintptr_t span = image.code_end - low;
    constexpr std::uintptr_t word = sizeof(std::uintptr_t);
    std::uintptr_t at = from & ~(word - 1);
    for (; at + 4 * word <= to; at += 4 * word) {
        const auto* w = reinterpret_cast<const std::uintptr_t*>(at);
        if ((w[0] - low < span) | (w[1] - low < span) | (w[2] - low < span) | (w[3] - low < span))
            return true;
    }
    for (; at + word <= to; at += word)
        if (*reinterpret_cast<const std::uintptr_t*>(at) - low < span) return true;
    return false;
}

// Whether any word of the calling thread's live stack (from this frame, or from `scan_from`, the
// runtime's entry frame, when it lies above this one on this stack) points into the library's
// code. Every frame of the library that a return
// would come back to has left its return address on the stack (a call pushes it; a non-leaf
// function on other targets saves its link register), so "no" is exact; "yes" may be any other
// word that happens to point there (a function pointer in a local), which is why
// unwinder_touches decides then. True as well when the stack is unknown or the thread runs
// elsewhere (an alternate signal stack, a coroutine): then the caller asks the unwinder too.
inline bool stack_may_touch(const library_image& image, std::uintptr_t scan_from = 0) noexcept {
    const stack_range range = this_thread_stack();
    const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    if (range.low == 0 || here < range.low || here >= range.high) return true;
    // From the runtime's entry frame when it is on this stack above us (see runtime_entry).
    const std::uintptr_t from = scan_from > here && scan_from < range.high ? scan_from : here;
    return words_point_into(image, from, range.high);
}

// The calling thread's own answer: the stack scan rules a library out in a few hundred
// instructions (a walk of the frames costs some 20,000: the unwinder looks up every frame's
// unwind table), and the walk decides only when the scan saw a candidate.
inline bool this_thread_touches(const library_image& image, std::uintptr_t scan_from) noexcept {
    return stack_may_touch(image, scan_from) && unwinder_touches(image);
}

// The readable regions, sorted, read by the prober before it signals (a handler cannot allocate
// or read a file): a handler finds its interrupted stack among them, and so how far it may read.
inline void read_readable_regions(std::vector<memory_region>& regions) {
    regions.clear();
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        unsigned long long begin = 0, end = 0;
        char read = '-';
        if (std::sscanf(line.c_str(), "%llx-%llx %c", &begin, &end, &read) == 3 && read == 'r')
            regions.push_back(
                {static_cast<std::uintptr_t>(begin), static_cast<std::uintptr_t>(end)});
    }
}

// Where the interrupted code was: its instruction, the return address a leaf function keeps in a
// register, its stack pointer (0 where this target is not known: then the handler's caller asks
// the unwinder).
struct interrupted_at {
    std::uintptr_t pc = 0, link = 0, sp = 0;
};
inline interrupted_at interrupted_state(const void* context) noexcept {
    interrupted_at at;
    if (context == nullptr) return at;
    const auto& mc = static_cast<const ucontext_t*>(context)->uc_mcontext;
#if defined(__x86_64__)
    at.pc = static_cast<std::uintptr_t>(mc.gregs[REG_RIP]);
    at.sp = static_cast<std::uintptr_t>(mc.gregs[REG_RSP]);
#elif defined(__aarch64__)
    at.pc = static_cast<std::uintptr_t>(mc.pc);
    at.link = static_cast<std::uintptr_t>(mc.regs[30]);
    at.sp = static_cast<std::uintptr_t>(mc.sp);
#else
    (void)mc;
#endif
    return at;
}

// The probed thread's answer from inside the probe's handler, with no unwinder in the common
// case: the interrupted instruction (and link register) is in the library, or a word of the
// interrupted stack, from its stack pointer to the end of the readable region that holds it,
// points there (a candidate, then decided by the unwinder as on the calling thread). Reading
// from the interrupted stack pointer, not from the handler's frame, covers a handler running on
// an alternate signal stack. When the stack is in no region the prober read (a thread started
// since), the unwinder decides.
inline bool interrupted_thread_touches(const library_image& image, const void* context,
                                       const std::vector<memory_region>& regions) noexcept {
    const interrupted_at at = interrupted_state(context);
    if (at.sp == 0) return unwinder_touches(image);
    if (image.contains(reinterpret_cast<const void*>(at.pc)) ||
        (at.link != 0 && image.contains(reinterpret_cast<const void*>(at.link))))
        return true;
    const auto region =
        std::upper_bound(regions.begin(), regions.end(), at.sp,
                         [](std::uintptr_t sp, const memory_region& r) { return sp < r.begin; });
    if (region == regions.begin() || at.sp >= std::prev(region)->end)
        return unwinder_touches(image);
    // Only the stack itself: the region may be one the kernel merged with a neighbouring mapping
    // that another thread could unmap meanwhile. On the main thread, above __libc_stack_end lie
    // only argv and the environment; any other thread's stack (glibc's, or one the host gave
    // pthread_attr_setstack) ends below its thread descriptor, which pthread_self() points to.
    std::uintptr_t to = std::prev(region)->end;
    const auto main_start = reinterpret_cast<std::uintptr_t>(__libc_stack_end);
    const auto descriptor = reinterpret_cast<std::uintptr_t>(::pthread_self());
    if (main_start > at.sp && main_start < to)
        to = main_start;
    else if (descriptor > at.sp && descriptor < to)
        to = descriptor;
    // From this handler's own frame when it runs on the same stack below the interrupted one:
    // a sanitizer runtime (TSan) delivers a signal late, at a point where the thread may have
    // called deeper than the stack pointer the context recorded.
    std::uintptr_t from = at.sp;
    const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    if (here < from && here >= std::prev(region)->begin) from = here;
    return words_point_into(image, from, to) && unwinder_touches(image);
}

// Runs on the probed thread. Only lock-free atomics, the scan, and (for a candidate) the
// unwinder, which libgcc answers without locks or allocation once primed (glibc's
// _dl_find_object) where no JIT registered unwind tables of its own.
inline void on_probe_signal(int sig, siginfo_t* info, void* context) {
    const int saved_errno = errno;
    probe_state& state = probe();
    state.running.fetch_add(1);
    const library_image* image = state.image.load();
    probe_slot* mine = nullptr;
    if (image != nullptr && info != nullptr && info->si_code == SI_TKILL &&
        info->si_pid == ::getpid()) {
        const long self = current_tid();
        const std::size_t count = state.count.load();
        for (std::size_t i = 0; i < count && mine == nullptr; ++i)
            if (state.slots[i].tid.load() == self && state.slots[i].answer.load() == pending)
                mine = &state.slots[i];
    }
    if (mine != nullptr) {
        mine->answer.store(interrupted_thread_touches(*image, context, state.regions) ? inside
                                                                                      : outside);
    } else if ((state.previous.sa_flags & SA_SIGINFO) != 0 &&
               state.previous.sa_sigaction != nullptr) {
        state.previous.sa_sigaction(sig, info, context);  // not ours: the host's handler
    } else if ((state.previous.sa_flags & SA_SIGINFO) == 0 &&
               state.previous.sa_handler != SIG_DFL && state.previous.sa_handler != SIG_IGN) {
        state.previous.sa_handler(sig);
    }
    state.running.fetch_sub(1);
    errno = saved_errno;
}

// Thread ids of this process, from /proc/self/task.
inline std::vector<long> thread_ids() {
    std::vector<long> ids;
    DIR* dir = ::opendir("/proc/self/task");
    if (dir == nullptr) return ids;
    while (const dirent* entry = ::readdir(dir)) {
        char* end = nullptr;
        const long id = std::strtol(entry->d_name, &end, 10);
        if (end != entry->d_name && *end == '\0' && id > 0) ids.push_back(id);
    }
    ::closedir(dir);
    return ids;
}

// A thread that cannot answer the probe (it blocks SIGURG, or its handler did not run in time)
// is looked at from outside while it waits in the kernel: /proc/self/task/TID/syscall then
// gives its stack pointer and instruction, which stay where they are until it wakes. Its live
// stack is copied with process_vm_readv, not read in place: the thread may wake and exit, and
// its stack go away, under the copy (which then fails, where a plain read would crash). The copy
// is scanned as a probed thread scans its own stack. No unwinder can walk another thread's
// frames, so a candidate word counts as inside: the unmap waits and looks again, the safe side.
// The thread's state is read again after the copy; if it moved, the copy may be torn and the
// look starts over. A thread that is running every time it is looked at, until the deadline,
// stays unknown: it may be running the library's code, so the unmap waits for it too.
enum class outside_answer { inside, outside, unknown };

struct kernel_wait {
    std::uintptr_t sp = 0, pc = 0;
    friend bool operator==(const kernel_wait&, const kernel_wait&) = default;
};

enum class wait_state { waiting, running, gone };

// "NR a1 a2 a3 a4 a5 a6 sp pc" for a thread in a system call, "-1 sp pc" for one blocked
// elsewhere in the kernel, "running" for one that is not blocked.
inline wait_state read_kernel_wait(long tid, kernel_wait& at) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        // Gone only when the thread's own directory is: a kernel without the syscall file (or a
        // /proc without it) must not make every silent thread look like one that has exited.
        std::snprintf(path, sizeof path, "/proc/self/task/%ld", tid);
        return ::access(path, F_OK) != 0 && errno == ENOENT ? wait_state::gone
                                                            : wait_state::running;
    }
    char text[256];
    const ssize_t n = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (n <= 0) return wait_state::running;
    text[n] = '\0';
    if (std::strncmp(text, "running", 7) == 0) return wait_state::running;
    // The last two fields, whatever came before them.
    const char* fields[2] = {nullptr, nullptr};
    for (const char* c = text; *c != '\0'; ++c)
        if (*c != ' ' && *c != '\n' && (c == text || c[-1] == ' ')) {
            fields[0] = fields[1];
            fields[1] = c;
        }
    if (fields[0] == nullptr) return wait_state::running;
    at.sp = static_cast<std::uintptr_t>(std::strtoull(fields[0], nullptr, 0));
    at.pc = static_cast<std::uintptr_t>(std::strtoull(fields[1], nullptr, 0));
    return at.sp != 0 ? wait_state::waiting : wait_state::running;
}

// The addresses signal handlers return to: the word the kernel leaves at the top of a signal
// frame, just before the interrupted context. glibc's __restore_rt for handlers installed through
// it, but a runtime that installs its own with the raw system call (a sanitizer's, another
// language's) brings its own restorer. So they are read from the kernel, every signal's
// disposition by the raw rt_sigaction (an intercepted sigaction would answer with what the host
// asked for, not what the kernel holds). At most a few distinct values.
struct signal_restorers {
    std::uintptr_t address[8] = {};
    std::size_t count = 0;
    [[nodiscard]] bool contains(std::uintptr_t word) const noexcept {
        for (std::size_t i = 0; i < count; ++i)
            if (address[i] == word) return true;
        return false;
    }
};
inline signal_restorers read_signal_restorers() noexcept {
    signal_restorers found;
#if defined(__x86_64__) && defined(SYS_rt_sigaction)
    struct kernel_sigaction {
        void* handler;
        unsigned long flags;
        void* restorer;
        unsigned long mask;
    };
    for (int sig = 1; sig <= 64 && found.count < std::size(found.address); ++sig) {
        kernel_sigaction current{};
        if (::syscall(SYS_rt_sigaction, sig, nullptr, &current, sizeof current.mask) != 0) continue;
        const auto restorer = reinterpret_cast<std::uintptr_t>(current.restorer);
        if (restorer != 0 && !found.contains(restorer)) found.address[found.count++] = restorer;
    }
#endif
    return found;
}

// Copies `bytes` of this process's memory at `remote` (false when any of it is not mapped).
inline bool copy_memory(void* local, std::uintptr_t remote, std::size_t bytes) noexcept {
    const iovec to{local, bytes};
    const iovec from{reinterpret_cast<void*>(remote), bytes};
    return ::process_vm_readv(::getpid(), &to, 1, &from, 1, 0) == static_cast<ssize_t>(bytes);
}

// A scan of another thread's stack, from outside (look_from_outside): every word copied, not
// read in place, a word pointing into the library's code counting as inside. No unwinder can
// confirm a candidate on another thread's stack, so none is filtered: the saved instruction
// pointer of an interrupted context is such a word too, and it follows no call. A signal frame
// met on the way (the restorer's address, then the interrupted context) may lead to another
// stack: a handler running on an alternate signal stack has the interrupted code's frames on the
// thread's own stack, whose stack pointer the context holds; those stacks are scanned as well.
struct outside_stack_scan {
    const library_image& image;
    std::vector<memory_region>& regions;
    std::vector<std::uintptr_t>& buffer;
    const signal_restorers& restorers;
    bool complete = true;                ///< every copy succeeded
    std::vector<std::uintptr_t> more{};  ///< stack pointers of interrupted contexts elsewhere

    static constexpr std::size_t max_stacks = 8;  ///< nested signals on other stacks, at most

    // [sp, end of its region): true when a word points into the library.
    bool scan(std::uintptr_t sp) {
        const auto region = std::upper_bound(
            regions.begin(), regions.end(), sp,
            [](std::uintptr_t at, const memory_region& r) { return at < r.begin; });
        if (region == regions.begin() || sp >= std::prev(region)->end) {
            complete = false;  // a stack mapped since the maps were read
            return false;
        }
        const std::uintptr_t to = std::prev(region)->end;
        constexpr std::size_t word = sizeof(std::uintptr_t);
        constexpr std::size_t chunk_words = 2048;
        buffer.resize(chunk_words);
        const std::uintptr_t low = image.code_begin + 1;  // as words_point_into
        for (std::uintptr_t at = sp & ~(word - 1); at < to;) {
            const std::size_t bytes = std::min<std::uintptr_t>(to - at, chunk_words * word);
            if (!copy_memory(buffer.data(), at, bytes)) {
                complete = false;
                return false;
            }
            for (std::size_t i = 0; i < bytes / word; ++i) {
                const std::uintptr_t w = buffer[i];
                if (w - low < image.code_end - low) return true;
                if (restorers.contains(w) && signal_frame(at + i * word, sp, to)) return true;
            }
            at += bytes;
        }
        return false;
    }

    // The interrupted context after the restorer's word at `at`: its instruction pointer in the
    // library is inside; its stack pointer outside [sp, to) is another stack to scan.
    bool signal_frame(std::uintptr_t at, std::uintptr_t sp, std::uintptr_t to) {
#if defined(__x86_64__)
        std::uintptr_t saved[NGREG];
        if (!copy_memory(saved, at + sizeof(std::uintptr_t) + offsetof(ucontext_t, uc_mcontext),
                         sizeof saved))
            return false;  // a stale restorer word, not a frame
        if (image.contains(reinterpret_cast<const void*>(saved[REG_RIP]))) return true;
        const std::uintptr_t other = saved[REG_RSP];
        if ((other < sp || other >= to) && more.size() < max_stacks &&
            std::find(more.begin(), more.end(), other) == more.end())
            more.push_back(other);
#else
        (void)at;
        (void)sp;
        (void)to;
#endif
        return false;
    }

    // The thread's stack from `sp`, then every other stack a signal frame led to.
    bool touches(std::uintptr_t sp) {
        if (scan(sp)) return true;
        for (std::size_t i = 0; i < more.size(); ++i)
            if (scan(more[i])) return true;
        return false;
    }
};

inline outside_answer look_from_outside(const library_image& image, long tid,
                                        std::vector<memory_region>& regions,
                                        std::chrono::steady_clock::time_point deadline,
                                        std::vector<std::uintptr_t>& buffer,
                                        const signal_restorers& restorers) {
    bool reread = false;
    for (;;) {
        kernel_wait at;
        const wait_state state = read_kernel_wait(tid, at);
        if (state == wait_state::gone) return outside_answer::outside;  // it has exited
        if (state == wait_state::waiting) {
            if (image.contains(reinterpret_cast<const void*>(at.pc))) return outside_answer::inside;
            outside_stack_scan stack{image, regions, buffer, restorers};
            if (stack.touches(at.sp)) return outside_answer::inside;  // seen, even if it moved
            kernel_wait again;
            if (stack.complete && read_kernel_wait(tid, again) == wait_state::waiting &&
                again == at) {
#if defined(__x86_64__)
                return outside_answer::outside;
#else
                // Where a return address may live in a register (aarch64's link register),
                // which /proc does not show, the stack alone cannot say no.
                return outside_answer::unknown;
#endif
            }
            if (!stack.complete && !reread) {
                read_readable_regions(regions);  // a stack mapped since
                reread = true;
                continue;
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) return outside_answer::unknown;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

// Whether thread `tid` blocks the probe signal right now (then it could not answer).
inline bool blocks_probe_signal(long tid) {
    std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("SigBlk:", 0) != 0) continue;
        const unsigned long long mask = std::strtoull(line.c_str() + 7, nullptr, 16);
        return ((mask >> (probe_signal - 1)) & 1U) != 0;
    }
    return false;
}

}  // namespace hazards

/// Describes the library behind `handle` (a dlopen handle). False when the dynamic loader does
/// not know it.
[[nodiscard]] inline bool describe_library(void* handle, library_image& out) {
    link_map* map = nullptr;
    if (handle == nullptr || ::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr)
        return false;
    out.name = map->l_name != nullptr ? map->l_name : "";
    out.base = map->l_addr;
    out.segments.clear();
    out.segments.reserve(8);  // a shared object has 4 or 5 PT_LOAD segments: one allocation
    out.code_begin = out.code_end = 0;
    struct search {
        library_image* image;
    } s{&out};
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            library_image& image = *static_cast<search*>(data)->image;
            if (info->dlpi_addr != image.base || info->dlpi_name == nullptr ||
                image.name != info->dlpi_name)
                return 0;
            for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& header = info->dlpi_phdr[i];
                if (header.p_type != PT_LOAD) continue;
                const std::uintptr_t begin = info->dlpi_addr + header.p_vaddr;
                const std::uintptr_t end = begin + header.p_memsz;
                const bool executable = (header.p_flags & PF_X) != 0;
                image.segments.push_back({begin, end});
                if (!executable) continue;
                if (image.code_begin == image.code_end) {
                    image.code_begin = begin;
                    image.code_end = end;
                } else {
                    image.code_begin = std::min(image.code_begin, begin);
                    image.code_end = std::max(image.code_end, end);
                }
            }
            return 1;
        },
        &s);
    out.registers_thread_local_destructors =
        hazards::imports_any(*map, {"__cxa_thread_atexit", "__cxa_thread_atexit_impl"});
    return !out.segments.empty();
}

/// Whether the library `image` describes is still mapped (same path, same load address).
[[nodiscard]] inline bool is_still_mapped(const library_image& image) noexcept {
    struct search {
        const library_image* image;
        bool found;
    } s{&image, false};
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto& wanted = *static_cast<search*>(data);
            if (info->dlpi_addr != wanted.image->base || info->dlpi_name == nullptr ||
                wanted.image->name != info->dlpi_name)
                return 0;
            wanted.found = true;
            return 1;
        },
        &s);
    return s.found;
}

/// Which threads of the process are running the code of a library.
struct thread_census {
    std::vector<long> inside;  ///< thread ids with a frame in the library (running or returning)
    /// Threads that could not answer the probe (they block SIGURG, or did not answer in time)
    /// and were running each time they were looked at from outside: they may be inside.
    std::vector<long> unknown;
    /// Threads that could not answer the probe and were looked at from outside instead, while
    /// they waited in the kernel (look_from_outside).
    std::size_t looked_at_from_outside = 0;
};

/// Asks every thread of the process (by SIGURG, see hazards::probe_signal) whether one of its
/// stack frames lies in `image`; the calling thread looks at its own stack (from `scan_from`
/// when the caller is the unload that marked it, see stack_may_touch). A thread that blocks
/// SIGURG, or does not answer within `patience`, is looked at from outside while it waits in the
/// kernel (look_from_outside), or else counted as unknown. A probed thread blocked in a system
/// call sees it interrupted (restarted where the kernel can: SA_RESTART). Not seen: a thread
/// created by the library that has not reached the library's code yet (it is still in the C
/// library's thread start).
[[nodiscard]] inline thread_census threads_inside(const library_image& image,
                                                  std::chrono::milliseconds patience,
                                                  std::uintptr_t scan_from = 0) {
    using namespace hazards;
    thread_census census;
    if (image.segments.empty()) return census;
    probe_state& state = probe();
    std::lock_guard lock(state.mutex);
    // The unwinder's first walk sets up what later walks reuse: never inside a signal handler.
    static const bool primed = [] {
        const library_image nothing;
        return unwinder_touches(nothing);
    }();
    (void)primed;

    if (this_thread_touches(image, scan_from)) census.inside.push_back(current_tid());
    // glibc's own flag: no thread was ever created, so there is none to enumerate or ask (and
    // the thread's id, a system call, is not needed either).
    if (__libc_single_threaded) return census;
    const long self = current_tid();
    const auto deadline = std::chrono::steady_clock::now() + patience;
    std::vector<long> silent;  // threads that cannot answer: looked at from outside below
    // After the probe's handlers have finished (or when none ran): they read state.regions.
    const auto look_at_silent_ones = [&] {
        if (silent.empty()) return;
        std::vector<memory_region> regions;
        read_readable_regions(regions);
        std::vector<std::uintptr_t> buffer;
        const signal_restorers restorers = read_signal_restorers();
        // At least a short while even when the answers used up the patience: a thread that
        // blocks SIGURG is seldom running, but one look may catch it between two waits.
        const auto until =
            std::max(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
        for (const long tid : silent) {
            switch (look_from_outside(image, tid, regions, until, buffer, restorers)) {
                case outside_answer::inside:
                    census.inside.push_back(tid);
                    break;
                case outside_answer::unknown:
                    census.unknown.push_back(tid);
                    break;
                case outside_answer::outside:
                    break;
            }
            ++census.looked_at_from_outside;
        }
    };
    std::size_t count = 0;
    for (const long tid : thread_ids()) {
        if (tid == self) continue;
        if (count == max_probed_threads || blocks_probe_signal(tid)) {
            silent.push_back(tid);
            continue;
        }
        state.slots[count].tid.store(tid);
        state.slots[count].answer.store(pending);
        ++count;
    }
    if (count == 0) {
        look_at_silent_ones();
        return census;
    }
    read_readable_regions(state.regions);
    state.count.store(count);
    state.image.store(&image);

    struct sigaction action {};
    action.sa_sigaction = &on_probe_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (::sigaction(probe_signal, &action, &state.previous) != 0) {
        state.image.store(nullptr);
        state.count.store(0);
        for (std::size_t i = 0; i < count; ++i) silent.push_back(state.slots[i].tid.load());
        look_at_silent_ones();
        return census;
    }
    const pid_t pid = ::getpid();
    for (std::size_t i = 0; i < count; ++i)
        if (::syscall(SYS_tgkill, pid, state.slots[i].tid.load(), probe_signal) != 0)
            state.slots[i].answer.store(outside);  // the thread has exited meanwhile

    for (;;) {
        bool all = true;
        for (std::size_t i = 0; i < count && all; ++i)
            all = state.slots[i].answer.load() != pending;
        if (all || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    ::sigaction(probe_signal, &state.previous, nullptr);
    // A handler that already read the image must finish before the image goes away.
    state.image.store(nullptr);
    while (state.running.load() != 0) std::this_thread::yield();
    for (std::size_t i = 0; i < count; ++i) {
        const int answer = state.slots[i].answer.load();
        if (answer == inside) census.inside.push_back(state.slots[i].tid.load());
        if (answer == pending) silent.push_back(state.slots[i].tid.load());
    }
    state.count.store(0);
    look_at_silent_ones();
    return census;
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
