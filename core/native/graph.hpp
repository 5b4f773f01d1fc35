// Graph loops over kNN results: connected components, non-chaining centre
// grouping, and neighbour label voting.
//
// All functions validate their inputs and throw std::invalid_argument (which
// the bindings surface as ValueError).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vislint {

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
