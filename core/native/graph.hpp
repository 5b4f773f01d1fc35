// Graph loops: the candidate lists of an exact kNN search, and over kNN results:
// connected components, non-chaining centre grouping, and neighbour label voting.
//
// All functions validate their inputs and throw std::invalid_argument (which
// the bindings surface as ValueError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vislint {

// The k best candidates of every one of n unit vectors, from blocks of their squared L2
// distances d (similarity 1 - d/2). The matrix is symmetric, so only its upper part is
// computed: a block covers rows [row0, row0 + rows) and columns [row0, n); each value
// counts for its row and, right of the block's square, for its column too. That halves
// the matrix products of a search for all the vectors' neighbours.
//
// Candidates are ranked by their similarity rounded to 2^-20 (kKeyScale), then by index:
// the rounding makes vectors that are exact copies tie exactly, whatever the last bits of
// the product that computed them, so which of many tied copies are kept depends only on
// their indices (not on the block size or thread count). A vector is its own candidate.
class KnnCandidates {
public:
    static constexpr float kKeyScale = 1048576.0f;  // 2^20
    KnnCandidates(std::size_t n, std::size_t k);
    // dist: rows x (n - row0) floats, row-major.
    void add_block(const float* dist, std::size_t rows, std::size_t row0, int threads);
    // out: n x k candidate indices, in no particular order; -1 where a row has fewer.
    void indices(std::int64_t* out) const;
    std::size_t n() const { return n_; }
    std::size_t k() const { return k_; }

private:
    // Offers vector j at distance d to row r's list.
    void offer(std::size_t r, float d, std::int64_t j);
    // Puts (key, j) in the place of row r's worst candidate.
    void replace_worst(std::size_t r, std::int32_t key, std::int64_t j);
    std::size_t n_, k_;
    std::vector<std::int32_t> key_;  // n x k, each row a heap, worst first; -1 = empty slot
    std::vector<std::int64_t> idx_;  // n x k, -1 = empty slot
    // each row's worst candidate (its heap's root): key and index
    std::vector<std::int32_t> worst_key_;
    std::vector<std::int64_t> worst_idx_;
    std::vector<float> bound_;  // distances above it cannot enter the row's list
};

// Inner products of pairs of rows: out[p] = a[ia[p]] . b[ib[p]] for p < n_pairs, a and b
// row-major with d columns (a_rows and b_rows rows: indices are checked). Each product is
// summed in one fixed order (8 float32 lanes, then the lanes in order), so it does not depend
// on the thread count or on which other pairs are computed with it.
void pair_dots(const float* a, std::size_t a_rows, const std::int64_t* ia, const float* b,
               std::size_t b_rows, const std::int64_t* ib, std::size_t n_pairs, std::size_t d,
               float* out, int threads);

// Connected components of n nodes over edges (i[e], j[e]), e < n_edges.
// Union-find with path halving and union by size. out[v] = the smallest node
// index in v's component.
void components(std::int64_t n, const std::int64_t* i, const std::int64_t* j,
                std::size_t n_edges, std::int64_t* out);

// Non-chaining grouping. neighbors/sims: n x k row-major (-1 = no neighbour;
// self ignored). An undirected edge (r, v) exists when v is in neighbors[r]
// or r in neighbors[v] with sim >= threshold (compared in float32). Nodes are
// visited in `order` (a permutation of 0..n-1); an unassigned node becomes a
// centre and takes every unassigned adjacent node. out[v] = centre index of
// v's group, or -1 for a centre left without members.
void center_groups(std::size_t n, std::size_t k, const std::int64_t* neighbors,
                   const float* sims, float threshold, const std::int64_t* order,
                   std::int64_t* out);

// Weighted neighbour vote over labels (see bindings for the full contract).
void label_tally(std::size_t n, std::size_t k, const std::int64_t* neighbors,
                 const float* sims, const std::int32_t* labels, std::int64_t n_labels,
                 float min_sim, std::int32_t* suggested, float* agreement, float* support,
                 int threads);

}  // namespace vislint
