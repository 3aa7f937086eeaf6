// SPDX-License-Identifier: MIT
/// @file detail/inotify.hpp
/// A thin owner of one inotify instance plus an eventfd that wakes its waiter (Linux only): add
/// and drop directory watches, wait for events with a timeout, read them as (watch, name, mask).
#pragma once

#include <polyplug/error.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

class inotify {
public:
    struct event {
        int watch = -1;  ///< the watch it belongs to (-1 for queue overflow)
        std::uint32_t mask = 0;
        std::string name;  ///< the entry inside the watched directory (empty for the directory)
    };

    inotify() = default;
    inotify(const inotify&) = delete;
    inotify& operator=(const inotify&) = delete;
    ~inotify() { close(); }

    /// Opens the instance; a failure names the system's reason (for example the per-user limit
    /// on inotify instances).
    [[nodiscard]] status open() {
        fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd_ < 0) return {errc::generic, "watch: inotify_init1 failed: " + errno_text()};
        wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_ < 0) {
            close();
            return {errc::generic, "watch: eventfd failed: " + errno_text()};
        }
        return {};
    }

    void close() noexcept {
        if (fd_ >= 0) ::close(fd_);
        if (wake_ >= 0) ::close(wake_);
        fd_ = wake_ = -1;
    }

    /// Watches directory `dir` for `mask`; returns the watch descriptor or an error.
    [[nodiscard]] status add(const std::filesystem::path& dir, std::uint32_t mask, int& watch) {
        watch = ::inotify_add_watch(fd_, dir.c_str(), mask | IN_ONLYDIR);
        if (watch < 0)
            return {errc::generic,
                    "watch: cannot watch '" + dir.string() + "': " + errno_text() +
                        (errno == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "")};
        return {};
    }

    void remove(int watch) noexcept { (void)::inotify_rm_watch(fd_, watch); }

    /// Makes a wait() in progress (or the next one) return at once.
    void wake() noexcept {
        const std::uint64_t one = 1;
        (void)!::write(wake_, &one, sizeof one);
    }

    /// Waits up to `timeout` (negative: forever) for events or a wake(). Returns the events read
    /// (possibly none). `woken` tells whether wake() was called.
    [[nodiscard]] std::vector<event> wait(std::chrono::milliseconds timeout, bool& woken) {
        woken = false;
        pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
        const int ready =
            ::poll(fds, 2, timeout.count() < 0 ? -1 : static_cast<int>(timeout.count()));
        std::vector<event> events;
        if (ready <= 0) return events;
        if ((fds[1].revents & POLLIN) != 0) {
            std::uint64_t count = 0;
            (void)!::read(wake_, &count, sizeof count);
            woken = true;
        }
        if ((fds[0].revents & POLLIN) != 0) read_events(events);
        return events;
    }

private:
    void read_events(std::vector<event>& events) {
        alignas(inotify_event) char buffer[16 * 1024];
        for (;;) {
            const ssize_t n = ::read(fd_, buffer, sizeof buffer);
            if (n <= 0) return;  // EAGAIN: drained
            for (ssize_t offset = 0; offset < n;) {
                inotify_event header;
                std::memcpy(&header, buffer + offset, sizeof header);
                event e;
                e.watch = header.wd;
                e.mask = header.mask;
                if (header.len > 0)
                    e.name.assign(buffer + offset + sizeof header,
                                  ::strnlen(buffer + offset + sizeof header, header.len));
                events.push_back(std::move(e));
                offset += static_cast<ssize_t>(sizeof header + header.len);
            }
        }
    }

    static std::string errno_text() { return std::strerror(errno); }

    int fd_ = -1;
    int wake_ = -1;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
