"""Host storage model: base disks, VHD chains, locks, mounts, files through the chain, disk full."""

from __future__ import annotations

import pytest
from model_helpers import GB, MB, make_world

from hvsim.powershell.errors import PSError
from hvsim.storage import errors as SE

BASE = "C:\\LabBases\\WS2022-Core.vhdx"


def test_fresh_host_has_base_disks_and_configured_free_space() -> None:
    w = make_world()
    st = w.storage
    assert st.c_free == 200 * 1000**3
    assert st.c_size == 500 * 1000**3
    for path, build in (("C:\\LabBases\\WS2019-Core.vhdx", 17763), (BASE, 20348),
                        ("C:\\LabBases\\WS2025-Core.vhdx", 26100)):
        vhd = st.get_vhd(path)
        assert vhd is not None and 8 * GB < vhd.file_size < 10 * GB
        info = st.os_info(path)
        assert info is not None and info["build"] == build and info["sysprepped"] is True
        assert info["installation_type"] == "Server Core"


def test_configurable_volume() -> None:
    w = make_world(c_volume_size=100 * GB, c_volume_free=5 * GB, base_disks=False)
    assert w.storage.c_free == 5 * GB
    assert not w.storage.vhds


def test_differencing_child_inherits_os_and_reads_through_chain() -> None:
    w = make_world()
    st = w.storage
    st.mkdirs("C:\\Lab")
    child = st.new_vhd("C:\\Lab\\vm1.vhdx", "Differencing", parent_path=BASE)
    assert child.file_size == 4 * MB
    assert child.virtual_size == st.get_vhd(BASE).virtual_size  # type: ignore[union-attr]
    assert st.os_info(child.path)["build"] == 20348  # type: ignore[index]
    assert st.read_file(child.path, "\\Windows\\System32\\cmd.exe") is not None
    # Writes land in the child, never in the parent.
    st.write_file(child.path, "Windows/Panther/unattend.xml", b"<unattend/>")
    assert st.read_file(child.path, "\\WINDOWS\\panther\\UNATTEND.XML") == b"<unattend/>"
    assert st.read_file(BASE, "\\Windows\\Panther\\unattend.xml") is None
    assert child.file_size > 4 * MB
    # Deleting a parent's file in the child is a whiteout.
    assert st.delete_file(child.path, "\\Windows\\System32\\cmd.exe") is True
    assert st.read_file(child.path, "\\Windows\\System32\\cmd.exe") is None
    assert st.read_file(BASE, "\\Windows\\System32\\cmd.exe") is not None
    assert st.delete_file(child.path, "\\nope.txt") is False


def test_grandchild_chain() -> None:
    w = make_world()
    st = w.storage
    st.mkdirs("C:\\Lab")
    a = st.new_vhd("C:\\Lab\\a.vhdx", "Differencing", parent_path=BASE)
    st.write_file(a.path, "\\a.txt", b"A")
    b = st.new_vhd("C:\\Lab\\b.vhdx", "Differencing", parent_path=a.path)
    assert [v.path for v in st.chain(b)] == [b.path, a.path, BASE]
    assert st.read_file(b.path, "\\a.txt") == b"A"
    assert st.os_info(b.path)["release"] == "ltsc2022"  # type: ignore[index]


def test_new_vhd_errors() -> None:
    w = make_world()
    st = w.storage
    with pytest.raises(PSError) as e:
        st.new_vhd(BASE, "Dynamic", 10 * GB)
    assert "The file exists" in e.value.message
    with pytest.raises(PSError) as e:
        st.new_vhd("C:\\Lab\\x.vhdx", "Differencing", parent_path=BASE)
    assert "The system cannot find the path specified" in e.value.message
    st.mkdirs("C:\\Lab")
    with pytest.raises(PSError) as e:
        st.new_vhd("C:\\Lab\\x.vhdx", "Differencing", parent_path="C:\\nope.vhdx")
    assert e.value.message == "'C:\\nope.vhdx' is not an existing virtual hard disk file."
    assert e.value.error_id == "InvalidParameter" and e.value.category == "InvalidArgument"


def test_fixed_vhd_needs_space() -> None:
    w = make_world(c_volume_free=20 * GB)
    st = w.storage
    st.mkdirs("C:\\Lab")
    with pytest.raises(PSError) as e:
        st.new_vhd("C:\\Lab\\big.vhdx", "Fixed", 50 * GB)
    assert SE.DISK_FULL in e.value.message
    v = st.new_vhd("C:\\Lab\\small.vhdx", "Fixed", 5 * GB)
    assert v.file_size >= 5 * GB
    assert st.c_free < 15 * GB + 10 * MB


def test_parent_in_use_cannot_be_removed_while_child_is_open() -> None:
    w = make_world()
    st = w.storage
    st.mkdirs("C:\\Lab")
    child = st.new_vhd("C:\\Lab\\c.vhdx", "Differencing", parent_path=BASE)
    st.mount(child.path)
    with pytest.raises(PSError) as e:
        st.remove(st.resolve(BASE))
    assert e.value.message == (f"Cannot remove item {BASE}: The process cannot access the file '{BASE}' because it "
                               "is being used by another process.")
    assert e.value.error_id == "RemoveFileSystemItemIOError" and e.value.category == "WriteError"
    with pytest.raises(PSError):
        st.remove(st.resolve(child.path))
    st.dismount(child.path)
    # Closed, the parent can be deleted (as on Windows): the child's chain then breaks.
    st.remove(st.resolve(BASE))
    with pytest.raises(PSError) as e:
        st.mount(child.path)
    assert "cannot find the file" in e.value.message


