// SPDX-License-Identifier: MIT
/// @file watcher.hpp
/// Watching plugin directories (Linux inotify): a bundle whose manifest or artifact changed is
/// reloaded, a bundle directory that appears is loaded. Changes are debounced, and only files that
/// were closed after writing or renamed into place count, so a file still being written is never
/// picked up. The runtime owns one watcher (`runtime::watch`); this header is its engine.
#pragma once

#include <polyplug/detail/inotify.hpp>
#include <polyplug/detail/logger.hpp>
#include <polyplug/error.hpp>
#include <polyplug/manifest.hpp>
#include <polyplug/runtime_options.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// The engine behind `runtime::watch`: inotify watches, debounce, and the decision to reload or
/// load. It acts through the callbacks it is given, so it knows nothing of the runtime.
class directory_watcher {
public:
    struct actions {
        std::function<bool(const std::filesystem::path&)> is_loaded;  ///< a bundle from this dir
        std::function<status(const std::filesystem::path&)> reload;
        std::function<status(const std::filesystem::path&)> load;
    };

    explicit directory_watcher(const detail::logger& log) : log_(log) {}
    directory_watcher(const directory_watcher&) = delete;
    directory_watcher& operator=(const directory_watcher&) = delete;
    ~directory_watcher() { stop(); }

    /// Starts watching `plugin_dirs` (directories whose subdirectories are bundles), replacing
    /// any earlier watch. What is there now is the baseline: only later changes are acted on.
    [[nodiscard]] status start(std::span<const std::filesystem::path> plugin_dirs,
                               const watch_options& options, actions act) {
        if (on_watcher_thread())
            return {errc::generic,
                    "watch: cannot restart the watch from its own thread (an "
                    "on_reload or log callback)"};
        stop();
        std::lock_guard<std::recursive_mutex> lock(mutex_);
        if (options.debounce.count() < 0)
            return {errc::generic, "watch: the debounce period must not be negative"};
        if (status st = inotify_.open(); !st) return st;
        options_ = options;
        actions_ = std::move(act);
        for (const std::filesystem::path& dir : plugin_dirs) {
            if (status st = watch_plugin_dir(dir); !st) {
                reset();
                return st;
            }
        }
        watching_ = true;
        stop_requested_ = false;
        if (options_.background_thread) {
            thread_ = std::thread([this] {
                thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
                run();
            });
        }
        log_.info("watch", "watching " + std::to_string(plugin_dirs_.size()) +
                               " plugin directories holding " + std::to_string(bundles_.size()) +
                               " bundle directories");
        return {};
    }

    /// Stops watching and joins the thread. From the watcher's own thread (an on_reload callback
    /// calling unwatch) it only asks the thread to finish; the join happens on the next start,
    /// stop or destruction from another thread.
    void stop() {
        stop_requested_ = true;
        if (thread_.joinable()) {
            if (on_watcher_thread()) return;
            inotify_.wake();
            thread_.join();
            thread_id_.store(std::thread::id(), std::memory_order_release);  // ids are reused
        }
        std::lock_guard<std::recursive_mutex> lock(mutex_);
        reset();
    }

    [[nodiscard]] bool on_watcher_thread() const noexcept {
        return thread_id_.load(std::memory_order_acquire) == std::this_thread::get_id();
    }

    [[nodiscard]] bool watching() const noexcept { return watching_; }
    [[nodiscard]] bool has_thread() const noexcept { return thread_.joinable(); }

    /// Manual mode: reads the changes that arrived and acts on bundles whose debounce period is
    /// over. Returns the number of bundles reloaded or loaded.
    std::size_t poll() {
        std::lock_guard<std::recursive_mutex> lock(mutex_);
        // Not from inside an action (an on_reload callback calling poll_watch): the outer call
        // is iterating the bundle directories.
        if (!watching_ || acting_) return 0;
        return process(std::chrono::milliseconds(0));
    }

    /// Bundle directories watched now (for diagnostics and tests).
    [[nodiscard]] std::size_t bundle_dirs() const {
        std::lock_guard<std::recursive_mutex> lock(mutex_);
        return bundles_.size();
    }

private:
    using clock = std::chrono::steady_clock;
    // Size, modification time and inode of the files that define a bundle's version.
    using fingerprint = std::vector<std::tuple<std::string, std::uintmax_t, std::int64_t, ino_t>>;

