"""Resource bounds checked before anything large is allocated (issue 14, part 4).

A DICOM file is a compressed description of memory the decoder will allocate: a deflated data set, RLE
segments and JPEG headers can all claim far more than the file holds. Each check here reads headers or
counts output without keeping it, so its own memory is bounded by the file size:

* :func:`inflated_size_within`: the deflated transfer syntax inflated in chunks, output counted and discarded;
* :func:`check_nesting`: every element converted and the sequence depth walked iteratively (pydicom's reader
  and ``copy.deepcopy`` recurse once per level);
* :func:`first_fragment`, :func:`codestream_size`: the image size a JPEG, JPEG-LS or JPEG 2000 stream
  declares, compared with Rows/Columns before the decoder sizes its buffers from it;
* :func:`rle_segments_within`: the decoded length of each RLE segment counted run by run (pydicom's decoder
  grows a bytearray without limit, 64 output bytes per 2 input bytes);
* :func:`count_elements`: element headers counted in the byte stream, into sequences (pydicom keeps every
  element as an object of ~300 bytes: 200 MB of empty elements would take several GB).

Nothing here imports Django (import-linter contract "pure packages").
"""
from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

DEFAULT_MAX_DEPTH = 12  # CR/DX headers nest 3-5 deep; SR trees are refused as not images anyway
DEFAULT_MAX_ELEMENTS = 100_000  # a CR/DX header has hundreds to a few thousand, private blocks included
_CHUNK = 1 << 20


class BoundExceeded(Exception):
    """A declared or counted size over a limit; ``kind`` is ``too_large`` or ``too_deep``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def deflated_payload(data: bytes) -> int | None:
    """Offset of the deflated data set when the file meta says Deflated Explicit VR Little Endian, else None."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    fp = io.BytesIO(data)
    read_preamble(fp, False)
    meta = _read_file_meta_info(fp)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return None
    return fp.tell()


def inflated_size_within(data: bytes, offset: int, limit: int) -> int:
    """Inflate ``data[offset:]`` (raw deflate, PS3.5 A.5) counting bytes; raise BoundExceeded over ``limit``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    view = memoryview(data)[offset:]
    pos = 0
    while pos < len(view) or inflater.unconsumed_tail:
        chunk = inflater.unconsumed_tail or bytes(view[pos:pos + _CHUNK])
        if not inflater.unconsumed_tail:
            pos += _CHUNK
        total += len(inflater.decompress(chunk, _CHUNK))
        if total > limit:
            raise BoundExceeded("too_large", f"the deflated data set inflates to more than {limit} bytes")
        if inflater.eof:
            break
    return total


def check_nesting(ds: Dataset, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Convert every element (so bad values raise here, not later) and bound sequence depth, iteratively."""
    stack: list[tuple[Dataset, int]] = [(ds, 0)]
    while stack:
        current, depth = stack.pop()
        for tag in list(current.keys()):
            elem = current[tag]  # converts a raw element: an unknown VR or a bad value raises now
            if elem.VR != "SQ":
                continue
            if depth + 1 > max_depth:
                raise BoundExceeded("too_deep", f"sequences nested more than {max_depth} deep")
            stack.extend((item, depth + 1) for item in elem.value or [])


def _items(buffer: bytes, little: bool) -> Iterator[bytes]:
    """The items of an encapsulated Pixel Data value: the Basic Offset Table first, then the fragments."""
    fmt = "<HHL" if little else ">HHL"
    pos = 0
    while pos + 8 <= len(buffer):
        group, element, length = struct.unpack_from(fmt, buffer, pos)
        pos += 8
        if (group, element) == (0xFFFE, 0xE0DD):
            return
        if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            raise ValueError(f"unexpected tag ({group:04X},{element:04X}) in encapsulated pixel data")
        yield buffer[pos:pos + length]
        pos += length


def first_fragment(pixel_data: bytes, little: bool = True) -> bytes:
    items = _items(pixel_data, little)
    next(items, None)  # Basic Offset Table
    return next(items, b"")


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_NO_LENGTH = set(range(0xD0, 0xDA)) | {0x01}


