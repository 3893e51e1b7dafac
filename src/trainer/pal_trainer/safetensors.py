"""Reader and writer of the safetensors format, so the trainer needs no package beyond torch.

Layout: an 8-byte little-endian header length N, N bytes of JSON header (padded with spaces so
the data starts 8-byte aligned), then the tensors' bytes, little-endian and contiguous. The
header maps each name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
start of the data) and may hold a "__metadata__" map of strings.
"""

import json
import os
import re
import struct
import sys
import tempfile

import torch

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):  # newer torch only; 1.13 has no 8-bit floats
        DTYPES[_name] = getattr(torch, _attr)
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3
# The reference implementation refuses headers above 100 MB; a larger length means a corrupt file.
MAX_HEADER_BYTES = 100 * 1024 * 1024
# Tensors are written through a bounded buffer so saving never holds a second copy of a big tensor.
WRITE_CHUNK_BYTES = 64 * 1024 * 1024
_SHARD_NAME = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")


class SafetensorsError(ValueError):
    """A safetensors file or folder that cannot be read as written."""


def _element_size(dtype):
    return torch.empty((), dtype=dtype).element_size()


def _swap_bytes(raw, itemsize):
    """Byte-swaps uint8 data in place of elements of `itemsize` bytes (big-endian hosts only)."""
    if sys.byteorder == "little" or itemsize == 1:
        return raw
    return raw.view(-1, itemsize).flip(1).reshape(-1)


def read_header(path):
    """Returns (tensors, metadata, data_start): tensors maps name -> {"dtype", "shape", "data_offsets"}.

    Every entry is checked against the file's real size, so a later read cannot run past the end.
    """
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        file_size = f.tell()
        f.seek(0)
        if file_size < 8:
            raise SafetensorsError("%s: truncated file: %d bytes, shorter than the 8-byte header length" % (path, file_size))
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > MAX_HEADER_BYTES:
            raise SafetensorsError("%s: bad header: length %d is over the %d-byte limit (not a safetensors file?)" % (path, header_len, MAX_HEADER_BYTES))
        if 8 + header_len > file_size:
            raise SafetensorsError("%s: truncated file: the header says %d bytes but only %d follow" % (path, header_len, file_size - 8))
        raw_header = f.read(header_len)
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsError("%s: bad header: not UTF-8 JSON (%s)" % (path, exc)) from None
    if not isinstance(header, dict):
        raise SafetensorsError("%s: bad header: a JSON %s, not an object" % (path, type(header).__name__))

    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise SafetensorsError("%s: bad header: __metadata__ must map strings to strings" % path)
    data_start = 8 + header_len
    data_len = file_size - data_start
    for name, info in header.items():
        _check_entry(path, name, info, data_len)
    return header, metadata, data_start


def _check_entry(path, name, info, data_len):
    where = "%s: tensor %r" % (path, name)
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise SafetensorsError("%s: bad header: needs dtype, shape and data_offsets" % where)
    if info["dtype"] not in DTYPES:
        raise SafetensorsError("%s: unknown dtype %r (known: %s)" % (where, info["dtype"], ", ".join(DTYPES)))
    shape, offsets = info["shape"], info["data_offsets"]
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise SafetensorsError("%s: bad header: shape %r is not a list of sizes" % (where, shape))
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise SafetensorsError("%s: bad header: data_offsets %r is not [begin, end]" % (where, offsets))
    begin, end = offsets
    numel = 1
    for d in shape:
        numel *= d
    expected = numel * _element_size(DTYPES[info["dtype"]])
    if not 0 <= begin <= end or end - begin != expected:
        raise SafetensorsError(
            "%s: bad header: data_offsets %r span %d bytes, but %s %r needs %d" % (where, offsets, end - begin, info["dtype"], shape, expected)
        )
    if end > data_len:
        raise SafetensorsError("%s: offsets out of range: data ends at byte %d but the file has %d data bytes (truncated file?)" % (where, end, data_len))


def load_file(path, device="cpu"):
    """Reads every tensor of a .safetensors file into a dict, in the dtypes stored.

    Each tensor is read straight into its own buffer, so the file is never held twice and
    tensors headed for a GPU leave host memory one at a time.
    """
    header, _, data_start = read_header(path)
    tensors = {}
    with open(path, "rb") as f:
        for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            dtype = DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            if end == begin:
                tensor = torch.empty(info["shape"], dtype=dtype)
            else:
                buffer = bytearray(end - begin)
                f.seek(data_start + begin)
                if f.readinto(buffer) != len(buffer):
                    raise SafetensorsError("%s: truncated file: tensor %r cut short" % (path, name))
                raw = _swap_bytes(torch.frombuffer(buffer, dtype=torch.uint8), _element_size(dtype))
                tensor = raw.view(dtype).reshape(info["shape"])
            tensors[name] = tensor.to(device) if str(device) != "cpu" else tensor
    return tensors


