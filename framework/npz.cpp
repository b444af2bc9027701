#include "framework/npz.hpp"

#include <array>
#include <cctype>
#include <cstring>
#include <functional>

#include "framework/errors.hpp"

namespace strata {

std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc) {
  // Slicing-by-8: table[k][b] is the CRC of byte b followed by k zero bytes, so eight
  // bytes are folded per step with independent lookups instead of a chain of eight
  // dependent ones (~5x faster on checkpoint-sized buffers; the same CRC).
  static const auto table = [] {
    std::array<std::array<std::uint32_t, 256>, 8> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (std::size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
    return t;
  }();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (; size >= 8; size -= 8, p += 8) {
    const std::uint32_t lo = crc ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                                    std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
    crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
          table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
  }
  for (; size > 0; --size, ++p) crc = table[0][(crc ^ *p) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

namespace {

void put16(std::string& out, std::uint32_t v) {
  out += char(v & 0xFF);
  out += char((v >> 8) & 0xFF);
}
void put32(std::string& out, std::uint32_t v) {
  put16(out, v & 0xFFFF);
  put16(out, v >> 16);
}
std::uint32_t get16(const std::string& s, std::size_t at) {
  return std::uint32_t(static_cast<unsigned char>(s[at])) |
         std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 8;
}
std::uint32_t get32(const std::string& s, std::size_t at) {
  return get16(s, at) | get16(s, at + 2) << 16;
}

std::string encode_npy(const NamedArray& array) {
  std::string shape = "(";
  for (std::size_t d : array.shape) shape += std::to_string(d) + ", ";
  if (array.shape.size() > 1)
    shape.resize(shape.size() - 2);
  else if (array.shape.size() == 1)
    shape.resize(shape.size() - 1);
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // Version 1.0: magic(6) + version(2) + header length(2) + header, padded to 64 bytes.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  put16(out, static_cast<std::uint32_t>(header.size()));
  out += header;
  out.append(reinterpret_cast<const char*>(array.data.data()), array.data.size() * sizeof(float));
  return out;
}

// The element types read_npy converts to float, by their numpy descr (little-endian).
struct NpyType {
  const char* descr;
  std::size_t size;
  float (*load)(const char*);
};
template <class V>
float load_as_float(const char* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return static_cast<float>(v);
}
constexpr NpyType kFloat32{"<f4", 4, load_as_float<float>};
constexpr NpyType kNpyTypes[] = {
    kFloat32,
    {"<f8", 8, load_as_float<double>},
    {"<i8", 8, load_as_float<std::int64_t>},
    {"<i4", 4, load_as_float<std::int32_t>},
    {"<i2", 2, load_as_float<std::int16_t>},
    {"|i1", 1, load_as_float<std::int8_t>},
    {"|u1", 1, load_as_float<std::uint8_t>},
    {"<u2", 2, load_as_float<std::uint16_t>},
    {"<u4", 4, load_as_float<std::uint32_t>},
    {"<u8", 8, load_as_float<std::uint64_t>},
};

// The element type a header's descr names (float32 only, unless `any_type`); null: none.
const NpyType* find_npy_type(const std::string& header, bool any_type) {
  for (const NpyType& t : kNpyTypes)
    if ((any_type || std::string_view(t.descr) == kFloat32.descr) &&
        header.find("'descr': '" + std::string(t.descr) + "'") != std::string::npos)
      return &t;
  return nullptr;
}

using NpyFail = std::function<Error(const std::string&)>;

// The header dict of an .npy file and the offset of the data that follows it.
struct NpyHeader {
  std::string text;
  std::size_t data_start;
};

NpyHeader read_npy_header(const std::string& bytes, const NpyFail& fail) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw fail("not an .npy array");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len, start;
  if (major == 1)
    header_len = get16(bytes, 8), start = 10;
  else if (major == 2 || major == 3)
    header_len = get32(bytes, 8), start = 12;
  else
    throw fail("unsupported .npy version " + std::to_string(major));
  if (start + header_len > bytes.size()) throw fail("truncated header");
  return {bytes.substr(start, header_len), start + header_len};
}

// Appends the dimensions of the header's shape tuple to `shape` and returns the
// element count, which may not pass the `available` elements present.
std::size_t parse_npy_shape(const std::string& header, std::size_t available,
                            std::vector<std::size_t>& shape, const NpyFail& fail) {
  const auto open = header.find('(', header.find("'shape'"));
  const auto close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) throw fail("no shape");
  // Dimensions are decimal integers; their product may not pass the bytes present
  // (checked as it grows, so a hostile shape cannot overflow it).
  std::size_t count = 1;
  bool empty = false;
  for (std::size_t i = open + 1; i < close;) {
    while (i < close && (header[i] == ' ' || header[i] == ',')) ++i;
    if (i >= close) break;
    if (!std::isdigit(static_cast<unsigned char>(header[i]))) throw fail("malformed shape");
    std::size_t d = 0;
    for (; i < close && std::isdigit(static_cast<unsigned char>(header[i])); ++i) {
      d = d * 10 + std::size_t(header[i] - '0');
      if (d > available && d > 0xFFFFFFFFu) throw fail("dimension too large for its data");
    }
    shape.push_back(d);
    if (d == 0)
      empty = true;
    else if (!empty && count > available / d)
      throw fail("shape too large for its data");
    else
      count *= d;
  }
  return empty ? 0 : count;
}

// `fail` words the error; with `any_type`, every type of kNpyTypes is converted to float.
NamedArray decode_npy(const std::string& bytes, const std::string& name, const NpyFail& fail,
                      bool any_type) {
  const NpyHeader npy = read_npy_header(bytes, fail);
  const std::string& header = npy.text;
  const std::size_t data_start = npy.data_start;
  const NpyType* type = find_npy_type(header, any_type);
  if (!type)
    throw fail(any_type ? "expected numbers (float32/64, or signed or unsigned integers of 1 to 8 "
                          "bytes, little-endian)"
                        : "expected float32 ('<f4') data");
  if (header.find("'fortran_order': False") == std::string::npos)
    throw fail("expected C order data");
  NamedArray array;
  array.name = name;
  const std::size_t available = (bytes.size() - data_start) / type->size;
  const std::size_t count = parse_npy_shape(header, available, array.shape, fail);
  if (bytes.size() - data_start != count * type->size)
    throw fail("holds " + std::to_string(bytes.size() - data_start) + " data bytes, expected " +
               std::to_string(count * type->size));
  array.data.resize(count);
  // Not for an empty array: memcpy from/to a null pointer is undefined even for 0 bytes
  // (found by fuzz_checkpoint).
  if (count > 0 && type == &kNpyTypes[0])
    std::memcpy(array.data.data(), bytes.data() + data_start, count * sizeof(float));
  else
    for (std::size_t i = 0; i < count; ++i)
      array.data[i] = type->load(bytes.data() + data_start + i * type->size);
  return array;
}

NamedArray decode_npy(const std::string& bytes, const std::string& name, const std::string& what) {
  return decode_npy(
      bytes, name,
      [&](const std::string& why) { return Error(what + ": member \"" + name + "\": " + why); },
      false);
}

}  // namespace

namespace {

// Writes an uncompressed zip archive member by member, so that only one member's
// payload exists besides the archive at any time.
class StoredZipWriter {
 public:
  explicit StoredZipWriter(std::size_t expected_bytes) { out_.reserve(expected_bytes); }

  void add(const std::string& member, const std::string& payload) {
    if (out_.size() > 0xFFFFFFF0u || payload.size() > 0xFFFFFFF0u)
      throw Error("checkpoint larger than 4 GiB: zip64 is not supported");
    const std::uint32_t crc = crc32(payload.data(), payload.size());
    const std::uint32_t offset = static_cast<std::uint32_t>(out_.size());
    // Local file header: stored (method 0), no data descriptor.
    put32(out_, 0x04034b50);
    put16(out_, 20), put16(out_, 0), put16(out_, 0), put16(out_, 0), put16(out_, 0x21);
    put32(out_, crc), put32(out_, std::uint32_t(payload.size())),
        put32(out_, std::uint32_t(payload.size()));
    put16(out_, std::uint32_t(member.size())), put16(out_, 0);
    out_ += member;
    out_ += payload;
    // Central directory entry.
    put32(directory_, 0x02014b50);
    put16(directory_, 20), put16(directory_, 20), put16(directory_, 0), put16(directory_, 0);
    put16(directory_, 0), put16(directory_, 0x21);
    put32(directory_, crc), put32(directory_, std::uint32_t(payload.size())),
        put32(directory_, std::uint32_t(payload.size()));
    put16(directory_, std::uint32_t(member.size())), put16(directory_, 0), put16(directory_, 0);
    put16(directory_, 0), put16(directory_, 0), put32(directory_, 0), put32(directory_, offset);
    directory_ += member;
    ++count_;
  }

  std::string finish() {
    const std::uint32_t directory_offset = static_cast<std::uint32_t>(out_.size());
    out_ += directory_;
    put32(out_, 0x06054b50);
    put16(out_, 0), put16(out_, 0);
    put16(out_, count_), put16(out_, count_);
    put32(out_, std::uint32_t(directory_.size())), put32(out_, directory_offset), put16(out_, 0);
    return std::move(out_);
  }

 private:
  std::string out_, directory_;
  std::uint32_t count_ = 0;
};

}  // namespace

std::string encode_npz(const std::vector<NamedArray>& arrays) {
  // Reserved up front: growing by doubling held up to twice the archive at once.
  std::size_t bytes = 22;
  for (const NamedArray& array : arrays)
    bytes += array.data.size() * sizeof(float) + 2 * array.name.size() + 256;
  StoredZipWriter zip(bytes);
  for (const NamedArray& array : arrays) zip.add(array.name + ".npy", encode_npy(array));
  return zip.finish();
}

std::string store_zip(const std::vector<std::pair<std::string, std::string>>& members) {
  std::size_t bytes = 22;
  for (const auto& [member, payload] : members) bytes += payload.size() + 2 * member.size() + 100;
  StoredZipWriter zip(bytes);
  for (const auto& [member, payload] : members) zip.add(member, payload);
  return zip.finish();
}

NamedArray read_npy(const std::string& bytes, const std::string& what) {
  return decode_npy(
      bytes, "", [&](const std::string& why) { return Error(what + ": " + why); }, true);
}

std::vector<NamedArray> decode_npz(const std::string& bytes, const std::string& what) {
  // The end-of-central-directory record is the last 22 bytes (we write no comment;
  // numpy writes none either), so search backwards a little for its signature.
  if (bytes.size() < 22) throw Error(what + ": truncated (not a zip archive)");
  std::size_t end = std::string::npos;
  for (std::size_t i = bytes.size() - 22 + 1; i-- > 0 && bytes.size() - i <= 22 + 65535;)
    if (get32(bytes, i) == 0x06054b50) {
      end = i;
      break;
    }
  if (end == std::string::npos) throw Error(what + ": truncated or not a zip archive");
  const std::size_t count = get16(bytes, end + 10);
  std::size_t at = get32(bytes, end + 16);
  std::vector<NamedArray> arrays;
  for (std::size_t n = 0; n < count; ++n) {
    if (at + 46 > bytes.size() || get32(bytes, at) != 0x02014b50)
      throw Error(what + ": corrupt zip directory");
    const std::uint32_t method = get16(bytes, at + 10);
    const std::uint32_t crc = get32(bytes, at + 16);
    const std::size_t size = get32(bytes, at + 20);
    const std::size_t name_len = get16(bytes, at + 28);
    const std::size_t extra_len = get16(bytes, at + 30), comment_len = get16(bytes, at + 32);
    const std::size_t local = get32(bytes, at + 42);
    std::string member = bytes.substr(at + 46, name_len);
    at += 46 + name_len + extra_len + comment_len;
    if (method != 0) throw Error(what + ": member " + member + " is compressed (unsupported)");
    if (local + 30 > bytes.size() || get32(bytes, local) != 0x04034b50)
      throw Error(what + ": corrupt member " + member);
    const std::size_t data = local + 30 + get16(bytes, local + 26) + get16(bytes, local + 28);
    if (data + size > bytes.size()) throw Error(what + ": member " + member + " is truncated");
    const std::string payload = bytes.substr(data, size);
    if (crc32(payload.data(), payload.size()) != crc)
      throw Error(what + ": member " + member + " fails its CRC-32 check (corrupted)");
    if (member.size() > 4 && member.compare(member.size() - 4, 4, ".npy") == 0)
      member.resize(member.size() - 4);
    arrays.push_back(decode_npy(payload, member, what));
  }
  return arrays;
}

}  // namespace strata
