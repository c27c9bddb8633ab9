"""A small pure-Python TFRecord writer and resynchronising reader: the reference for the native ops.

It implements the framing from TensorFlow's record_writer.cc (little-endian
uint64 length, masked CRC32C of the length, the data, masked CRC32C of the
data) and the resynchronisation rule of `deephub.ops.tfrecord.tfrecord_scan`,
as plainly as possible: slow, but obviously right, for the corrupted files
that TensorFlow itself cannot read.
"""

HEADER_BYTES = 12
OVERHEAD_BYTES = 16


def _crc32c_table() -> list[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(payload: bytes) -> bytes:
  """One TFRecord: header, data, footer."""
  length = len(payload).to_bytes(8, "little")
  return (
    length + masked_crc(length).to_bytes(4, "little") + payload + masked_crc(payload).to_bytes(4, "little")
  )


def _record_at(data: bytes, pos: int) -> int | None:
  """The data length of a record that fully verifies at `pos`, else None."""
  if len(data) - pos < OVERHEAD_BYTES:
    return None
  length = int.from_bytes(data[pos : pos + 8], "little")
  if masked_crc(data[pos : pos + 8]) != int.from_bytes(data[pos + 8 : pos + 12], "little"):
    return None
  if length > len(data) - pos - OVERHEAD_BYTES:
    return None
  body = data[pos + HEADER_BYTES : pos + HEADER_BYTES + length]
  footer = data[pos + HEADER_BYTES + length : pos + OVERHEAD_BYTES + length]
  return length if masked_crc(body) == int.from_bytes(footer, "little") else None


def scan(data: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
  """`([(offset, length) of each record], [(offset, length) of each skipped range])`.

  Records are taken while they verify; at a record that does not, the next
  position where one does is searched byte by byte and the bytes between
  are one skipped range. Fewer than HEADER_BYTES left at a record boundary
  are trailing bytes, not a range (TensorFlow ignores them too).
  """
  records, skipped = [], []
  pos = 0
  while len(data) - pos >= HEADER_BYTES:
    length = _record_at(data, pos)
    if length is not None:
      records.append((pos, length))
      pos += OVERHEAD_BYTES + length
      continue
    after = next((q for q in range(pos + 1, len(data)) if _record_at(data, q) is not None), len(data))
    skipped.append((pos, after - pos))
    pos = after
  return records, skipped


def payloads(data: bytes, records: list[tuple[int, int]]) -> list[bytes]:
  """The data of each `(offset, length)` record."""
  return [data[offset + HEADER_BYTES : offset + HEADER_BYTES + length] for offset, length in records]