def _check_tensors(tensors, metadata):
    if not isinstance(tensors, dict):
        raise TypeError("tensors must be a dict of name -> torch.Tensor, not %s" % type(tensors).__name__)
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError("invalid tensor name %r" % (name,))
        if not isinstance(tensor, torch.Tensor):
            raise TypeError("tensor %r is a %s, not a torch.Tensor" % (name, type(tensor).__name__))
        if tensor.dtype not in DTYPE_NAMES:
            raise ValueError("tensor %r has dtype %s, which safetensors cannot store" % (name, tensor.dtype))
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError("metadata must map strings to strings")


def _layout(tensors, metadata):
    """The header bytes (padded) and the tensors in file order.

    Larger elements first, then by name, as the reference writer does: with the data start
    8-byte aligned, every tensor then starts at a multiple of its element size.
    """
    order = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in order:
        t = tensors[name]
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return raw, order


def _write_tensor(f, tensor):
    data = tensor.detach().to("cpu").contiguous()
    if data.dtype == torch.bool:
        data = data.to(torch.uint8)
    raw = _swap_bytes(data.reshape(-1).view(torch.uint8), data.element_size())
    for start in range(0, raw.numel(), WRITE_CHUNK_BYTES):
        chunk = raw[start : start + WRITE_CHUNK_BYTES]
        buffer = bytearray(chunk.numel())
        torch.frombuffer(buffer, dtype=torch.uint8).copy_(chunk)
        f.write(buffer)


def _atomic_write(path, write):
    """Calls write(file) on a temporary file beside `path`, then renames it into place.

    A reader never sees a half-written file, and a failed save leaves the old file intact.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file owner-only (0600); a saved model gets the mode any new file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_file(tensors, path, metadata=None):
    """Writes `tensors` (name -> Tensor) to `path` atomically; metadata is an optional str -> str map."""
    _check_tensors(tensors, metadata)
    header, order = _layout(tensors, metadata)

    def write(f):
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for name in order:
            _write_tensor(f, tensors[name])

    _atomic_write(path, write)


def _write_json(path, value):
    _atomic_write(path, lambda f: f.write((json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")))


def load_sharded(folder, device="cpu"):
    """Loads a checkpoint folder: the shards named by model.safetensors.index.json, else model.safetensors."""
    index_path = os.path.join(folder, INDEX_FILE)
    if not os.path.exists(index_path):
        single = os.path.join(folder, SINGLE_FILE)
        if not os.path.exists(single):
            raise SafetensorsError("%s: neither %s nor %s found" % (folder, SINGLE_FILE, INDEX_FILE))
        return load_file(single, device)
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise SafetensorsError("%s: bad index: %s" % (index_path, exc)) from None
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        if not isinstance(shard, str) or os.path.basename(shard) != shard:
            raise SafetensorsError("%s: bad index: shard name %r must be a file in the folder" % (index_path, shard))
        shard_path = os.path.join(folder, shard)
        if not os.path.exists(shard_path):
            raise SafetensorsError("%s: shard %s is missing" % (index_path, shard))
        loaded = load_file(shard_path, device)
        wanted = [name for name, file in weight_map.items() if file == shard]
        absent = [name for name in wanted if name not in loaded]
        if absent:
            raise SafetensorsError("%s: the index puts %s in this shard but it is not there" % (shard_path, ", ".join(absent[:10])))
        for name in wanted:
            tensors[name] = loaded.pop(name)
    return tensors


def _remove_stale_checkpoint(folder, written):
    """Removes a previous save's files, so a folder never mixes two checkpoints.

    Called after the new files are in place: a failed save leaves the old checkpoint loadable.
    """
    for name in os.listdir(folder):
        if (name in (SINGLE_FILE, INDEX_FILE) or _SHARD_NAME.match(name)) and name not in written:
            os.unlink(os.path.join(folder, name))


def save_sharded(tensors, folder, max_shard_bytes=DEFAULT_MAX_SHARD_BYTES, metadata=None):
    """Writes model.safetensors, or numbered shards plus an index when over max_shard_bytes.

    Tensors are packed in order until a shard is full; one larger than the limit gets a shard of
    its own. Returns the names of the files written.
    """
    _check_tensors(tensors, metadata)
    if max_shard_bytes <= 0:
        raise ValueError("max_shard_bytes must be positive")
    shards, size = [[]], 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    os.makedirs(folder, exist_ok=True)
    if len(shards) == 1:
        save_file(tensors, os.path.join(folder, SINGLE_FILE), metadata)
        _remove_stale_checkpoint(folder, [SINGLE_FILE])
        return [SINGLE_FILE]
    written, weight_map = [], {}
    for number, names in enumerate(shards, 1):
        file = "model-%05d-of-%05d.safetensors" % (number, len(shards))
        save_file({name: tensors[name] for name in names}, os.path.join(folder, file), metadata)
        weight_map.update((name, file) for name in names)
        written.append(file)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    # Written last: a reader that finds the index finds every shard it names.
    _write_json(os.path.join(folder, INDEX_FILE), {"metadata": {"total_size": total}, "weight_map": weight_map})
    written.append(INDEX_FILE)
    _remove_stale_checkpoint(folder, written)
    return written
