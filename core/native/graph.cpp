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

// The rank key of a squared L2 distance between unit vectors: (similarity + 1) * 2^20,
// rounded, >= 0 (NaN -> 0); a non-increasing function of d.
inline std::int32_t rank_key(float d) {
    const float v = (2.0f - 0.5f * d) * KnnCandidates::kKeyScale + 0.5f;
    return v > 0.0f ? static_cast<std::int32_t>(v) : 0;
}

}  // namespace

KnnCandidates::KnnCandidates(std::size_t n, std::size_t k)
    : n_(n), k_(k), key_(n * k, -1), idx_(n * k, -1), worst_key_(n, -1), worst_idx_(n, -1),
      bound_(n, std::numeric_limits<float>::infinity()) {
    if (k == 0) throw std::invalid_argument("k: expected >= 1, got 0");
}

void KnnCandidates::replace_worst(std::size_t r, std::int32_t key, std::int64_t j) {
    // Each row's list is a heap with its worst candidate first (lowest key, then highest
    // index; empty slots, key -1, are the worst of all): the new candidate takes the root's
    // place and sinks, O(log k) where a scan for the new worst took O(k).
    std::int32_t* keys = key_.data() + r * k_;
    std::int64_t* idx = idx_.data() + r * k_;
    const auto worse = [&](std::size_t a, std::size_t b) {
        return keys[a] < keys[b] || (keys[a] == keys[b] && idx[a] > idx[b]);
    };
    keys[0] = key;
    idx[0] = j;
    for (std::size_t i = 0;;) {
        std::size_t w = i;
        const std::size_t left = 2 * i + 1, right = left + 1;
        if (left < k_ && worse(left, w)) w = left;
        if (right < k_ && worse(right, w)) w = right;
        if (w == i) break;
        std::swap(keys[i], keys[w]);
        std::swap(idx[i], idx[w]);
        i = w;
    }
    worst_key_[r] = keys[0];
    worst_idx_[r] = idx[0];
    // rank_key(d) >= key needs (2 - d / 2) S + 1/2 >= key, d <= 4 - (2 key - 1) / S; the
    // margin covers the float rounding of both sides
    bound_[r] = keys[0] < 0 ? std::numeric_limits<float>::infinity()
                            : 4.0f - (2.0f * static_cast<float>(keys[0]) - 1.0f) / kKeyScale +
                                  1e-5f;
}

// Offers (key, j) to row r.
inline void KnnCandidates::offer(std::size_t r, float d, std::int64_t j) {
    const std::int32_t key = rank_key(d);
    if (key > worst_key_[r] || (key == worst_key_[r] && j < worst_idx_[r]))
        replace_worst(r, key, j);
}

void KnnCandidates::add_block(const float* dist, std::size_t rows, std::size_t row0,
                              int threads) {
    if (row0 + rows > n_)
        throw std::invalid_argument("block: rows " + std::to_string(row0) + ".." +
                                    std::to_string(row0 + rows) + " exceed n = " +
                                    std::to_string(n_));
    const std::size_t cols = n_ - row0;
    // Most values are no candidate: they are skipped 16 at a time by comparing them with
    // the distance bound of the lists they are offered to (a loop the compiler vectorises).
    constexpr std::size_t kRun = 16;
    // Each row of the block takes every column; each column right of the block's square
    // takes every row of the block. The two touch different rows' lists.
    parallel_for(rows, threads, [&](std::size_t r) {
        const float* d = dist + r * cols;
        const std::size_t row = row0 + r;
        for (std::size_t c0 = 0; c0 < cols; c0 += kRun) {
            const std::size_t c1 = std::min(cols, c0 + kRun);
            const float bound = bound_[row];
            bool any = false;
            for (std::size_t c = c0; c < c1; ++c) any |= d[c] <= bound;
            if (!any) continue;
            for (std::size_t c = c0; c < c1; ++c) offer(row, d[c], static_cast<std::int64_t>(row0 + c));
        }
    });
    constexpr std::size_t kChunk = 256;  // columns per task of the second pass
    const std::size_t chunks = (cols - rows + kChunk - 1) / kChunk;
    parallel_for(chunks, threads, [&](std::size_t q) {
        const std::size_t c0 = rows + q * kChunk, c1 = std::min(cols, c0 + kChunk);
        const float* bound = bound_.data() + row0;
        for (std::size_t r = 0; r < rows; ++r) {
            const float* d = dist + r * cols;
            const auto j = static_cast<std::int64_t>(row0 + r);
            for (std::size_t a = c0; a < c1; a += kRun) {
                const std::size_t b = std::min(c1, a + kRun);
                bool any = false;
                for (std::size_t c = a; c < b; ++c) any |= d[c] <= bound[c];
                if (!any) continue;
                for (std::size_t c = a; c < b; ++c) offer(row0 + c, d[c], j);
            }
        }
    });
}

void KnnCandidates::indices(std::int64_t* out) const {
    std::copy(idx_.begin(), idx_.end(), out);
}

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

void pair_dots(const float* a, std::size_t a_rows, const std::int64_t* ia, const float* b,
               std::size_t b_rows, const std::int64_t* ib, std::size_t n_pairs, std::size_t d,
               float* out, int threads) {
    for (std::size_t p = 0; p < n_pairs; ++p) {
        if (ia[p] < 0 || static_cast<std::size_t>(ia[p]) >= a_rows || ib[p] < 0 ||
            static_cast<std::size_t>(ib[p]) >= b_rows)
            throw std::invalid_argument("pair_dots: pair " + std::to_string(p) +
                                        " names a row out of range");
    }
    constexpr std::size_t kLanes = 8;
    const std::size_t body = d - d % kLanes;
    parallel_for(n_pairs, threads, [&](std::size_t p) {
        const float* x = a + static_cast<std::size_t>(ia[p]) * d;
        const float* y = b + static_cast<std::size_t>(ib[p]) * d;
        float lane[kLanes] = {};
        for (std::size_t j = 0; j < body; j += kLanes)
            for (std::size_t l = 0; l < kLanes; ++l) lane[l] += x[j + l] * y[j + l];
        float sum = 0.0f;
        for (std::size_t l = 0; l < kLanes; ++l) sum += lane[l];
        for (std::size_t j = body; j < d; ++j) sum += x[j] * y[j];
        out[p] = sum;
    });
}

}  // namespace vislint
