#include "graph.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "parallel.hpp"

namespace vislint {

namespace {

std::int64_t find_root(std::vector<std::int64_t>& parent, std::int64_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];  // path halving
        x = parent[x];
    }
    return x;
}

// Throws unless every neighbour index is -1 or in [0, n).
void check_neighbors(std::size_t n, std::size_t k, const std::int64_t* neighbors) {
    const auto limit = static_cast<std::int64_t>(n);
    for (std::size_t idx = 0; idx < n * k; ++idx) {
        const std::int64_t v = neighbors[idx];
        if (v < -1 || v >= limit) {
            throw std::invalid_argument(
                "neighbors: expected indices in [0, " + std::to_string(n) +
                ") or -1 for none, got " + std::to_string(v) + " at row " +
                std::to_string(idx / k) + ", column " + std::to_string(idx % k));
        }
    }
}

}  // namespace

void components(std::int64_t n, const std::int64_t* i, const std::int64_t* j,
                std::size_t n_edges, std::int64_t* out) {
    if (n < 0) throw std::invalid_argument("n: expected >= 0, got " + std::to_string(n));
    for (std::size_t e = 0; e < n_edges; ++e) {
        if (i[e] < 0 || i[e] >= n || j[e] < 0 || j[e] >= n) {
            throw std::invalid_argument(
                "edges: expected node indices in [0, " + std::to_string(n) + "), got (" +
                std::to_string(i[e]) + ", " + std::to_string(j[e]) + ") at edge " +
                std::to_string(e));
        }
    }
    const auto N = static_cast<std::size_t>(n);
    std::vector<std::int64_t> parent(N), size(N, 1);
    for (std::size_t v = 0; v < N; ++v) parent[v] = static_cast<std::int64_t>(v);
    for (std::size_t e = 0; e < n_edges; ++e) {
        std::int64_t a = find_root(parent, i[e]);
        std::int64_t b = find_root(parent, j[e]);
        if (a == b) continue;
        if (size[a] < size[b]) std::swap(a, b);
        parent[b] = a;
        size[a] += size[b];
    }
    // Label = smallest member: the first node (in index order) seen per root.
    std::vector<std::int64_t> label_of_root(N, -1);
    for (std::size_t v = 0; v < N; ++v) {
        const std::int64_t r = find_root(parent, static_cast<std::int64_t>(v));
        if (label_of_root[r] < 0) label_of_root[r] = static_cast<std::int64_t>(v);
        out[v] = label_of_root[r];
    }
}

void center_groups(std::size_t n, std::size_t k, const std::int64_t* neighbors,
                   const float* sims, float threshold, const std::int64_t* order,
                   std::int64_t* out) {
    check_neighbors(n, k, neighbors);
    std::vector<char> seen(n, 0);
    for (std::size_t p = 0; p < n; ++p) {
        const std::int64_t v = order[p];
        if (v < 0 || v >= static_cast<std::int64_t>(n) || seen[v]) {
            throw std::invalid_argument(
                "order: expected a permutation of 0.." + std::to_string(n) + "-1, got " +
                (v < 0 || v >= static_cast<std::int64_t>(n) ? "out-of-range value "
                                                             : "repeated value ") +
                std::to_string(v) + " at position " + std::to_string(p));
        }
        seen[v] = 1;
    }

    // Symmetric adjacency of edges with sim >= threshold, sorted, unique.
    std::vector<std::vector<std::int64_t>> adj(n);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < k; ++c) {
            const std::int64_t v = neighbors[r * k + c];
            if (v < 0 || v == static_cast<std::int64_t>(r)) continue;
            if (!(sims[r * k + c] >= threshold)) continue;
            adj[r].push_back(v);
            adj[v].push_back(static_cast<std::int64_t>(r));
        }
    for (auto& a : adj) {
        std::sort(a.begin(), a.end());
        a.erase(std::unique(a.begin(), a.end()), a.end());
    }

    constexpr std::int64_t unassigned = std::numeric_limits<std::int64_t>::min();
    std::fill(out, out + n, unassigned);
    for (std::size_t p = 0; p < n; ++p) {
        const std::int64_t centre = order[p];
        if (out[centre] != unassigned) continue;
        out[centre] = centre;
        std::size_t members = 0;
        for (std::int64_t v : adj[centre]) {
            if (out[v] != unassigned) continue;
            out[v] = centre;
            ++members;
        }
        if (members == 0) out[centre] = -1;
    }
}

void label_tally(std::size_t n, std::size_t k, const std::int64_t* neighbors,
                 const float* sims, const std::int32_t* labels, std::int64_t n_labels,
                 float min_sim, std::int32_t* suggested, float* agreement, float* support,
                 int threads) {
    if (n_labels < 0)
        throw std::invalid_argument("n_labels: expected >= 0, got " + std::to_string(n_labels));
    check_neighbors(n, k, neighbors);
    for (std::size_t r = 0; r < n; ++r) {
        if (labels[r] >= n_labels) {
            throw std::invalid_argument(
                "labels: expected values < n_labels=" + std::to_string(n_labels) +
                " (negative = unlabelled), got " + std::to_string(labels[r]) + " at index " +
                std::to_string(r));
        }
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    parallel_for(n, threads, [&](std::size_t r) {
        std::vector<std::pair<std::int32_t, double>> votes;
        votes.reserve(k);
        double total = 0.0;
        for (std::size_t c = 0; c < k; ++c) {
            const std::int64_t v = neighbors[r * k + c];
            if (v < 0 || v == static_cast<std::int64_t>(r)) continue;
            const std::int32_t lab = labels[v];
            if (lab < 0) continue;
            const float s = sims[r * k + c];
            if (!(s >= min_sim)) continue;
            const double w = std::max(static_cast<double>(s), 0.0);
            votes.emplace_back(lab, w);
            total += w;
        }
        // Sum per label in neighbour order (stable sort keeps it).
        std::stable_sort(votes.begin(), votes.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        std::int32_t best = -1;
        double best_w = 0.0, own_w = 0.0;
        for (std::size_t a = 0; a < votes.size();) {
            const std::int32_t lab = votes[a].first;
            double w = 0.0;
            for (; a < votes.size() && votes[a].first == lab; ++a) w += votes[a].second;
            if (w > best_w) {  // strict: ties keep the smaller label
                best_w = w;
                best = lab;
            }
            if (lab == labels[r]) own_w = w;
        }
        support[r] = static_cast<float>(total);
        if (total > 0.0) {
            suggested[r] = best;
            agreement[r] = labels[r] >= 0 ? static_cast<float>(own_w / total) : nan;
        } else {
            suggested[r] = -1;
            agreement[r] = nan;
        }
    });
}

}  // namespace vislint
