// The file layer of reading torch.save files (torch_save.h): the zip archive, read from its central
// directory with every offset and size checked against the file before any byte is read or any memory
// is allocated; the errors that are the file's fault (FileFormatError, which torch_save.cc prefixes with
// the file's name); and the memory budget (Budget) that a file's contents may take.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace ltg {

// What is wrong with the file (never with the caller's arguments).
class FileFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// 1536 -> "1.5 KiB": sizes in messages.
std::string describeBytes(uint64_t n);

// The memory a file's contents may take while being read (tensor storages, inflated records, the
// pickle's objects), charged before each allocation; over `max`, a FileFormatError naming maxBytes.
class Budget {
 public:
  explicit Budget(uint64_t max) : max_(max) {}
  void charge(uint64_t n, const std::string& what);
  uint64_t used() const { return used_; }

 private:
  uint64_t max_;
  uint64_t used_ = 0;
};

// A zip archive in memory (borrowed: `data` must outlive it), as PyTorchStreamReader reads torch.save's:
// every record lies in one top-level folder (the archive's name) and records are found by their name
// inside it. Stored and deflated records are read; any other method, encryption, a record outside the
// file or a central directory that disagrees with itself is an error.
class ZipArchive {
 public:
  struct Record {
    std::string name;  // the full name, folder included
    uint16_t method = 0;  // 0 stored, 8 deflated
    uint64_t compressedSize = 0, size = 0;
    uint64_t dataOffset = 0;  // where its (compressed) bytes start in the file
  };

  ZipArchive(const uint8_t* data, size_t size);
  // The record `name` of the archive's folder ("data.pkl", "data/0"), or null.
  const Record* find(const std::string& name) const;
  const std::string& folder() const { return folder_; }
  // Exactly record.size bytes into dst (a deflated record is inflated into it, never past it).
  void read(const Record& r, uint8_t* dst) const;
  // A stored record's bytes where they lie in the file, or null for a deflated one.
  const uint8_t* storedBytes(const Record& r) const { return r.method == 0 ? data_ + r.dataOffset : nullptr; }

 private:
  const uint8_t* data_;
  size_t size_;
  std::string folder_;
  std::vector<Record> records_;
  std::unordered_map<std::string, size_t> byName_;
};

}  // namespace ltg
