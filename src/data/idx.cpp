#include "data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "util/error.hpp"

namespace tailor {
namespace {

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

// A byte stream with one operation: read up to n bytes, fewer only at the end of the data.
// Raw files read straight through; gzip files inflate in 64 KiB input chunks, so memory use
// never depends on what the (untrusted) header claims.
class ByteStream {
 public:
  ByteStream(const std::string& path, File file, bool gzip)
      : path_(path), file_(std::move(file)), gzip_(gzip) {
    if (!gzip_) return;
    // 15 + 16: a 32 KiB window, gzip wrapper only (a zlib or raw deflate stream is an error).
    if (inflateInit2(&z_, 15 + 16) != Z_OK) throw Error(path_ + ": cannot initialise zlib");
    z_live_ = true;
  }
  ~ByteStream() {
    if (z_live_) inflateEnd(&z_);
  }
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  size_t read(uint8_t* dst, size_t n) { return gzip_ ? read_gzip(dst, n) : read_raw(dst, n); }

 private:
  size_t read_raw(uint8_t* dst, size_t n) {
    size_t got = std::fread(dst, 1, n, file_.get());
    if (got < n && std::ferror(file_.get()))
      throw Error("cannot read " + path_ + ": " + std::strerror(errno));
    return got;
  }

  // Refills the input buffer; false (and eof_ set) at end of file.
  bool refill() {
    size_t got = read_raw(in_, sizeof in_);
    z_.next_in = in_;
    z_.avail_in = static_cast<uInt>(got);
    eof_ = got == 0;
    return !eof_;
  }

  size_t read_gzip(uint8_t* dst, size_t n) {
    size_t done = 0;
    while (done < n && !stream_end_) {
      // Inflate may still hold output with no input left, so at end of file it is called
      // once more; only a call that can make no progress at all means truncation.
      if (z_.avail_in == 0 && !eof_) refill();
      z_.next_out = dst + done;
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n - done, size_t{1} << 30));
      int rc = inflate(&z_, Z_NO_FLUSH);
      done = static_cast<size_t>(z_.next_out - dst);
      if (rc == Z_STREAM_END) {
        next_member_or_end();
      } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
        throw Error(path_ + ": corrupt gzip data (zlib: " + (z_.msg ? z_.msg : "data error") + ")");
      } else if (rc == Z_MEM_ERROR) {
        throw Error(path_ + ": out of memory while decompressing");
      } else if (rc == Z_BUF_ERROR) {
        // No progress possible with avail_out > 0: the input is used up.
        if (eof_) throw Error(path_ + ": truncated gzip (the file ends before the gzip stream does)");
      } else if (rc != Z_OK) {
        throw Error(path_ + ": gzip decompression failed (zlib code " + std::to_string(rc) + ")");
      }
    }
    return done;
  }

  // gzip allows several members back to back (`cat a.gz b.gz`); anything else after the
  // first member is garbage and rejected.
  void next_member_or_end() {
    if (z_.avail_in == 0 && (eof_ || !refill())) {
      stream_end_ = true;
      return;
    }
    if (z_.avail_in == 1 && z_.next_in[0] == 0x1f) {
      // The magic straddles a chunk boundary: keep the 1f and read on.
      in_[0] = 0x1f;
      size_t got = read_raw(in_ + 1, sizeof in_ - 1);
      eof_ = got == 0;
      z_.next_in = in_;
      z_.avail_in = static_cast<uInt>(got + 1);
    }
    if (z_.avail_in >= 2 && z_.next_in[0] == 0x1f && z_.next_in[1] == 0x8b) {
      inflateReset(&z_);
      return;
    }
    throw Error(path_ + ": unexpected bytes after the end of the gzip stream");
  }

  std::string path_;
  File file_;
  bool gzip_;
  z_stream z_{};
  bool z_live_ = false;
  bool eof_ = false;         // the file has no more compressed bytes
  bool stream_end_ = false;  // the last gzip member has ended
  uint8_t in_[1 << 16];
};

void read_exactly(ByteStream& in, uint8_t* dst, size_t n, const std::string& path,
                  const char* what) {
  size_t got = in.read(dst, n);
  if (got < n)
    throw Error(path + ": file ends inside the IDX header (" + what + ")");
}

