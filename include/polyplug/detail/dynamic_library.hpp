// SPDX-License-Identifier: MIT
/// @file detail/dynamic_library.hpp
/// One shared library opened with dlopen for the native loader, its failures turned into the
/// dynamic loader's own words, and its handle handed on when the runtime keeps the code mapped
/// past the loader (detail/unmap_scheduler.hpp).
///
/// dlopen is called directly: the runtime is Linux-only (the ELF check, inotify), every path it
/// opens names a file, and a wrapper's portable path handling cost more than the rest of a warm
/// load's native work (a path copy and a decomposition per open; see docs/PERFORMANCE.md).
#pragma once

#include <polyplug/config.hpp>

#include <dlfcn.h>

#include <string>
#include <utility>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// A library opened with RTLD_NOW | RTLD_LOCAL, closed when destroyed unless `release`d.
class dynamic_library {
public:
    dynamic_library() = default;
    dynamic_library(dynamic_library&& other) noexcept : handle_(other.release()) {}
    dynamic_library& operator=(dynamic_library&& other) noexcept {
        if (this != &other) {
            close();
            handle_ = other.release();
        }
        return *this;
    }
    dynamic_library(const dynamic_library&) = delete;
    dynamic_library& operator=(const dynamic_library&) = delete;
    ~dynamic_library() { close(); }

    /// Opens the file `path`. On failure returns false and the dynamic loader's message.
    [[nodiscard]] bool open(const std::string& path, std::string& message) {
        close();
        // A name without a slash would make dlopen search the library path: always a file.
        const std::string relative = path.find('/') == std::string::npos ? "./" + path : "";
        const char* file = relative.empty() ? path.c_str() : relative.c_str();
        // noexcept: a static constructor that throws must end the process here, by
        // std::terminate, and not unwind through the dynamic loader, which leaves it locked and
        // half-way through the open (later loads deadlock or crash). To contain such a library,
        // runtime_options::preflight_native_libraries opens it in a child process first.
        // glibc declares dlopen itself noexcept, so Clang drops the terminate handler of a direct
        // call and the exception unwinds on; through a volatile pointer of a type that may
        // throw, the handler stays (one load, next to nothing beside a dlopen).
        using open_fn = void* (*)(const char*, int);
        volatile open_fn open_library = &::dlopen;
        [&]() noexcept { handle_ = open_library(file, RTLD_NOW | RTLD_LOCAL); }();
        if (handle_ != nullptr) return true;
        const char* text = ::dlerror();
        message = text != nullptr ? text : "dlopen failed without a message";
        return false;
    }

    [[nodiscard]] bool is_open() const noexcept { return handle_ != nullptr; }

    /// Address of an exported symbol, or nullptr.
    [[nodiscard]] void* symbol(const char* name) const noexcept {
        return handle_ != nullptr ? ::dlsym(handle_, name) : nullptr;
    }

    template <class Fn>
    [[nodiscard]] Fn function(const char* name) const noexcept {
        return reinterpret_cast<Fn>(symbol(name));
    }

    /// Gives up the handle without closing it: the caller's dlclose is now the one that counts.
    [[nodiscard]] void* release() noexcept { return std::exchange(handle_, nullptr); }

    void close() noexcept {
        if (handle_ != nullptr) ::dlclose(std::exchange(handle_, nullptr));
    }

private:
    void* handle_ = nullptr;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