def _jpeg_size(stream: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) from the first SOF marker of a JPEG / JPEG-LS stream."""
    pos = 2  # after SOI
    while pos + 4 <= len(stream):
        if stream[pos] != 0xFF:
            return None
        marker = stream[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _NO_LENGTH:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", stream, pos + 2)
        if marker in _SOF and pos + 10 <= len(stream):
            rows, columns = struct.unpack_from(">HH", stream, pos + 5)
            return rows, columns, stream[pos + 9]
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def codestream_size(fragment: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) a compressed frame declares, or None when no header is recognised.

    JPEG / JPEG-LS: the SOF marker; JPEG 2000 / HTJ2K: the SIZ marker of the codestream (also inside a JP2
    box wrapper). The decoder sizes its output from these values, not from Rows/Columns.
    """
    head = fragment[:65536]
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    siz = head.find(b"\xff\x4f\xff\x51")
    if siz >= 0 and siz + 42 <= len(head):
        xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">LLLL", head, siz + 8)
        (components,) = struct.unpack_from(">H", head, siz + 40)
        return ysiz - yosiz, xsiz - xosiz, components
    return None


def rle_segments_within(frame: bytes, segment_bytes: int, expected_segments: int) -> None:
    """Raise ValueError unless the RLE frame has the expected segments, each decoding to at most
    ``segment_bytes`` (+1 pad byte): counted run by run, nothing decoded."""
    if len(frame) < 64:
        raise ValueError("RLE header shorter than 64 bytes")
    header = struct.unpack_from("<16L", frame, 0)
    count = header[0]
    if count != expected_segments:
        raise ValueError(f"RLE frame has {count} segments, header implies {expected_segments}")
    offsets = [*header[1:count + 1], len(frame)]
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        if not 64 <= start <= end <= len(frame):
            raise ValueError("RLE segment offsets out of order")
        _rle_count(frame, start, end, segment_bytes + 1)


def _rle_count(src: bytes, pos: int, end: int, limit: int) -> None:
    out = 0
    while pos < end:
        n = src[pos]
        if n > 128:  # replicate the next byte 257 - n times
            out += 257 - n
            pos += 2
        elif n < 128:  # copy the next n + 1 bytes
            out += n + 1
            pos += n + 2
        else:  # 128: no-op
            pos += 1
        if out > limit:
            raise BoundExceeded("too_large", f"an RLE segment decodes to more than {limit} bytes")


_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def data_set_start(data: bytes) -> tuple[int, bool, bool] | None:
    """(offset, little endian, implicit VR) of the data set after the file meta; None when deflated or
    unreadable (a file without meta is read as implicit VR little endian, as pydicom does)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return 0, True, True
    try:
        fp = io.BytesIO(data)
        read_preamble(fp, False)
        ts = _read_file_meta_info(fp).get("TransferSyntaxUID")
    except Exception:  # noqa: BLE001 - the full parse judges a bad meta
        return None
    if ts == DeflatedExplicitVRLittleEndian:
        return None  # bounded by the inflated size instead
    return fp.tell(), ts != ExplicitVRBigEndian, ts == ImplicitVRLittleEndian


def count_elements(data: bytes, limit: int = DEFAULT_MAX_ELEMENTS) -> int:
    """Count element and item headers of the data set, descending into sequences and stepping over values;
    raise BoundExceeded past ``limit``. Stops quietly at anything it cannot follow (the parser judges it)."""
    start = data_set_start(data)
    if start is None:
        return 0
    pos, little, implicit = start
    order = "<" if little else ">"
    fragments = False  # inside undefined-length pixel data: items are fragments to step over
    count = 0
    while pos + 8 <= len(data):
        count += 1
        if count > limit:
            raise BoundExceeded("too_large", f"more than {limit} data elements")
        group, element = struct.unpack_from(order + "HH", data, pos)
        if group == 0xFFFE:
            (length,) = struct.unpack_from(order + "L", data, pos + 4)
            pos += 8
            if element == 0xE0DD:
                fragments = False
            elif fragments and element == 0xE000 and length != 0xFFFFFFFF:
                pos += length
            continue
        if implicit:
            (length,) = struct.unpack_from(order + "L", data, pos + 4)
            pos += 8
            try:
                sequence = dictionary_VR((group << 16) | element) == "SQ"
            except KeyError:
                sequence = length == 0xFFFFFFFF
        else:
            vr = data[pos + 4:pos + 6]
            if vr in _LONG_VRS:
                if pos + 12 > len(data):
                    break
                (length,) = struct.unpack_from(order + "L", data, pos + 8)
                pos += 12
            else:
                (length,) = struct.unpack_from(order + "H", data, pos + 6)
                pos += 8
            sequence = vr == b"SQ" or (vr == b"UN" and length == 0xFFFFFFFF)
        if length == 0xFFFFFFFF:
            fragments = not sequence
        elif not sequence:
            pos += length
    return count
