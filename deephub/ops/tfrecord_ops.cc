// Native TFRecord ops: scan a file's framing in one pass, read records by offset.
//
// The framing is TensorFlow's (tensorflow/core/lib/io/record_writer.cc):
//
//   uint64 length | uint32 masked crc32c(length) | data[length] | uint32 masked crc32c(data)
//
// all little-endian. TensorFlow's own reader stops at the first bad record;
// DeephubTfrecordScan instead resynchronises: it searches forward for the next
// position where a header's length CRC and that record's data CRC both
// verify, reports the bytes it skipped and goes on. DeephubTfrecordRead then
// reads the good records by offset, so a flipped bit costs only its record.
//
// Files go through tensorflow::Env, so every file system TensorFlow knows
// (local, gs://, tensorflow-io's s3://, ...) works. No length read from a
// file is trusted for allocation or reads: each is checked against the bytes
// that remain first.
//
// Python wrappers (with the full contract): deephub/ops/tfrecord.py.

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "md5.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/lib/hash/crc32c.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"

// The loader reads this marker from the library file (without loading it) to
// tell which TensorFlow and which sources it was built from; a library built
// for another TensorFlow may not even load, so it must not be dlopen()ed to ask.
#ifndef DEEPHUB_OPS_BUILD_INFO
#define DEEPHUB_OPS_BUILD_INFO "unknown"
#endif
extern "C" {
__attribute__((used, visibility("default"))) const char kDeephubOpsBuildInfo[] =
    "DEEPHUB_OPS_BUILD_INFO{" DEEPHUB_OPS_BUILD_INFO "}";
}