    struct bundle_dir {
        fingerprint seen;                      // as of the last action (or the watch's start)
        std::optional<clock::time_point> due;  // when a pending change settles
    };

    // Plugin directories: new subdirectories (created or moved in) are new bundles.
    static constexpr std::uint32_t plugin_dir_mask = IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF;
    // Bundle directories: only completed writes and renames count (not IN_MODIFY / IN_CREATE).
    static constexpr std::uint32_t bundle_dir_mask = IN_CLOSE_WRITE | IN_MOVED_TO;

    [[nodiscard]] status watch_plugin_dir(const std::filesystem::path& dir) {
        std::error_code ec;
        const std::filesystem::path absolute =
            std::filesystem::absolute(dir, ec).lexically_normal();
        if (ec || !std::filesystem::is_directory(absolute, ec))
            return {errc::generic,
                    "watch: '" + dir.string() + "' is not a directory (give plugin directories)"};
        int watch = -1;
        if (status st = inotify_.add(absolute, plugin_dir_mask, watch); !st) return st;
        plugin_dirs_[watch] = absolute;
        for (std::filesystem::directory_iterator it(absolute, ec), end; !ec && it != end;
             it.increment(ec)) {
            std::error_code type_ec;
            if (it->is_directory(type_ec)) (void)watch_bundle_dir(it->path(), /*is_new=*/false);
        }
        return {};
    }

    // Starts watching one bundle directory; a new one is due at once (its files may have been
    // written before the watch existed), an existing one is the baseline.
    bool watch_bundle_dir(const std::filesystem::path& dir, bool is_new) {
        int watch = -1;
        if (status st = inotify_.add(dir, bundle_dir_mask, watch); !st) {
            log_.warn("watch", st.message());
            return false;
        }
        bundle_watches_[watch] = dir;
        bundle_dir& entry = bundles_[dir];
        if (is_new) {
            entry.seen.clear();
            entry.due = clock::now() + options_.debounce;
        } else {
            entry.seen = fingerprint_of(dir);
        }
        return true;
    }

    // The thread: waits without the lock (so poll-free queries and stop() never wait on it),
    // then handles what arrived under the lock.
    void run() {
        while (!stop_requested_) {
            std::chrono::milliseconds timeout{};
            {
                std::lock_guard<std::recursive_mutex> lock(mutex_);
                timeout = time_to_next_due();
            }
            bool woken = false;
            std::vector<detail::inotify::event> events = inotify_.wait(timeout, woken);
            if (stop_requested_) break;
            std::lock_guard<std::recursive_mutex> lock(mutex_);
            for (const detail::inotify::event& e : events) handle(e);
            (void)act_on_settled();
        }
    }