// Checks the 4 magic bytes 00 00 08 ndim against what the caller expects.
void check_magic(const uint8_t m[4], int expected_ndim, const std::string& path) {
  const uint32_t found = big_endian32(m);
  const uint32_t expected = 0x00000800u | static_cast<uint32_t>(expected_ndim);
  const std::string both = " (magic " + hex32(found) + ", expected " + hex32(expected) + ")";
  if (m[0] != 0 || m[1] != 0) throw Error(path + ": not an IDX file" + both);
  if (m[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02X", m[2]);
    throw Error(path + ": IDX element type " + type + " is not unsigned byte 0x08" + both);
  }
  if (m[3] != expected_ndim)
    throw Error(path + ": IDX file has " + std::to_string(m[3]) + " dimensions, expected " +
                std::to_string(expected_ndim) + both);
}

// Product of the dims, refusing zero and anything above kIdxMaxDataBytes. Each dim is >= 1 so
// the running product only grows; stopping as soon as it passes the cap keeps it in 64 bits.
uint64_t checked_volume(const std::vector<uint32_t>& dims, const std::string& path) {
  uint64_t volume = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 0) throw Error(path + ": IDX dimension " + std::to_string(i) + " is zero");
    volume *= dims[i];
    if (volume > kIdxMaxDataBytes)
      throw Error(path + ": IDX header describes more than 1 GiB of data; refusing to read it");
  }
  return volume;
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_ndim) {
  if (expected_ndim < 1 || expected_ndim > 255)
    throw Error("read_idx: expected_ndim " + std::to_string(expected_ndim) + " is not in [1, 255]");
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error("cannot open " + path + ": file not found");
  if (!std::filesystem::is_regular_file(status))
    throw Error("cannot read " + path + ": not a regular file");
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error("cannot open " + path + ": " + std::strerror(errno));

  // Peek at the first two bytes for the gzip magic, then rewind.
  uint8_t sig[2] = {0, 0};
  const size_t sig_len = std::fread(sig, 1, 2, f.get());
  const bool gzip = sig_len == 2 && sig[0] == 0x1f && sig[1] == 0x8b;
  std::rewind(f.get());
  ByteStream in(path, std::move(f), gzip);

  uint8_t magic[4];
  read_exactly(in, magic, 4, path, "magic number");
  check_magic(magic, expected_ndim, path);

  IdxArray out;
  std::vector<uint8_t> dim_bytes(4 * static_cast<size_t>(expected_ndim));
  read_exactly(in, dim_bytes.data(), dim_bytes.size(), path, "dimensions");
  for (int i = 0; i < expected_ndim; ++i) out.dims.push_back(big_endian32(&dim_bytes[4 * i]));
  const uint64_t volume = checked_volume(out.dims, path);
  const uint64_t header_bytes = 4 + dim_bytes.size();

  if (!gzip) {
    // The real size is known up front, so compare before allocating anything.
    const uint64_t file_bytes = std::filesystem::file_size(path, ec);
    if (ec) throw Error("cannot read " + path + ": " + ec.message());
    const uint64_t held = file_bytes > header_bytes ? file_bytes - header_bytes : 0;
    if (held < volume)
      throw Error(path + ": header says " + std::to_string(volume) + " bytes of data but file holds " +
                  std::to_string(held));
    if (held > volume)
      throw Error(path + ": " + std::to_string(held - volume) + " bytes of extra data after the " +
                  std::to_string(volume) + " bytes the header describes");
  }

  // Grow the buffer geometrically as data really arrives, never past `volume`.
  size_t got = 0;
  while (got < volume) {
    const size_t step = static_cast<size_t>(std::min<uint64_t>(volume - got, std::max<size_t>(got, 1 << 20)));
    out.data.resize(got + step);
    const size_t n = in.read(out.data.data() + got, step);
    got += n;
    if (n < step) break;
  }
  if (got < volume)
    throw Error(path + ": header says " + std::to_string(volume) + " bytes of data but file holds " +
                std::to_string(got));
  uint8_t extra;
  if (in.read(&extra, 1) != 0)
    throw Error(path + ": extra data after the " + std::to_string(volume) +
                " bytes the header describes");
  return out;
}

}  // namespace tailor
