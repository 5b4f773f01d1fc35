// BSON update statements from columns, for bulk writes of per-sample documents (the FiftyOne
// integration). pymongo would build a Python dict per sample and encode it: ~10 µs a sample,
// most of a 100k-sample write's client time. Here the bytes are written straight from the
// columns; pymongo sends them as they are (RawBSONDocument).
//
// BSON (bsonspec.org), the subset used: document = int32 size, elements, 0x00; element =
// type byte, field name (NUL-terminated), value: 0x01 double, 0x02 string (int32 size incl.
// NUL, UTF-8, NUL), 0x03 document, 0x04 array (a document keyed "0", "1", ...), 0x07
// ObjectId (12 bytes), 0x08 bool, 0x09 UTC datetime (int64 ms), 0x10 int32, 0x12 int64.
// Little-endian throughout. Integers are written as int32 when they fit, else int64, as
// pymongo writes Python ints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vislint::bson {

// Optional UTF-8 strings by row: row r is present[r] ? data[offsets[r] : offsets[r + 1]].
struct Strings {
    const std::uint8_t* present = nullptr;
    const std::int64_t* offsets = nullptr;
    const char* data = nullptr;
};

// Optional lists of strings by row: row r is present[r] ? items[starts[r] : starts[r + 1]].
struct StringLists {
    const std::uint8_t* present = nullptr;
    const std::int64_t* starts = nullptr;
    Strings items;  // every item present
};

enum class Kind { Double, Bool, Int, String, StringList };

// One field of the embedded document, by row. Left out of a row's document when it has no
// value there: a NaN double, a negative int, a string or list that is not present.
struct Column {
    std::string name;
    Kind kind = Kind::Double;
    const double* doubles = nullptr;
    const std::uint8_t* bools = nullptr;
    const std::int64_t* ints = nullptr;
    Strings strings;
    StringLists lists;
};

// For each sample j < n, appends to `out` the statement
//   {"q": {"_id": ObjectId(oids[12j : 12j + 12])},
//    "u": {"$set": {key: {"_cls": cls, <columns at row rows[j]>},
//                   "last_modified_at": datetime(now_ms), ["tags": tags of j]}}}
// (tags only where tags.present[j]; tags are by sample, the columns by row) and sets
// offsets[j] to where it starts; offsets[n] = the end. Throws std::invalid_argument for a
// field name holding a NUL byte.
void encode_set_updates(const std::string& key, const std::string& cls,
                        const std::vector<Column>& columns, const std::int64_t* rows,
                        std::int64_t n, const std::uint8_t* oids, std::int64_t now_ms,
                        const StringLists& tags, std::vector<char>& out, std::int64_t* offsets);

}  // namespace vislint::bson
