// SPDX-License-Identifier: MIT
/// @file detail/boost_dll.hpp
/// The only include of Boost.DLL: opens shared libraries for the native loader and turns its
/// failures into messages a person can act on. No Boost type leaves this file.
#pragma once

#include <polyplug/config.hpp>

// With this macro Boost.DLL speaks std::filesystem and std::error_code and needs no Boost library
// at link time. It must be seen before Boost.DLL's own config header.
#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS
#endif
#if defined(BOOST_DLL_DETAIL_CONFIG_HPP) || defined(BOOST_DLL_CONFIG_HPP)
#if !defined(BOOST_DLL_USE_STD_FS)
#error "Boost.DLL was included before polyplug without BOOST_DLL_USE_STD_FS"
#endif
#endif

#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// One opened shared library (RTLD_NOW | RTLD_LOCAL), closed when destroyed.
class shared_library {
public:
    shared_library() = default;

    /// Opens `path`. On failure returns false and a message from the dynamic loader.
    [[nodiscard]] bool open(const std::filesystem::path& path, std::string& message) {
        std::error_code ec;
        // noexcept: a static constructor that throws must end the process here, by
        // std::terminate, and not unwind through the dynamic loader, which leaves it locked and
        // half-way through the open (later loads deadlock or crash). To contain such a library,
        // runtime_options::preflight_native_libraries opens it in a child process first.
        [&]() noexcept {
            library_.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local,
                          ec);
        }();
        if (!ec) return true;
        message = diagnose(path, ec);
        return false;
    }

    [[nodiscard]] bool is_open() const noexcept { return library_.is_loaded(); }

    /// Address of an exported symbol, or nullptr. One dlsym on the library's own handle:
    /// Boost.DLL's has() + get() would look the symbol up twice.
    [[nodiscard]] void* symbol(const char* name) const noexcept {
        if (!library_.is_loaded()) return nullptr;
        return ::dlsym(library_.native(), name);
    }

    template <class Fn>
    [[nodiscard]] Fn function(const char* name) const noexcept {
        return reinterpret_cast<Fn>(symbol(name));
    }

    void close() noexcept { library_.unload(); }

private:
    // Boost.DLL 1.74 clears dlerror() before reporting, so its error_code carries no text
    // (Boost.DLL issue #38). Ask the dynamic loader once more, just for its diagnosis.
    static std::string diagnose(const std::filesystem::path& path, const std::error_code& ec) {
        void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle != nullptr) {
            ::dlclose(handle);
            return ec.message();
        }
        const char* text = ::dlerror();
        return text != nullptr ? std::string(text) : ec.message();
    }

    boost::dll::shared_library library_;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
