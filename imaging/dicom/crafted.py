"""Crafted hostile DICOM files, built with pydicom, for the import's attack tests (issue 14, part 4).

Each builder returns the bytes of a file that once crashed the import or exhausted its memory: empty Pixel
Data, big endian with undefined lengths, an unknown VR inside a sequence item, sequences nested hundreds
deep, a deflate bomb, an RLE bomb, a JPEG whose frame header claims a huge image, a DICOMDIR and an SR.
Every identifier made here is fictitious.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

from imaging.dicom.synthetic import make_secondary_capture_cxr, to_bytes

_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def _meta(ds: Dataset, transfer_syntax: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.1")
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generate_uid())
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128


def _header_only(png: Path, rows: int = 512, columns: int = 512, bits: int = 8) -> Dataset:
    ds = make_secondary_capture_cxr(png, pixel_data=False, private_tags=False)
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    return ds


def _meta_bytes(ds: Dataset) -> bytes:
    """Preamble, DICM and the file meta group of ``ds`` (as pydicom writes them)."""
    full = to_bytes(ds)
    meta_end = 132 + 12 + struct.unpack_from("<L", full, 132 + 8)[0]
    return full[:meta_end]


def _explicit_le(ds: Dataset) -> bytes:
    """The data set alone, explicit VR little endian (no meta)."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def empty_pixel_data(png: Path) -> bytes:
    """A chest image whose Pixel Data element is present with length 0 (pydicom reads its value as None)."""
    ds = make_secondary_capture_cxr(png)
    ds.PixelData = b""
    return to_bytes(ds)