def test_writing_to_parent_breaks_children() -> None:
    w = make_world()
    st = w.storage
    st.mkdirs("C:\\Lab")
    child = st.new_vhd("C:\\Lab\\c.vhdx", "Differencing", parent_path=BASE)
    st.mount(BASE)
    st.write_file(BASE, "\\changed.txt", b"x")
    st.dismount(BASE)
    with pytest.raises(PSError) as e:
        st.mount(child.path)
    assert "The chain of virtual hard disks is corrupted" in e.value.message


def test_mount_letters_and_disk_numbers() -> None:
    w = make_world()
    st = w.storage
    st.mkdirs("C:\\Lab")
    a = st.new_vhd("C:\\Lab\\a.vhdx", "Differencing", parent_path=BASE)
    b = st.new_vhd("C:\\Lab\\b.vhdx", "Differencing", parent_path=BASE)
    blank = st.new_vhd("C:\\Lab\\blank.vhdx", "Dynamic", 10 * GB)
    ma = st.mount(a.path)
    mb = st.mount(b.path)
    mblank = st.mount(blank.path)
    assert (ma.letter, ma.disk_number) == ("E", 1)
    assert (mb.letter, mb.disk_number) == ("F", 2)
    assert mblank.letter is None and mblank.disk_number == 3  # a blank disk has no partition
    with pytest.raises(PSError) as e:
        st.mount(a.path)
    assert SE.IN_USE in e.value.message
    st.dismount(a.path)
    mc = st.mount(a.path)
    assert (mc.letter, mc.disk_number) == ("E", 1)
    assert st.is_mounted(a.path)
    with pytest.raises(PSError):
        st.dismount("C:\\Lab\\nope.vhdx")


def test_files_on_mounted_drive_and_host() -> None:
    w = make_world()
    st = w.storage
    st.mkdirs("C:\\Lab")
    child = st.new_vhd("C:\\Lab\\c.vhdx", "Differencing", parent_path=BASE)
    m = st.mount(child.path)
    loc = st.resolve(f"{m.letter}:\\Windows\\Panther\\unattend.xml")
    st.write(loc, b"<xml/>")
    assert st.read_file(child.path, "\\Windows\\Panther\\unattend.xml") == b"<xml/>"
    assert st.stat(st.resolve(f"{m.letter}:\\Windows")).is_dir  # type: ignore[union-attr]
    names = [e.path for e in st.children(st.resolve(f"{m.letter}:\\Windows\\Panther"))]
    assert names == [f"{m.letter}:\\Windows\\Panther\\unattend.xml"]
    with pytest.raises(PSError) as e:
        st.write(st.resolve(f"{m.letter}:\\NoDir\\x.txt"), b"1")
    assert e.value.message.startswith("Could not find a part of the path")
    with pytest.raises(PSError) as e:
        st.resolve("Q:\\x")
    assert e.value.error_id == "DriveNotFound"
    st.write(st.resolve("C:\\Lab\\notes.txt"), b"hello")
    assert st.read(st.resolve("c:/lab/NOTES.txt")) == b"hello"


def test_disk_full_on_host_and_inside_vhd() -> None:
    w = make_world(c_volume_free=10 * MB)
    st = w.storage
    st.mkdirs("C:\\Lab")
    with pytest.raises(PSError) as e:
        st.write(st.resolve("C:\\Lab\\big.bin"), b"x" * (11 * MB))
    assert e.value.message == "There is not enough space on the disk."
    assert e.value.exception_type == "System.IO.IOException"
    st.write(st.resolve("C:\\Lab\\ok.bin"), b"x" * MB)

    w2 = make_world()
    st2 = w2.storage
    st2.mkdirs("C:\\Lab")
    tiny = st2.new_vhd("C:\\Lab\\tiny.vhdx", "Dynamic", 700 * MB)
    tiny.partitioned = True
    m = st2.mount(tiny.path)
    st2.write(st2.resolve(f"{m.letter}:\\a.bin"), b"1" * (40 * MB))
    with pytest.raises(PSError) as e:
        st2.write(st2.resolve(f"{m.letter}:\\b.bin"), b"1" * (40 * MB))
    assert e.value.message == "There is not enough space on the disk."


def test_read_only_mount_refuses_writes() -> None:
    w = make_world()
    st = w.storage
    m = st.mount(BASE, read_only=True)
    with pytest.raises(PSError) as e:
        st.write(st.resolve(f"{m.letter}:\\x.txt"), b"1")
    assert e.value.message == "The media is write protected."


def test_remove_directory_inside_vhd_hides_parent_content() -> None:
    w = make_world()
    st = w.storage
    st.mkdirs("C:\\Lab")
    child = st.new_vhd("C:\\Lab\\c.vhdx", "Differencing", parent_path=BASE)
    m = st.mount(child.path)
    st.remove(st.resolve(f"{m.letter}:\\Windows\\System32\\Sysprep"))
    assert st.stat(st.resolve(f"{m.letter}:\\Windows\\System32\\Sysprep")) is None
    assert st.read_file(BASE, "\\Windows\\System32\\Sysprep\\sysprep.exe") is not None
    assert st.read_file(child.path, "\\Windows\\System32\\Sysprep\\sysprep.exe") is None
