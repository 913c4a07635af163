"""discover.py: which files claim to be DICOM, by their bytes and their names, and what the others are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_dicomqc.discover import (
    LFS_POINTER_MAX_SIZE,
    LFS_POINTER_NOTE,
    Claim,
    claim_of,
    describe_non_dicom,
    is_folder,
    is_lfs_pointer_note,
    is_regular_file,
    lfs_pointer_size,
    printable,
    sorted_entries,
)
from tests.helpers import Runner, read_sheet

PREAMBLE = b"\x00" * 128 + b"DICM"


@pytest.mark.parametrize(
    ("head", "name", "claim"),
    [
        (PREAMBLE + b"\x02\x00", "anything.jpg", Claim.PREAMBLE),  # the marker wins over the name
        (b"\x00" * 128 + b"DICN", "x", Claim.NONE),
        (b"garbage", "x.dcm", Claim.EXTENSION),
        (b"garbage", "x.DCM", Claim.EXTENSION),
        (b"garbage", "x.dicom", Claim.EXTENSION),
        (b"garbage", "x.Dicom", Claim.EXTENSION),
        (b"garbage", "x.dic", Claim.EXTENSION),
        (b"garbage", "x.dcm.bak", Claim.NONE),
        (b"garbage", "dcm", Claim.NONE),
        # without preamble: explicit VR little endian, file meta group, VR "UL"
        (b"\x02\x00\x00\x00UL\x04\x00\x00\x00\x00\x00", "0001", Claim.HEADERLESS),
        # implicit VR little endian, group 0008, a plausible length
        (b"\x08\x00\x08\x00\x04\x00\x00\x00ABCD", "0001", Claim.HEADERLESS),
        # implicit VR big endian: the first byte order tried does not match, the second does
        (b"\x00\x08\x00\x08\x00\x00\x00\x04ABCD", "0001", Claim.HEADERLESS),
        # the length bound: below 64 KiB is a plausible first element, from 64 KiB on it is not
        (b"\x08\x00\x08\x00\xff\xff\x00\x00", "0001", Claim.HEADERLESS),
        (b"\x08\x00\x08\x00\x00\x00\x01\x00", "0001", Claim.NONE),
        # a VR must be two upper-case letters; "A1" is not one, and read as a length it is absurd
        (b"\x08\x00\x08\x00A1\xff\xff", "0001", Claim.NONE),
        (b"\x08\x00\x08\x001A\xff\xff", "0001", Claim.NONE),  # both bytes of the VR count
        (b"\x08\x00\x08\x00CS\xff\xff", "0001", Claim.HEADERLESS),
        (b"\x08\x00\x08\x00cs\xff\xff", "0001", Claim.NONE),
        # another group first: not a data set start
        (b"\x10\x00\x10\x00PN\x04\x00", "0001", Claim.NONE),
        # eight bytes are needed to tell; seven are not enough
        (b"\x08\x00\x08\x00\x04\x00\x00", "0001", Claim.NONE),
        (b"\x08\x00\x08\x00\x04\x00\x00\x00", "0001", Claim.HEADERLESS),
        (b"", "0001", Claim.NONE),
    ],
)
def test_claim_of(head: bytes, name: str, claim: Claim) -> None:
    assert claim_of(head, name) is claim


@pytest.mark.parametrize(
    ("head", "description"),
    [
        (b"", "empty file"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        (b"\x89PNG\r\n\x1a\n\x00", "PNG image"),
        (b"GIF89a", "GIF image"),
        (b"II*\x00\x08", "TIFF image"),
        (b"MM\x00*\x00", "TIFF image"),
        (b"BM\x00\x00", "BMP image"),
        (b"%PDF-1.7", "PDF document"),
        (b"PK\x03\x04\x14", "ZIP archive"),
        (b"\x1f\x8b\x08\x00", "gzip archive"),
        (b"\x93NUMPY\x01\x00", "NumPy array"),
        (b"\x00\x00\x00\x0cjP  \r\n", "JPEG 2000 image"),
        (b"\x00\x00\x00\x18ftypheic", "MP4/HEIF media"),
        (b"patient,label\nP1,0\n", "text file"),
        ("étiquette\n".encode(), "text file"),  # UTF-8, not only ASCII
        (b"\xe9tiquette\n", "unknown binary format"),  # Latin-1 is not UTF-8
        (b"\x00\x01\x02\xfe\xff", "unknown binary format"),
    ],
)
def test_describe_non_dicom(head: bytes, description: str) -> None:
    assert describe_non_dicom(head) == description


def test_printable_shows_bytes_that_are_not_utf8() -> None:
    assert printable("caf\udce9.dcm") == "caf\\xe9.dcm"
    assert printable("日本語.dcm") == "日本語.dcm"
    assert printable("scan 0001 (copy)-é.dcm") == "scan 0001 (copy)-é.dcm"  # ordinary names unchanged


@pytest.mark.skipif(os.sep == "\\", reason="a backslash separates folders on Windows: no name holds one")
def test_printable_tells_an_escaped_byte_from_a_backslash_in_the_name(tmp_path: Path) -> None:
    """The raw byte 0xE9 and the four characters backslash, x, e, 9 are two files: two node ids,
    two report rows. A backslash in a name is doubled, so the escaping reads back one way only."""
    try:
        (tmp_path / os.fsdecode(b"caf\xe9.dcm")).touch()
    except OSError:  # a file system that accepts only UTF-8 names (APFS): nothing to tell apart
        pytest.skip("file names must be UTF-8 here")
    (tmp_path / "caf\\xe9.dcm").touch()
    names = [printable(entry.name) for entry in sorted_entries(tmp_path)]
    assert sorted(names) == ["caf\\\\xe9.dcm", "caf\\xe9.dcm"]
    tricky = ["a\\\udce9", "a\\xe9", "a\\\\xe9", "a\udce9", "a\\"]
    assert len({printable(name) for name in tricky}) == len(tricky)
    assert printable("a\\b") == "a\\\\b"


LFS_OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
LFS_POINTER = f"version https://git-lfs.github.com/spec/v1\noid sha256:{LFS_OID}\nsize 12345\n".encode()


@pytest.mark.parametrize(
    ("content", "size"),
    [
        (LFS_POINTER, 12345),
        (LFS_POINTER.replace(b"\n", b"\r\n"), 12345),  # checked out with CRLF line ends
        (LFS_POINTER.replace(b"git-lfs.github.com", b"hawser.github.com"), 12345),  # pre-release pointers
        (LFS_POINTER.replace(b"oid", b"ext-0-foo sha256:" + b"1" * 64 + b"\noid"), 12345),  # with an extension
        (LFS_POINTER.replace(b"12345", b"0"), 0),
        (LFS_POINTER.rstrip(b"\n"), 12345),  # git-lfs trims the text
        (LFS_POINTER.replace(b"spec/v1", b"spec/v2"), None),  # an unknown version
        (LFS_POINTER.replace(b"sha256", b"sha1"), None),
        (LFS_POINTER.replace(LFS_OID.encode(), LFS_OID[:-1].encode()), None),  # 63 hex digits
        (LFS_POINTER.replace(b"12345", b"-1"), None),
        (LFS_POINTER.replace(b"size 12345\n", b""), None),  # size is required
        (LFS_POINTER + b"extra line\n", None),
        (LFS_POINTER.replace(b"version", b"Version"), None),
        (LFS_POINTER + b" " * (LFS_POINTER_MAX_SIZE - len(LFS_POINTER)), 12345),  # as large as a pointer gets
        (LFS_POINTER + b" " * (LFS_POINTER_MAX_SIZE + 1 - len(LFS_POINTER)), None),  # git-lfs's cutoff
        (b"version 1.2.3\n", None),  # a text file that happens to start like one
        (b"", None),
    ],
)
def test_lfs_pointer_size(content: bytes, size: int | None) -> None:
    assert lfs_pointer_size(content) == size


def test_lfs_pointer_note_is_recognised_in_a_notes_cell() -> None:
    assert is_lfs_pointer_note(LFS_POINTER_NOTE)
    assert is_lfs_pointer_note(f"{LFS_POINTER_NOTE}; something else")
    assert not is_lfs_pointer_note("text file")
    assert not is_lfs_pointer_note(None)
    assert "git lfs pull" in LFS_POINTER_NOTE


def test_every_dicom_extension_claims_dicom_in_a_run(run: Runner) -> None:
    """Bytes that cannot be parsed are ``unreadable`` (failed) under every DICOM extension, and
    ``non-dicom`` (skipped) under any other name: the README's kinds table, read back."""
    data = run.pytester.path / "data"
    data.mkdir()
    # no dataset checks, and no minimum of DICOM files (there is none here): the files' own outcomes only
    (run.pytester.path / "rules.yaml").write_text("version: 1\nmin_dicom_files: 0\nrules: []\n")
    for name in ("a.dcm", "b.DCM", "c.dicom", "d.dic", "e.txt", "f"):
        (data / name).write_bytes(b"not a data set\n")
    result = run("--dicom-dir=data")
    assert result.ret == 1
    outcomes = result.parseoutcomes()  # file items; dataset-level items (if any) pass without a minimum
    assert (outcomes.get("failed"), outcomes.get("skipped")) == (4, 2)
    rows = {
        row["path"]: (row["kind"], row["status"], row["error"])
        for row in read_sheet(run.pytester.path / "metadata_dicom.xlsx")
    }
    unreadable = (
        "unreadable",
        "failed",
        "not a valid DICOM file (DICOM file extension): no DICOM data elements found: empty or truncated data set"
        " (15 bytes); content looks like: text file",
    )
    assert rows == {
        "a.dcm": unreadable,
        "b.DCM": unreadable,
        "c.dicom": unreadable,
        "d.dic": unreadable,
        "e.txt": ("non-dicom", "skipped", None),
        "f": ("non-dicom", "skipped", None),
    }