    // -1 ms (wait until something happens) when nothing is pending.
    [[nodiscard]] std::chrono::milliseconds time_to_next_due() const {
        std::optional<clock::time_point> next;
        for (const auto& [dir, entry] : bundles_)
            if (entry.due && (!next || *entry.due < *next)) next = entry.due;
        if (!next) return std::chrono::milliseconds(-1);
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - clock::now());
        return left.count() < 0 ? std::chrono::milliseconds(0) : left;
    }

    std::size_t process(std::chrono::milliseconds wait) {
        bool woken = false;
        for (const detail::inotify::event& e : inotify_.wait(wait, woken)) handle(e);
        return act_on_settled();
    }

    void handle(const detail::inotify::event& e) {
        const clock::time_point due = clock::now() + options_.debounce;
        if ((e.mask & IN_Q_OVERFLOW) != 0) {  // events were lost: look at everything again
            log_.warn("watch", "inotify queue overflowed; re-checking every bundle directory");
            for (auto& [dir, entry] : bundles_) entry.due = due;
            return;
        }
        if (const auto it = plugin_dirs_.find(e.watch); it != plugin_dirs_.end()) {
            if ((e.mask & IN_DELETE_SELF) != 0)
                log_.warn("watch", "plugin directory '" + it->second.string() + "' was deleted");
            else if ((e.mask & IN_ISDIR) != 0 && !e.name.empty())
                (void)watch_bundle_dir(it->second / e.name, /*is_new=*/true);
            if ((e.mask & IN_IGNORED) != 0) plugin_dirs_.erase(it);
            return;
        }
        const auto it = bundle_watches_.find(e.watch);
        if (it == bundle_watches_.end()) return;
        if ((e.mask & IN_IGNORED) != 0) {  // the directory is gone (or was replaced)
            bundles_.erase(it->second);
            bundle_watches_.erase(it);
            return;
        }
        bundles_[it->second].due = due;
    }

    // Acts on every bundle directory whose last change is older than the debounce period and
    // whose defining files really changed. Returns how many were reloaded or loaded.
    std::size_t act_on_settled() {
        acting_ = true;
        struct clear_on_exit {
            bool& flag;
            ~clear_on_exit() { flag = false; }
        } clear{acting_};
        const clock::time_point now = clock::now();
        std::vector<std::filesystem::path> to_load;
        std::size_t acted = 0;
        for (auto& [dir, entry] : bundles_) {
            if (!entry.due || *entry.due > now) continue;
            entry.due.reset();
            fingerprint current = fingerprint_of(dir);
            if (current == entry.seen) continue;  // e.g. a temporary file closed, nothing else
            entry.seen = std::move(current);
            std::error_code ec;
            if (!std::filesystem::exists(dir / "manifest.toml", ec)) continue;  // not a bundle yet
            if (actions_.is_loaded(dir)) {
                const status st = actions_.reload(dir);
                if (st) {
                    ++acted;
                    log_.info("watch", "reloaded the bundle in '" + dir.string() + "'");
                } else {
                    log_.warn("watch",
                              "reload of the bundle in '" + dir.string() +
                                  "' failed; the old version keeps serving: " + st.message());
                }
            } else {
                to_load.push_back(dir);
            }
        }
        return acted + load_new(to_load);
    }

    // New bundles may depend on each other: load in passes until one makes no progress.
    std::size_t load_new(std::vector<std::filesystem::path> pending) {
        std::size_t loaded = 0;
        std::vector<std::string> failures;
        for (bool progress = true; progress && !pending.empty();) {
            progress = false;
            failures.clear();
            for (auto it = pending.begin(); it != pending.end();) {
                const status st = actions_.load(*it);
                if (st) {
                    log_.info("watch", "loaded the new bundle in '" + it->string() + "'");
                    it = pending.erase(it);
                    ++loaded;
                    progress = true;
                } else {
                    failures.push_back(st.message());
                    ++it;
                }
            }
        }
        for (const std::string& failure : failures)
            log_.warn("watch", "a new bundle was not loaded: " + failure);
        return loaded;
    }

    // manifest.toml and the artifact it names; every regular file when the manifest cannot be
    // read (so that fixing it, or adding the artifact, still counts as a change).
    static fingerprint fingerprint_of(const std::filesystem::path& dir) {
        fingerprint result;
        std::vector<std::filesystem::path> files;
        manifest m;
        if (read_manifest(dir, m)) {
            files = {dir / "manifest.toml", dir / m.file};
        } else {
            std::error_code ec;
            for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
                 it.increment(ec))
                files.push_back(it->path());
            std::sort(files.begin(), files.end());
        }
        for (const std::filesystem::path& file : files) {
            struct stat info {};
            if (::stat(file.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
            const std::int64_t mtime_ns =
                std::int64_t{info.st_mtim.tv_sec} * 1'000'000'000 + info.st_mtim.tv_nsec;
            result.emplace_back(file.filename().string(), static_cast<std::uintmax_t>(info.st_size),
                                mtime_ns, info.st_ino);
        }
        return result;
    }

    void reset() {
        inotify_.close();
        plugin_dirs_.clear();
        bundle_watches_.clear();
        bundles_.clear();
        watching_ = false;
    }

    const detail::logger& log_;
    // Guards everything below but the thread handle and the flags. Recursive: actions run under
    // it and fire on_reload and log callbacks, which may ask bundle_dirs() on the same thread.
    mutable std::recursive_mutex mutex_;
    detail::inotify inotify_;
    watch_options options_;
    actions actions_;
    std::map<int, std::filesystem::path> plugin_dirs_;     // watch -> plugin directory
    std::map<int, std::filesystem::path> bundle_watches_;  // watch -> bundle directory
    std::map<std::filesystem::path, bundle_dir> bundles_;
    bool acting_ = false;  // act_on_settled is running (on the thread holding mutex_)
    std::atomic<bool> watching_{false};
    std::atomic<bool> stop_requested_{false};
    std::thread thread_;
    // Set by the thread itself, so that a callback running on it can tell (stop, start).
    std::atomic<std::thread::id> thread_id_{};
};

POLYPLUG_END_NAMESPACE