def big_endian_undefined_length(png: Path) -> bytes:
    """Explicit VR Big Endian ending in an undefined-length sequence (Digital Signatures Sequence, after the
    Pixel Data) whose items run to the end of the file: pydicom's item reader raises OSError."""
    ds = make_secondary_capture_cxr(png, bits_stored=12, private_tags=False)
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    body = to_bytes(ds)
    sequence = struct.pack(">HH2sHL", 0xFFFA, 0xFFFA, b"SQ", 0, 0xFFFFFFFF)
    item = struct.pack(">HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + struct.pack(">HHL", 0xFFFE, 0xE00D, 0)
    return body + sequence + item + b"\x00\x01"


def unknown_vr_in_sequence(png: Path) -> bytes:
    """A defined-length sequence item holding an element with the VR 'ZZ' (pydicom converts it lazily)."""
    ds = make_secondary_capture_cxr(png)
    item = Dataset()
    item.CodeValue = "51185008"
    ds.AnatomicRegionSequence = Sequence([item])
    data = to_bytes(ds)
    marker = b"\x08\x00\x00\x01SH"  # (0008,0100) Code Value, explicit VR 'SH'
    at = data.index(marker)
    return data[:at + 4] + b"ZZ" + data[at + 6:]


def nested_sequences(png: Path, depth: int = 300) -> bytes:
    """``depth`` sequences nested inside each other, undefined lengths (pydicom parses them eagerly)."""
    ds = make_secondary_capture_cxr(png, private_tags=False)
    data = to_bytes(ds)
    open_one = struct.pack("<HH2sHL", 0x0008, 0x2218, b"SQ", 0, 0xFFFFFFFF) + _ITEM + b"\xff\xff\xff\xff"
    nest = open_one * depth + (_ITEM_END + _SEQ_END) * depth
    at = data.index(b"\x08\x00\x60\x00")  # before (0008,0060) Modality: tags stay in ascending order
    return data[:at] + nest + data[at:]


def deflate_bomb(png: Path, inflated_bytes: int = 1 << 30) -> bytes:
    """Deflated Explicit VR Little Endian whose data set inflates to about ``inflated_bytes``: a private OB
    of zeros after the Pixel Data, about 1 MB on disk per GB inflated. Built streaming."""
    ds = _header_only(png)
    ds.PixelData = b"\x00" * (512 * 512)
    _meta(ds, DeflatedExplicitVRLittleEndian)
    head = _meta_bytes(ds)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [compressor.compress(_explicit_le(ds))]
    creator = b"BOMB"
    parts.append(compressor.compress(struct.pack("<HH2sH", 0x7FE1, 0x0010, b"LO", len(creator)) + creator))
    parts.append(compressor.compress(struct.pack("<HH2sHL", 0x7FE1, 0x1001, b"OB", 0, inflated_bytes)))
    zeros = b"\x00" * (1 << 20)
    left = inflated_bytes
    while left > 0:
        parts.append(compressor.compress(zeros[:min(left, len(zeros))]))
        left -= len(zeros)
    parts.append(compressor.flush())
    return head + b"".join(parts)


def rle_bomb(png: Path, rows: int = 512, columns: int = 512, segment_bytes: int = 1 << 20) -> bytes:
    """RLE Lossless, one 8-bit segment of ``segment_bytes`` replicate runs (128 output bytes per 2 input
    bytes): a 1 MB segment decodes to 64 MB for a 512 x 512 image."""
    ds = _header_only(png, rows, columns)
    runs = b"\x81\x00" * (segment_bytes // 2)
    frame = struct.pack("<16L", 1, 64, *([0] * 14)) + runs
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    return to_bytes(ds)


def rle_huge_dims(png: Path, rows: int = 6000, columns: int = 6000) -> bytes:
    """RLE Lossless, 16-bit, declared ``rows`` x ``columns`` (72 MB decoded at 6000 x 6000) from ~1 MB; a
    valid stream (a flat image), so below the size limits it is a legitimate worst case."""
    ds = _header_only(png, rows, columns, bits=16)
    rest = columns % 128  # a replicate run of n bytes is the header 257 - n (2 <= n <= 128)
    row = b"\x81\x00" * (columns // 128) + (bytes([257 - rest, 0]) if rest > 1 else b"\x00\x00" * rest)
    segment = row * rows
    frame = struct.pack("<16L", 2, 64, 64 + len(segment), *([0] * 13)) + segment + segment
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    return to_bytes(ds)


def jpeg_header_bomb(png: Path, claimed: tuple[int, int] = (60000, 60000)) -> bytes:
    """JPEG baseline whose frame header (SOF0) claims ``claimed`` rows x columns; the DICOM header says
    512 x 512. The decoder sizes its output from the SOF."""
    ds = _header_only(png)
    buf = io.BytesIO()
    Image.new("L", (16, 16)).save(buf, format="JPEG", quality=90)
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, *claimed)
    ds.PixelData = encapsulate([bytes(jpeg)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return to_bytes(ds)


def dicomdir() -> bytes:
    """A minimal DICOMDIR (Media Storage Directory) with one patient record."""
    ds = Dataset()
    ds.FileSetID = "CXR"
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    record = Dataset()
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = 0xFFFF
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = "PATIENT"
    record.PatientID = "PID-DIR-FAKE"
    ds.DirectoryRecordSequence = Sequence([record])
    ds.SOPClassUID = "1.2.840.10008.1.3.10"
    ds.SOPInstanceUID = generate_uid()
    _meta(ds, ExplicitVRLittleEndian)
    del ds.SOPClassUID, ds.SOPInstanceUID
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def structured_report() -> bytes:
    """A Basic Text SR with one text item: a DICOM object with no image."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.PatientID = "PID-SR-FAKE"
    ds.ValueType = "CONTAINER"
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.TextValue = "No acute cardiopulmonary process."
    ds.ContentSequence = Sequence([item])
    _meta(ds, ExplicitVRLittleEndian)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def broken_voi_lut(png: Path) -> bytes:
    """A valid image whose VOI LUT declares 4096 entries and holds 10: decoding works, rendering fails."""
    ds = make_secondary_capture_cxr(png, private_tags=False)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new(0x00283006, "US", [0] * 10)  # LUT Data
    ds.VOILUTSequence = Sequence([item])
    return to_bytes(ds)


#: Builders that need the chest PNG, by attack name (DICOMDIR and SR need none).
IMAGE_ATTACKS = {
    "empty_pixel_data": empty_pixel_data,
    "big_endian_undefined_length": big_endian_undefined_length,
    "unknown_vr_in_sequence": unknown_vr_in_sequence,
    "nested_sequences": nested_sequences,
    "deflate_bomb": deflate_bomb,
    "rle_bomb": rle_bomb,
    "rle_huge_dims": rle_huge_dims,
    "jpeg_header_bomb": jpeg_header_bomb,
    "broken_voi_lut": broken_voi_lut,
}


def element_bomb(png: Path, elements: int = 200_000) -> bytes:
    """``elements`` empty private LO elements (8 bytes each) in groups 0009-000F: ~1.6 MB on disk, ~300 bytes
    each once pydicom has parsed them."""
    data = to_bytes(make_secondary_capture_cxr(png, private_tags=False))
    at = data.index(b"\x10\x00\x10\x00")  # (0010,0010): the empty elements go between groups 0008 and 0010
    headers = []
    for group in (0x0009, 0x000B, 0x000D, 0x000F):
        for element in range(0x1000, 0x10000):
            if len(headers) == elements:
                break
            headers.append(struct.pack("<HH2sH", group, element, b"LO", 0))
    return data[:at] + b"".join(headers) + data[at:]


IMAGE_ATTACKS["element_bomb"] = element_bomb