namespace deephub {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::Env;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::RandomAccessFile;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::tstring;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;
namespace crc32c = ::tensorflow::crc32c;
namespace errors = ::tensorflow::errors;

constexpr uint64_t kHeaderBytes = 12;   // length + its masked CRC.
constexpr uint64_t kOverheadBytes = 16;  // header + the data's masked CRC.
// Reads are this big: large enough that per-read costs vanish, small enough
// to keep per-op memory modest.
constexpr size_t kBufferBytes = 4 << 20;
// In headers-only scans a jump over a big record reads only this much, not a
// whole buffer, so counting records of big files reads little more than headers.
constexpr size_t kJumpReadBytes = 64 << 10;
// DeephubTfrecordRead merges neighbouring records into one read when the gap
// between them is at most its `max_merge_gap_bytes` (default 256 KiB: reading
// a gap from the page cache is cheaper than another read), and the merged
// read stays at most this big (one record may be bigger).
constexpr uint64_t kMaxMergedReadBytes = 16 << 20;

uint64_t DecodeFixed64(const char* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

uint32_t DecodeFixed32(const char* p) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

// True when the 12 header bytes at `header` carry a length whose CRC verifies.
bool HeaderVerifies(const char* header, uint64_t* length) {
  *length = DecodeFixed64(header);
  return crc32c::Unmask(DecodeFixed32(header + 8)) == crc32c::Value(header, 8);
}

// `status` with the file and byte offset in front of its message.
absl::Status WithPlace(const absl::Status& status, const std::string& path, uint64_t offset) {
  return absl::Status(status.code(), absl::StrCat(path, " at byte offset ", offset, ": ", status.message()));
}

// Reads a file through a sliding buffer, front to back. With an Md5 it also
// hashes every byte of the file exactly once, in order, even when the scan
// jumps ahead (the gap is read and hashed) or steps back (nothing is hashed twice).
class WindowReader {
 public:
  WindowReader(RandomAccessFile* file, const std::string& path, uint64_t size, Md5* md5)
      : file_(file), path_(path), size_(size), md5_(md5), buffer_(new char[kBufferBytes]) {}

  // Points `*data` at bytes [offset, offset + n); needs n <= kBufferBytes and
  // offset + n <= file size (callers check both against the file size).
  absl::Status View(uint64_t offset, size_t n, const char** data) {
    if (offset < start_ || offset + n > start_ + filled_) {
      while (md5_ != nullptr && hashed_ < offset) {
        // Never leave bytes unhashed behind the scan.
        TF_RETURN_IF_ERROR(Fill(hashed_, 1));
      }
      TF_RETURN_IF_ERROR(Fill(offset, n));
    }
    *data = buffer_.get() + (offset - start_);
    return absl::OkStatus();
  }

  // Hashes whatever the scan never looked at (trailing or skipped bytes).
  absl::Status HashToEnd() {
    while (md5_ != nullptr && hashed_ < size_) TF_RETURN_IF_ERROR(Fill(hashed_, 1));
    return absl::OkStatus();
  }

 private:
  // Loads the buffer starting at `offset`, keeping bytes it already holds.
  absl::Status Fill(uint64_t offset, size_t n) {
    const uint64_t end = start_ + filled_;
    const bool jump = offset > end;
    size_t keep = 0;
    if (offset >= start_ && offset < end) {
      keep = end - offset;
      std::memmove(buffer_.get(), buffer_.get() + (offset - start_), keep);
    }
    uint64_t want = kBufferBytes;
    if (jump && md5_ == nullptr) want = std::max<uint64_t>(n, kJumpReadBytes);
    want = std::min<uint64_t>(want, size_ - offset);
    start_ = offset;
    filled_ = keep;
    if (want > keep) {
      absl::string_view got;
      absl::Status status = file_->Read(offset + keep, want - keep, &got, buffer_.get() + keep);
      // OutOfRange means a short read; the size check below reports it.
      if (!status.ok() && !absl::IsOutOfRange(status)) return WithPlace(status, path_, offset + keep);
      if (got.data() != buffer_.get() + keep) std::memmove(buffer_.get() + keep, got.data(), got.size());
      filled_ = keep + got.size();
      if (filled_ < want) {
        return errors::DataLoss(path_, " at byte offset ", offset + filled_, ": the file ended early (it is ",
                                size_, " bytes); was it changed while being read?");
      }
    }
    if (md5_ != nullptr && start_ + filled_ > hashed_) {
      md5_->Update(buffer_.get() + (hashed_ - start_), start_ + filled_ - hashed_);
      hashed_ = start_ + filled_;
    }
    return absl::OkStatus();
  }

  RandomAccessFile* file_;
  const std::string& path_;
  const uint64_t size_;
  Md5* md5_;
  std::unique_ptr<char[]> buffer_;
  uint64_t start_ = 0;  // File offset of buffer_[0].
  size_t filled_ = 0;   // Valid bytes in buffer_.
  uint64_t hashed_ = 0;  // Bytes [0, hashed_) went into md5_.
};

// One pass over a TFRecord file: good records, skipped ranges, the md5.
class Scanner {
 public:
  Scanner(RandomAccessFile* file, const std::string& path, uint64_t size, bool verify_data_crc, Md5* md5)
      : reader_(file, path, size, md5), size_(size), verify_data_crc_(verify_data_crc) {}

  absl::Status Run() {
    uint64_t pos = 0;
    // Fewer than a header's bytes after the last record are tolerated, as
    // tf.data.TFRecordDataset tolerates them; the caller reports them.
    while (size_ - pos >= kHeaderBytes) {
      bool good;
      uint64_t length;
      TF_RETURN_IF_ERROR(RecordAt(pos, verify_data_crc_, &good, &length));
      if (good) {
        offsets.push_back(static_cast<int64_t>(pos));
        lengths.push_back(static_cast<int64_t>(length));
        pos += kOverheadBytes + length;
        continue;
      }
      uint64_t next;
      TF_RETURN_IF_ERROR(Resynchronise(pos + 1, &next));
      corrupt_offsets.push_back(static_cast<int64_t>(pos));
      corrupt_lengths.push_back(static_cast<int64_t>(next - pos));
      pos = next;
    }
    return reader_.HashToEnd();
  }

  std::vector<int64_t> offsets, lengths, corrupt_offsets, corrupt_lengths;

 private:
  // Whether a record starts at `pos`: its length CRC verifies, it fits in the
  // file, and (when `check_data`) its data CRC verifies.
  absl::Status RecordAt(uint64_t pos, bool check_data, bool* good, uint64_t* length) {
    const char* header;
    TF_RETURN_IF_ERROR(reader_.View(pos, kHeaderBytes, &header));
    // The length is compared with what remains before anything trusts it.
    *good = HeaderVerifies(header, length) && size_ - pos >= kOverheadBytes &&
            *length <= size_ - pos - kOverheadBytes;
    if (*good && check_data) TF_RETURN_IF_ERROR(DataVerifies(pos, *length, good));
    return absl::OkStatus();
  }

  // Streams the record's data through crc32c, a buffer at a time.
  absl::Status DataVerifies(uint64_t pos, uint64_t length, bool* good) {
    uint32_t crc = 0;
    uint64_t offset = pos + kHeaderBytes;
    for (uint64_t left = length; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kBufferBytes));
      const char* data;
      TF_RETURN_IF_ERROR(reader_.View(offset, n, &data));
      crc = crc32c::Extend(crc, data, n);
      offset += n;
      left -= n;
    }
    const char* footer;
    TF_RETURN_IF_ERROR(reader_.View(offset, 4, &footer));
    *good = crc32c::Unmask(DecodeFixed32(footer)) == crc;
    return absl::OkStatus();
  }

