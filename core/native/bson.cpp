#include "bson.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bson.cpp writes numbers in the machine's byte order, which BSON requires to be little-endian"
#endif

namespace vislint::bson {
namespace {

class Writer {
public:
    explicit Writer(std::vector<char>& out) : out_(out) {}

    // Opens a document (or array); returns its start for end().
    std::size_t begin() {
        std::size_t at = out_.size();
        int32(0);  // size, patched by end()
        return at;
    }
    void end(std::size_t at) {
        out_.push_back('\0');
        std::int32_t size = static_cast<std::int32_t>(out_.size() - at);
        std::memcpy(out_.data() + at, &size, 4);
    }
    std::size_t document(const char* name, std::size_t len) { return open(0x03, name, len); }
    std::size_t array(const char* name, std::size_t len) { return open(0x04, name, len); }

    void double_(const char* name, std::size_t len, double v) {
        head(0x01, name, len);
        raw(&v, 8);
    }
    void string(const char* name, std::size_t len, const char* s, std::size_t n) {
        head(0x02, name, len);
        int32(static_cast<std::int32_t>(n + 1));
        raw(s, n);
        out_.push_back('\0');
    }
    void object_id(const char* name, std::size_t len, const std::uint8_t* oid) {
        head(0x07, name, len);
        raw(oid, 12);
    }
    void bool_(const char* name, std::size_t len, bool v) {
        head(0x08, name, len);
        out_.push_back(v ? 1 : 0);
    }
    void datetime(const char* name, std::size_t len, std::int64_t ms) {
        head(0x09, name, len);
        raw(&ms, 8);
    }
    void integer(const char* name, std::size_t len, std::int64_t v) {
        if (v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max()) {
            head(0x10, name, len);
            int32(static_cast<std::int32_t>(v));
        } else {
            head(0x12, name, len);
            raw(&v, 8);
        }
    }
    void strings(const char* name, std::size_t len, const StringLists& lists, std::int64_t r) {
        std::size_t at = array(name, len);
        char index[24];
        for (std::int64_t k = lists.starts[r]; k < lists.starts[r + 1]; ++k) {
            int n = std::snprintf(index, sizeof index, "%lld",
                                  static_cast<long long>(k - lists.starts[r]));
            const std::int64_t* o = lists.items.offsets;
            string(index, static_cast<std::size_t>(n), lists.items.data + o[k],
                   static_cast<std::size_t>(o[k + 1] - o[k]));
        }
        end(at);
    }

private:
    std::size_t open(char type, const char* name, std::size_t len) {
        head(type, name, len);
        return begin();
    }
    void head(char type, const char* name, std::size_t len) {
        out_.push_back(type);
        raw(name, len);
        out_.push_back('\0');
    }
    void int32(std::int32_t v) { raw(&v, 4); }
    void raw(const void* p, std::size_t n) {
        const char* c = static_cast<const char*>(p);
        out_.insert(out_.end(), c, c + n);
    }

    std::vector<char>& out_;
};

#define NAME(s) s, sizeof(s) - 1

void check_name(const std::string& name) {
    if (name.find('\0') != std::string::npos)
        throw std::invalid_argument("a BSON field name cannot hold a NUL byte");
}

}  // namespace

void encode_set_updates(const std::string& key, const std::string& cls,
                        const std::vector<Column>& columns, const std::int64_t* rows,
                        std::int64_t n, const std::uint8_t* oids, std::int64_t now_ms,
                        const StringLists& tags, std::vector<char>& out, std::int64_t* offsets) {
    check_name(key);
    for (const Column& c : columns) check_name(c.name);
    Writer w(out);
    for (std::int64_t j = 0; j < n; ++j) {
        offsets[j] = static_cast<std::int64_t>(out.size());
        const std::int64_t r = rows[j];
        std::size_t stmt = w.begin();
        std::size_t q = w.document(NAME("q"));
        w.object_id(NAME("_id"), oids + 12 * j);
        w.end(q);
        std::size_t u = w.document(NAME("u"));
        std::size_t set = w.document(NAME("$set"));
        std::size_t doc = w.document(key.data(), key.size());
        w.string(NAME("_cls"), cls.data(), cls.size());
        for (const Column& c : columns) {
            const char* name = c.name.data();
            const std::size_t len = c.name.size();
            switch (c.kind) {
                case Kind::Double:
                    if (!std::isnan(c.doubles[r])) w.double_(name, len, c.doubles[r]);
                    break;
                case Kind::Bool:
                    w.bool_(name, len, c.bools[r] != 0);
                    break;
                case Kind::Int:
                    if (c.ints[r] >= 0) w.integer(name, len, c.ints[r]);
                    break;
                case Kind::String:
                    if (c.strings.present[r]) {
                        const std::int64_t* o = c.strings.offsets;
                        w.string(name, len, c.strings.data + o[r], static_cast<std::size_t>(o[r + 1] - o[r]));
                    }
                    break;
                case Kind::StringList:
                    if (c.lists.present[r]) w.strings(name, len, c.lists, r);
                    break;
            }
        }
        w.end(doc);
        w.datetime(NAME("last_modified_at"), now_ms);
        if (tags.present[j]) w.strings(NAME("tags"), tags, j);
        w.end(set);
        w.end(u);
        w.end(stmt);
    }
    offsets[n] = static_cast<std::int64_t>(out.size());
}

}  // namespace vislint::bson