def test_what_a_walk_takes_for_a_file_or_a_folder(tmp_path: Path) -> None:
    """Regular files and links to them are files; links to folders are not followed; FIFOs,
    broken and looping links are neither (reading a FIFO would block)."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.dcm").write_bytes(b"x")
    (tmp_path / "link-to-file").symlink_to("file.dcm")
    (tmp_path / "link-to-folder").symlink_to("folder")
    (tmp_path / "broken").symlink_to("nowhere")
    (tmp_path / "loop").symlink_to("loop")
    os.mkfifo(tmp_path / "pipe")
    entries = sorted_entries(tmp_path)
    assert [(e.name, is_folder(e), is_regular_file(e)) for e in entries] == [
        ("broken", False, False),
        ("file.dcm", False, True),
        ("folder", True, False),
        ("link-to-file", False, True),
        ("link-to-folder", False, False),
        ("loop", False, False),
        ("pipe", False, False),
    ]
    assert sorted_entries(tmp_path / "absent") == []


def test_printable_escapes_control_characters_in_names() -> None:
    """Issue 12: a newline in a file name split terminal and junitxml lines; a tab or ESC in a node
    id is no better. Escaped like an undecodable byte, and a backslash stays doubled, so two names
    never look the same."""
    assert printable("a\nb.dcm") == "a\\x0ab.dcm"
    assert printable("tab\there\x1b[31m.dcm") == "tab\\x09here\\x1b[31m.dcm"
    assert printable("del\x7f") == "del\\x7f"
    assert printable("a\\x0ab.dcm") == "a\\\\x0ab.dcm"  # the literal text, not the newline
    assert printable("plain name é.dcm") == "plain name é.dcm"