  // The first position >= `from` where a whole record verifies (length and
  // data CRC, whatever verify_data_crc says: a header alone matches random
  // bytes once in 2^32 positions); the file size when there is none.
  absl::Status Resynchronise(uint64_t from, uint64_t* next) {
    for (uint64_t pos = from; pos < size_ && size_ - pos >= kOverheadBytes; ++pos) {
      bool good;
      uint64_t length;
      TF_RETURN_IF_ERROR(RecordAt(pos, /*check_data=*/true, &good, &length));
      if (good) {
        *next = pos;
        return absl::OkStatus();
      }
    }
    *next = size_;
    return absl::OkStatus();
  }

  WindowReader reader_;
  const uint64_t size_;
  const bool verify_data_crc_;
};

Tensor* AllocateVector(OpKernelContext* ctx, int index, const std::vector<int64_t>& values) {
  Tensor* out = nullptr;
  absl::Status status = ctx->allocate_output(index, TensorShape({static_cast<int64_t>(values.size())}), &out);
  if (!status.ok()) {
    ctx->SetStatus(status);
    return nullptr;
  }
  if (!values.empty()) std::memcpy(out->flat<int64_t>().data(), values.data(), values.size() * sizeof(int64_t));
  return out;
}

class TfrecordScanOp : public OpKernel {
 public:
  explicit TfrecordScanOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("verify_data_crc", &verify_data_crc_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("md5", &md5_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& path_tensor = ctx->input(0);
    OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(path_tensor.shape()),
                errors::InvalidArgument("path must be a scalar string, got shape ", path_tensor.shape().DebugString()));
    const std::string path(path_tensor.scalar<tstring>()());
    Env* env = ctx->env();
    uint64_t size = 0;
    OP_REQUIRES_OK(ctx, env->GetFileSize(path, &size));
    std::unique_ptr<RandomAccessFile> file;
    OP_REQUIRES_OK(ctx, env->NewRandomAccessFile(path, &file));
    Md5 md5;
    Scanner scanner(file.get(), path, size, verify_data_crc_, md5_ ? &md5 : nullptr);
    OP_REQUIRES_OK(ctx, scanner.Run());
    if (AllocateVector(ctx, 0, scanner.offsets) == nullptr) return;
    if (AllocateVector(ctx, 1, scanner.lengths) == nullptr) return;
    if (AllocateVector(ctx, 2, scanner.corrupt_offsets) == nullptr) return;
    if (AllocateVector(ctx, 3, scanner.corrupt_lengths) == nullptr) return;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, TensorShape({}), &out));
    out->scalar<int64_t>()() = static_cast<int64_t>(size);
    OP_REQUIRES_OK(ctx, ctx->allocate_output(5, TensorShape({}), &out));
    out->scalar<tstring>()() = md5_ ? md5.HexDigest() : std::string();
  }

 private:
  bool verify_data_crc_;
  bool md5_;
};

