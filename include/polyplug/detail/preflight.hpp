// SPDX-License-Identifier: MIT
/// @file detail/preflight.hpp
/// Opens a native library once in a forked child process, so that a static constructor which
/// throws or aborts ends the child instead of the host
/// (runtime_options::preflight_native_libraries).
#pragma once

#include <polyplug/error.hpp>

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// A name for the signals a static constructor ends a process with.
[[nodiscard]] inline std::string signal_name(int sig) {
    switch (sig) {
        case SIGABRT:
            return "SIGABRT";
        case SIGSEGV:
            return "SIGSEGV";
        case SIGBUS:
            return "SIGBUS";
        case SIGILL:
            return "SIGILL";
        case SIGFPE:
            return "SIGFPE";
        case SIGKILL:
            return "SIGKILL";
        default:
            return "signal " + std::to_string(sig);
    }
}

// Writes one line to the pre-flight child's stderr (the parent's pipe).
inline void preflight_say(std::string_view line) noexcept {
    [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
    written = ::write(STDERR_FILENO, "\n", 1);
}

/// std::terminate in a pre-flight child: names what was thrown (on stderr), then aborts.
[[noreturn]] inline void preflight_terminate() noexcept {
    std::string text = "std::terminate called";
    try {
        if (const std::exception_ptr thrown = std::current_exception())
            std::rethrow_exception(thrown);
    } catch (const std::exception& e) {
        text += std::string(" after throwing: ") + e.what();
    } catch (...) {
        text += " after throwing a non-standard exception";
    }
    preflight_say(text);
    std::abort();
}

/// Forks; the child dlopens `library` (running its static constructors) and exits at once,
/// so no destructor or exit handler of the host runs twice. Refused (errc::library_load_failed,
/// message after `where`) when the child dies by a signal, an exception leaves dlopen, the child
/// exits from inside dlopen, or it takes longer than `limit`. A library dlopen itself refuses
/// passes: the real open reports that, with the loader's message.
///
/// Why a fork is safe enough here: glibc takes its malloc and stdio locks across fork and resets
/// the dynamic loader's lock in the child, and the child calls nothing but dlopen and exit.
[[nodiscard]] inline status preflight_open(const std::filesystem::path& library,
                                           const std::string& where,
                                           std::chrono::milliseconds limit) {
    const auto refuse = [&](const std::string& why) {
        return status{errc::library_load_failed,
                      where + "pre-flight of '" + library.string() + "': " + why};
    };
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return refuse(std::string("cannot create a pipe: ") + std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int error = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        return refuse(std::string("cannot fork: ") + std::strerror(error));
    }
    if (pid == 0) {
        // By the system call itself: not even a sanitizer's _exit interceptor runs in the child
        // (ThreadSanitizer's would fail it after an exception left its dlopen interceptor).
        const auto leave = [](int code) {
            ::syscall(SYS_exit_group, code);
            ::_exit(code);
        };
        // The child. Its stderr goes to the parent. The host's handlers for fatal signals and
        // for std::terminate are the host's business, not the child's (a crash reporter would
        // report the child): the defaults instead, and a terminate handler that says what was
        // thrown. An exception that does unwind out of dlopen is reported and the child exits at
        // once: it never returns into host code, and the dynamic loader's state no longer
        // matters.
        ::dup2(fds[1], STDERR_FILENO);
        for (const int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS})
            ::signal(sig, SIG_DFL);
        std::set_terminate(&preflight_terminate);
        // glibc declares dlopen noexcept, so a handler around a direct call could be compiled
        // away; through a volatile pointer of a type that may throw, it cannot.
        using open_fn = void* (*)(const char*, int);
        volatile open_fn open = &::dlopen;
        try {
            leave(open(library.c_str(), RTLD_NOW | RTLD_LOCAL) != nullptr ? 0 : 3);
        } catch (const std::exception& e) {
            preflight_say(e.what());
        } catch (...) {
            preflight_say("a non-standard exception");
        }
        leave(4);
    }
    ::close(fds[1]);

    // The child's last words (bounded), until it closes the pipe or the time is up.
    std::string output;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool timed_out = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd readable{fds[0], POLLIN, 0};
        const int ready = ::poll(&readable, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            timed_out = ready == 0;
            break;
        }
        char buffer[512];
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // end of file: the child has exited (or closed stderr)
        if (output.size() < 4096) output.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    if (timed_out) ::kill(pid, SIGKILL);
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
    const std::string said = output.empty() ? "" : " (it said: \"" + output + "\")";
    if (timed_out)
        return refuse("opening it in a child process did not finish within " +
                      std::to_string(limit.count()) + " ms");
    if (WIFSIGNALED(wstatus))
        return refuse("its static initialisation ended a child process with " +
                      signal_name(WTERMSIG(wstatus)) + said);
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 4)
        return refuse("its static initialisation threw an exception out of dlopen" + said);
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0 && WEXITSTATUS(wstatus) != 3)
        return refuse("its static initialisation exited a child process with code " +
                      std::to_string(WEXITSTATUS(wstatus)) + said);
    return {};
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
