// A tiny fork-join helper: run fn(i) for i in [0, n) on a few std::threads.
//
// Static chunking: worker w gets the contiguous range [n*w/t, n*(w+1)/t).
// The calling thread runs chunk 0 itself. If any fn(i) throws, the other
// workers stop at their next item and the first exception thrown (in time)
// is rethrown in the caller after every thread has joined.
//
// fn must compute each item independently (no cross-item reductions), so the
// results do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace vislint {

// Number of workers for a `threads` argument: 0 = hardware_concurrency()
// (at least 1); negative values are an error.
inline std::size_t resolve_threads(int threads) {
    if (threads < 0) {
        throw std::invalid_argument(
            "threads: expected an int >= 0 (0 = all hardware threads), got " +
            std::to_string(threads));
    }
    if (threads == 0) {
        const unsigned hw = std::thread::hardware_concurrency();
        return hw == 0 ? 1 : static_cast<std::size_t>(hw);
    }
    return static_cast<std::size_t>(threads);
}

template <class Fn>
void parallel_for(std::size_t n, int threads, Fn&& fn) {
    const std::size_t requested = resolve_threads(threads);
    if (n == 0) return;
    const std::size_t t = std::min(requested, n);
    if (t <= 1) {
        for (std::size_t i = 0; i < n; ++i) fn(i);
        return;
    }

    std::atomic<bool> failed{false};
    std::exception_ptr first_error;
    std::mutex error_mutex;

    auto run_chunk = [&](std::size_t w) {
        const std::size_t begin = n * w / t;
        const std::size_t end = n * (w + 1) / t;
        try {
            for (std::size_t i = begin; i < end; ++i) {
                if (failed.load(std::memory_order_relaxed)) return;
                fn(i);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!first_error) first_error = std::current_exception();
            failed.store(true, std::memory_order_relaxed);
        }
    };

    std::vector<std::thread> pool;
    pool.reserve(t - 1);
    try {
        for (std::size_t w = 1; w < t; ++w) pool.emplace_back(run_chunk, w);
    } catch (...) {
        // Could not start a thread: stop the ones already running, report.
        failed.store(true);
        for (auto& th : pool) th.join();
        throw;
    }
    run_chunk(0);
    for (auto& th : pool) th.join();
    if (first_error) std::rethrow_exception(first_error);
}

}  // namespace vislint