class TfrecordReadOp : public OpKernel {
 public:
  explicit TfrecordReadOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    int64_t gap = 0;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("max_merge_gap_bytes", &gap));
    OP_REQUIRES(ctx, gap >= 0, errors::InvalidArgument("max_merge_gap_bytes must be >= 0, got ", gap));
    max_merge_gap_bytes_ = static_cast<uint64_t>(gap);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& path_tensor = ctx->input(0);
    const Tensor& offsets_tensor = ctx->input(1);
    const Tensor& lengths_tensor = ctx->input(2);
    OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(path_tensor.shape()),
                errors::InvalidArgument("path must be a scalar string, got shape ", path_tensor.shape().DebugString()));
    OP_REQUIRES(ctx, TensorShapeUtils::IsVector(offsets_tensor.shape()) && offsets_tensor.shape() == lengths_tensor.shape(),
                errors::InvalidArgument("offsets and lengths must be vectors of one length, got shapes ",
                                        offsets_tensor.shape().DebugString(), " and ",
                                        lengths_tensor.shape().DebugString()));
    const std::string path(path_tensor.scalar<tstring>()());
    const auto offsets = offsets_tensor.flat<int64_t>();
    const auto lengths = lengths_tensor.flat<int64_t>();
    const int64_t n = offsets.size();
    Tensor* records_tensor = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, offsets_tensor.shape(), &records_tensor));
    auto records = records_tensor->flat<tstring>();
    if (n == 0) return;

    Env* env = ctx->env();
    uint64_t size = 0;
    OP_REQUIRES_OK(ctx, env->GetFileSize(path, &size));
    // Every place is checked against the file size before it sizes a buffer.
    for (int64_t i = 0; i < n; ++i) {
      OP_REQUIRES(ctx,
                  offsets(i) >= 0 && lengths(i) >= 0 && size >= kOverheadBytes &&
                      static_cast<uint64_t>(offsets(i)) <= size - kOverheadBytes &&
                      static_cast<uint64_t>(lengths(i)) <= size - kOverheadBytes - offsets(i),
                  errors::InvalidArgument(path, ": no record of ", lengths(i), " bytes fits at byte offset ",
                                          offsets(i), " of a ", size, "-byte file; scan the file again"));
    }
    std::unique_ptr<RandomAccessFile> file;
    OP_REQUIRES_OK(ctx, env->NewRandomAccessFile(path, &file));

    std::string scratch;
    for (int64_t first = 0; first < n;) {
      // Merge the following records into this read while they are close.
      const uint64_t begin = offsets(first);
      uint64_t end = begin + kOverheadBytes + lengths(first);
      int64_t last = first + 1;
      for (; last < n; ++last) {
        const uint64_t start = offsets(last);
        const uint64_t stop = start + kOverheadBytes + lengths(last);
        if (start < end || start - end > max_merge_gap_bytes_ || stop - begin > kMaxMergedReadBytes) break;
        end = stop;
      }
      scratch.resize(end - begin);
      absl::string_view got;
      absl::Status status = file->Read(begin, end - begin, &got, &scratch[0]);
      OP_REQUIRES(ctx, status.ok() || absl::IsOutOfRange(status), WithPlace(status, path, begin));
      OP_REQUIRES(ctx, got.size() == end - begin,
                  errors::DataLoss(path, " at byte offset ", begin + got.size(),
                                   ": the file ended early; was it changed since it was scanned?"));
      for (int64_t i = first; i < last; ++i) {
        const char* record = got.data() + (offsets(i) - begin);
        const uint64_t length = lengths(i);
        uint64_t header_length;
        OP_REQUIRES(ctx, HeaderVerifies(record, &header_length) && header_length == length,
                    errors::DataLoss(path, ": corrupted record header at byte offset ", offsets(i),
                                     " (expected a record of ", length, " bytes); was the file changed since it was scanned?"));
        const char* data = record + kHeaderBytes;
        OP_REQUIRES(ctx, crc32c::Unmask(DecodeFixed32(data + length)) == crc32c::Value(data, length),
                    errors::DataLoss(path, ": corrupted record at byte offset ", offsets(i),
                                     " (its data CRC does not match)"));
        records(i).assign(data, length);
      }
      first = last;
    }
  }

 private:
  uint64_t max_merge_gap_bytes_;
};

