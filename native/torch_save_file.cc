#include "torch_save_file.h"

#include <cstdio>
#include <cstring>
#include <limits>

// miniz's inflater, which LibTorch carries for its own zip reader and exports (every LibTorch in the
// supported range): raw deflate from one buffer into another, never past out_buf_len; (size_t)-1 when the
// stream is bad or would need more room.
extern "C" size_t tinfl_decompress_mem_to_mem(void* pOut_buf, size_t out_buf_len, const void* pSrc_buf, size_t src_buf_len, int flags);

namespace ltg {

std::string describeBytes(uint64_t n) {
  static const char* const kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < 1024) return std::to_string(n) + (n == 1 ? " byte" : " bytes");
  double v = double(n);
  int u = 0;
  for (; v >= 1024 && u < 6; ++u) v /= 1024;
  char buf[32];
  std::snprintf(buf, sizeof(buf), v < 10 ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
  return buf;
}

void Budget::charge(uint64_t n, const std::string& what) {
  if (n > max_ - used_)
    throw FileFormatError(what + " would take the memory read so far (" + describeBytes(used_) + ") past maxBytes (" + describeBytes(max_) +
                          "); a file you trust may be given a larger maxBytes");
  used_ += n;
}

namespace {
constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEnd = 0x06054b50, kEnd64 = 0x06064b50,
                   kEnd64Locator = 0x07064b50;
constexpr size_t kEndSize = 22, kEnd64Size = 56, kLocatorSize = 20, kCentralSize = 46, kLocalSize = 30;

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

[[noreturn]] void bad(const std::string& msg) { throw FileFormatError("not a torch.save file (" + msg + ")"); }

// [offset, offset + n) lies within a file of `size` bytes (no overflow).
bool within(uint64_t offset, uint64_t n, uint64_t size) { return offset <= size && n <= size - offset; }
}  // namespace

ZipArchive::ZipArchive(const uint8_t* data, size_t size) : data_(data), size_(size) {
  // The end of central directory record: the last one, within the 64 KiB a comment may take.
  if (size < kEndSize) bad("not a zip archive: " + describeBytes(size) + " is shorter than a zip's end record");
  size_t end = std::string::npos;
  size_t lowest = size - kEndSize > 0xffff ? size - kEndSize - 0xffff : 0;
  for (size_t at = size - kEndSize + 1; at-- > lowest;)
    if (le(data + at, 4) == kEnd) {
      end = at;
      break;
    }
  if (end == std::string::npos) bad("not a zip archive: no end of central directory record");
  const uint8_t* e = data + end;
  uint64_t count = le(e + 10, 2), cdSize = le(e + 12, 4), cdOffset = le(e + 16, 4);
  if (le(e + 4, 2) != 0 || le(e + 6, 2) != 0 || le(e + 8, 2) != count) bad("a zip archive split over several disks");
  // ZIP64 (torch.save always writes it): the locator just before the end record points at the real counts
  if (end >= kLocatorSize && le(data + end - kLocatorSize, 4) == kEnd64Locator) {
    uint64_t at = le(data + end - kLocatorSize + 8, 8);
    if (!within(at, kEnd64Size, end - kLocatorSize) || le(data + at, 4) != kEnd64) bad("a zip64 end record outside the file");
    const uint8_t* e64 = data + at;
    count = le(e64 + 32, 8);
    cdSize = le(e64 + 40, 8);
    cdOffset = le(e64 + 48, 8);
    if (le(e64 + 24, 8) != count) bad("a zip archive split over several disks");
  }
  if (!within(cdOffset, cdSize, end)) bad("the zip's central directory lies outside the file");
  if (count == 0) bad("an empty zip archive");
  if (count > cdSize / kCentralSize) bad("the zip's central directory is too short for its " + std::to_string(count) + " records");
  records_.reserve(count);
  const uint8_t* cd = data + cdOffset;
  uint64_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (!within(pos, kCentralSize, cdSize) || le(cd + pos, 4) != kCentralHeader) bad("a damaged zip central directory");
    const uint8_t* h = cd + pos;
    uint64_t flags = le(h + 8, 2), nameLen = le(h + 28, 2), extraLen = le(h + 30, 2), commentLen = le(h + 32, 2);
    if (!within(pos + kCentralSize, nameLen + extraLen + commentLen, cdSize)) bad("a damaged zip central directory");
    Record r;
    r.name.assign(reinterpret_cast<const char*>(h + kCentralSize), nameLen);
    r.method = uint16_t(le(h + 10, 2));
    r.compressedSize = le(h + 20, 4);
    r.size = le(h + 24, 4);
    uint64_t localOffset = le(h + 42, 4);
    // ZIP64 extended information: 8-byte values for the fields that hold 0xFFFFFFFF, in this order
    const uint8_t* x = h + kCentralSize + nameLen;
    for (uint64_t xp = 0; xp + 4 <= extraLen;) {
      uint64_t id = le(x + xp, 2), len = le(x + xp + 2, 2);
      if (xp + 4 + len > extraLen) bad("a damaged zip extra field in '" + r.name + "'");
      if (id == 0x0001) {
        const uint8_t* f = x + xp + 4;
        uint64_t left = len;
        for (uint64_t* field : {&r.size, &r.compressedSize, &localOffset}) {
          if (*field != 0xffffffffu) continue;
          if (left < 8) bad("a damaged zip64 field in '" + r.name + "'");
          *field = le(f, 8);
          f += 8;
          left -= 8;
        }
      }
      xp += 4 + len;
    }
    pos += kCentralSize + nameLen + extraLen + commentLen;
    if (flags & 1) bad("'" + r.name + "' is encrypted");
    if (r.method != 0 && r.method != 8)
      bad("'" + r.name + "' is compressed with zip method " + std::to_string(r.method) + ", not stored or deflated");
    if (r.method == 0 && r.compressedSize != r.size)
      bad("'" + r.name + "' is stored, but the zip says it is " + std::to_string(r.size) + " bytes and takes " +
          std::to_string(r.compressedSize));
    // the local header (its own sizes may be zero: torch.save writes them after the data)
    if (!within(localOffset, kLocalSize, size) || le(data + localOffset, 4) != kLocalHeader)
      bad("'" + r.name + "' has no local header where the central directory says");
    const uint8_t* l = data + localOffset;
    r.dataOffset = localOffset + kLocalSize + le(l + 26, 2) + le(l + 28, 2);
    if (!within(r.dataOffset, r.compressedSize, size))
      bad("'" + r.name + "' runs past the end of the file (a truncated download?): " + std::to_string(r.compressedSize) +
          " bytes at offset " + std::to_string(r.dataOffset) + " of " + std::to_string(size));
    if (!byName_.emplace(r.name, records_.size()).second) bad("two records named '" + r.name + "'");
    records_.push_back(std::move(r));
  }
  // PyTorchStreamReader's rule: the first record's folder is the archive's
  size_t slash = records_[0].name.find('/');
  if (slash == std::string::npos) bad("'" + records_[0].name + "' is not in a folder, as torch.save puts its records");
  folder_ = records_[0].name.substr(0, slash + 1);
}

const ZipArchive::Record* ZipArchive::find(const std::string& name) const {
  auto it = byName_.find(folder_ + name);
  return it == byName_.end() ? nullptr : &records_[it->second];
}

void ZipArchive::read(const Record& r, uint8_t* dst) const {
  if (r.method == 0) {
    if (r.size) std::memcpy(dst, data_ + r.dataOffset, r.size);
    return;
  }
  if (r.size > std::numeric_limits<size_t>::max()) bad("'" + r.name + "' is larger than this machine can address");
  size_t n = tinfl_decompress_mem_to_mem(dst, size_t(r.size), data_ + r.dataOffset, size_t(r.compressedSize), 0);
  if (n != r.size)
    bad("'" + r.name + "' does not inflate to the " + std::to_string(r.size) + " bytes its zip entry declares" +
        (n == size_t(-1) ? " (a damaged or longer deflate stream)" : " (it gives " + std::to_string(n) + ")"));
}

}  // namespace ltg