absl::Status ScanShape(InferenceContext* c) {
  ShapeHandle unused;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 0, &unused));
  for (int i = 0; i < 4; ++i) c->set_output(i, c->Vector(InferenceContext::kUnknownDim));
  c->set_output(4, c->Scalar());
  c->set_output(5, c->Scalar());
  return absl::OkStatus();
}

absl::Status ReadShape(InferenceContext* c) {
  ShapeHandle unused, offsets, lengths;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 0, &unused));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &offsets));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &lengths));
  TF_RETURN_IF_ERROR(c->Merge(offsets, lengths, &offsets));
  c->set_output(0, offsets);
  return absl::OkStatus();
}

}  // namespace

// `deep utils` scans files from plain Python through ctypes (deephub/ops/direct.py):
// importing TensorFlow's Python costs seconds, more than scanning a gigabyte.
// out[6] = records, corrupt ranges, corrupt bytes, first corrupt offset (-1
// if none), trailing bytes, file size; md5_hex gets 33 bytes when want_md5.
// Returns 0, or 1 with the error (naming the file) in `error`.
extern "C" __attribute__((visibility("default"))) int DeephubTfrecordScanSummary(
    const char* path_chars, int verify_data_crc, int want_md5, int64_t* out, char* md5_hex, char* error,
    size_t error_size) {
  const std::string path(path_chars);
  Env* env = Env::Default();
  absl::Status status;
  uint64_t size = 0;
  std::unique_ptr<RandomAccessFile> file;
  Md5 md5;
  status = env->GetFileSize(path, &size);
  if (status.ok()) status = env->NewRandomAccessFile(path, &file);
  Scanner scanner(file.get(), path, size, verify_data_crc != 0, want_md5 ? &md5 : nullptr);
  if (status.ok()) status = scanner.Run();
  if (!status.ok()) {
    std::snprintf(error, error_size, "%s", std::string(status.message()).c_str());
    return 1;
  }
  uint64_t end = 0, corrupt_bytes = 0;
  if (!scanner.offsets.empty()) end = scanner.offsets.back() + kOverheadBytes + scanner.lengths.back();
  for (int64_t length : scanner.corrupt_lengths) corrupt_bytes += length;
  if (!scanner.corrupt_offsets.empty()) {
    end = std::max<uint64_t>(end, scanner.corrupt_offsets.back() + scanner.corrupt_lengths.back());
  }
  out[0] = static_cast<int64_t>(scanner.offsets.size());
  out[1] = static_cast<int64_t>(scanner.corrupt_offsets.size());
  out[2] = static_cast<int64_t>(corrupt_bytes);
  out[3] = scanner.corrupt_offsets.empty() ? -1 : scanner.corrupt_offsets.front();
  out[4] = static_cast<int64_t>(size - end);
  out[5] = static_cast<int64_t>(size);
  if (want_md5) std::snprintf(md5_hex, 33, "%s", md5.HexDigest().c_str());
  return 0;
}

REGISTER_OP("DeephubTfrecordScan")
    .Input("path: string")
    .Attr("verify_data_crc: bool = true")
    .Attr("md5: bool = false")
    .Output("offsets: int64")
    .Output("lengths: int64")
    .Output("corrupt_offsets: int64")
    .Output("corrupt_lengths: int64")
    .Output("file_size: int64")
    .Output("md5_hex: string")
    .SetShapeFn(ScanShape)
    .Doc("One pass over an uncompressed TFRecord file; see deephub/ops/tfrecord.py.");

REGISTER_OP("DeephubTfrecordRead")
    .Input("path: string")
    .Input("offsets: int64")
    .Input("lengths: int64")
    .Attr("max_merge_gap_bytes: int = 262144")
    .Output("records: string")
    .SetShapeFn(ReadShape)
    .Doc("The records at the given offsets, data CRCs checked; see deephub/ops/tfrecord.py.");

REGISTER_KERNEL_BUILDER(Name("DeephubTfrecordScan").Device(DEVICE_CPU), TfrecordScanOp);
REGISTER_KERNEL_BUILDER(Name("DeephubTfrecordRead").Device(DEVICE_CPU), TfrecordReadOp);

}  // namespace deephub
