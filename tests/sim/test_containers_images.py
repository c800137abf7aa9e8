"""Images and isolation in simulated container hosts: the registry, pull/save/copy-from-guest/load with
counters, verify-isolation, isolation-demo."""

from __future__ import annotations

import io
import json
import tarfile

from container_lab import BASE_2019, BASE_2025, NANO_2019, NANO_2022, NANO_2025, Lab
from guest_world import cred

from hvsim.docker.models import registry as R

# HCS refuses the compute system (Docker 23+ wording: microsoft/Windows-Containers#399, dr1rrb/docker-plex-win#4).
MISMATCH = ": The container operating system does not match the host operating system."
REFUSED = "docker: Error response from daemon: hcs::CreateComputeSystem "
NOT_INSTALLED = "The virtual machine could not be started because a required feature is not installed."
SHARED = "C:\\labctl\\images\\nanoserver-ltsc2022.tar"


def test_a_newer_image_cannot_be_pulled_and_latest_does_not_exist() -> None:
    lab = Lab()
    lab.vm("old", base=BASE_2019)
    lab.container_host("old")
    newer = lab.step("old", "image-pull", [NANO_2022])
    assert "no matching manifest for windows/amd64 10.0.17763 in the manifest list entries" in newer.error_text
    cli = lab.docker("old", "pull", NANO_2022)
    assert cli.get("ExitCode") == 1
    assert cli.get("Output") == ["ltsc2022: Pulling from windows/nanoserver"]
    assert cli.get("Error") == ["no matching manifest for windows/amd64 10.0.17763 in the manifest list entries"]
    latest = lab.docker("old", "pull", "mcr.microsoft.com/windows/servercore")
    assert latest.get("Output") == ["Using default tag: latest"]
    assert latest.get("Error") == ["Error response from daemon: manifest for mcr.microsoft.com/windows/servercore:"
                                   "latest not found: manifest unknown: manifest tagged by \"latest\" is not found"]
    run = lab.docker("old", "run", "--rm", NANO_2025, "cmd", "/c", "ver")
    assert run.get("ExitCode") == 125
    assert run.get("Error")[1] == "ltsc2025: Pulling from windows/nanoserver"
    assert run.get("Error")[-2:] == ["docker: no matching manifest for windows/amd64 10.0.17763 in the manifest list "
                                     "entries.", "See 'docker run --help'."]
    assert lab.world.counters.get("registry:bytes") == 0


def test_image_pull_is_idempotent_and_counted() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    first = lab.step("h1", "image-pull", [NANO_2022, NANO_2019]).one
    assert first.get("Changed") is True
    images = first.get("Facts")["Images"]
    assert [(i["Name"], i["OsVersion"], i["Size"]) for i in images] == [
        (NANO_2022, "10.0.20348.2849", 297_000_000), (NANO_2019, "10.0.17763.6532", 258_000_000)]
    assert all(i["Id"].startswith("sha256:") for i in images)
    assert lab.step("h1", "image-pull", [NANO_2022, NANO_2019]).one.get("Changed") is False
    by_build = lab.docker("h1", "pull", "mcr.microsoft.com/windows/nanoserver:10.0.20348.2849").get("Output")
    assert "Pull complete" not in "\n".join(by_build)  # the same image as ltsc2022: nothing downloaded
    assert lab.world.counters.get(f"registry:pulls:{R.NANOSERVER}:ltsc2022") == 1
    assert lab.world.counters.get("registry:bytes") == 555_000_000
    d = lab.world.clock.durations
    assert lab.world.clock.report()["modeled_seconds"]["h1"] >= 2 * d["image_pull_nanoserver"]


def test_four_guests_download_each_base_image_once() -> None:
    """The lab pulls on one guest, saves, copies to the host and loads the tar into the other three."""
    lab = Lab()
    names = [f"h{i}" for i in range(4)]
    for i, name in enumerate(names):
        lab.vm(name, index=i)
        lab.container_host(name)
    assert lab.step("h0", "image-pull", [NANO_2022]).one.get("Changed") is True
    saved = lab.step("h0", "image-save", NANO_2022, SHARED).one
    assert saved.get("Facts") == {"Path": SHARED, "Size": 297_000_000}
    assert lab.step("h0", "image-save", NANO_2022, SHARED).one.get("Changed") is False
    lab.world.storage.mkdirs("C:\\LabShare")
    copied = lab.host_step("copy-from-guest", "h0", cred(), SHARED, "C:\\LabShare\\").one
    assert copied.get("Changed") is True
    host_path = "C:\\LabShare\\nanoserver-ltsc2022.tar"
    assert copied.get("Facts")["Destination"] == host_path
    assert lab.host_step("copy-from-guest", "h0", cred(), SHARED, host_path).one.get("Changed") is False
    data = lab.world.storage.read(lab.world.storage.resolve(host_path))
    assert data is not None
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:  # a real docker-save layout
        f = tf.extractfile("manifest.json")
        assert f is not None
        manifest = json.loads(f.read())
    assert manifest[0]["RepoTags"] == [NANO_2022]
    for name in names[1:]:
        vm = lab.get_vm(name)
        lab.world.storage.write_file(vm.hard_drives[0], SHARED[2:], data)  # Copy-VMFile host -> guest
        loaded = lab.step(name, "image-load", NANO_2022, SHARED).one
        assert loaded.get("Changed") is True
        assert lab.step(name, "image-load", NANO_2022, SHARED).one.get("Changed") is False
        assert lab.step(name, "image-pull", [NANO_2022]).one.get("Changed") is False
        ok = lab.docker(name, "run", "--rm", NANO_2022, "cmd", "/c", "ver")
        assert ok.get("Output")[-1] == "Microsoft Windows [Version 10.0.20348.2849]"
    ids = {lab.step(n, "image-load", NANO_2022, SHARED).one.get("Facts")["Id"] for n in names}
    assert len(ids) == 1  # the same image everywhere
    assert lab.world.counters.get(f"registry:pulls:{R.NANOSERVER}:ltsc2022") == 1
    assert lab.world.counters.get("registry:bytes") == 297_000_000


def test_copy_from_guest_refuses_like_powershell() -> None:
    lab = Lab()
    lab.vm("h1")
    wrong = lab.host_step("copy-from-guest", "h1", cred(password="nope"), "C:\\x.tar", "C:\\")
    assert wrong.errors[0].message == "The credential is invalid."
    assert wrong.errors[0].fqid == "PSSessionOpenFailed"
    missing = lab.host_step("copy-from-guest", "h1", cred(), "C:\\labctl\\nothing.tar", "C:\\")
    assert missing.errors[0].message == "Cannot find path 'C:\\labctl\\nothing.tar' because it does not exist."
    assert missing.errors[0].fqid == "PathNotFound,Microsoft.PowerShell.Commands.CopyItemCommand"
    nobody = lab.host_step("copy-from-guest", "ghost", cred(), "C:\\x.tar", "C:\\")
    assert nobody.errors[0].fqid == "InvalidVMNameNotSingle,Microsoft.PowerShell.Commands.NewPSSessionCommand"
    other = lab.run("Invoke-Command", [("ScriptBlock", __import__("hvsim.powershell.values", fromlist=["ScriptBlock"])
                                        .ScriptBlock("# labctl-host-step: format-disk 1\n"))])
    assert other.errors[0].fqid.startswith("ParameterSetNotModelled")


def test_verify_isolation_reports_both_isolations() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    lab.step("h1", "image-pull", [NANO_2022, NANO_2019])
    same = lab.step("h1", "verify-isolation", NANO_2022).one
    assert same.get("Changed") is False
    facts = same.get("Facts")
    assert facts["Process"]["Ok"] and facts["HyperV"]["Ok"]
    assert facts["Process"]["Output"] == "Microsoft Windows [Version 10.0.20348.2849]"
    d = lab.world.clock.durations
    assert facts["HyperV"]["Seconds"] == d["container_start_hyperv"]
    older = lab.step("h1", "verify-isolation", NANO_2019).one.get("Facts")
    assert older["Process"]["Ok"] is False and MISMATCH in older["Process"]["Error"]
    assert older["Process"]["Error"].startswith(REFUSED)
    assert older["HyperV"]["Ok"] is True  # an older image runs in its own utility VM
    assert older["HyperV"]["Output"] == "Microsoft Windows [Version 10.0.17763.6532]"
    assert lab.docker("h1", "ps", "-a").get("Output") == [
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES"]  # --rm left nothing


def test_hyperv_isolation_without_the_feature_is_refused() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1", hyperv=False)
    res = lab.docker("h1", "run", "--rm", "--isolation=hyperv", NANO_2022, "cmd", "/c", "ver")
    assert res.get("ExitCode") == 125
    assert res.get("Error")[-1].startswith(REFUSED)
    assert NOT_INSTALLED in res.get("Error")[-1]
    facts = lab.step("h1", "verify-isolation", NANO_2022).one.get("Facts")
    assert facts["Process"]["Ok"] is True and facts["HyperV"]["Ok"] is False


def test_ws2025_runs_ltsc2022_process_isolated_but_not_ltsc2019() -> None:
    lab = Lab()
    lab.vm("new", base=BASE_2025)
    lab.container_host("new")
    ok = lab.docker("new", "run", "--rm", "--isolation=process", NANO_2022, "cmd", "/c", "ver")
    assert ok.get("ExitCode") == 0
    assert ok.get("Output")[-1] == "Microsoft Windows [Version 10.0.26100.2314]"  # the host kernel
    refused = lab.docker("new", "run", "--rm", "--isolation=process", NANO_2019, "cmd", "/c", "ver")
    assert refused.get("ExitCode") == 125 and MISMATCH in refused.get("Error")[-1]


def test_isolation_demo_rows() -> None:
    lab = Lab()
    lab.vm("new", base=BASE_2025)
    lab.container_host("new")
    demo = lab.step("new", "isolation-demo", NANO_2025, NANO_2019).one
    facts = demo.get("Facts")
    assert facts["GuestBuild"] == 26100
    rows = {(r.get("Image"), r.get("Isolation")): r for r in facts["Rows"]}
    assert list(rows) == [(NANO_2025, "process"), (NANO_2025, "hyperv"), (NANO_2019, "process"), (NANO_2019, "hyperv")]
    d = lab.world.clock.durations
    same_p, same_h = rows[(NANO_2025, "process")], rows[(NANO_2025, "hyperv")]
    assert (same_p.get("Ok"), same_p.get("KernelBuild"), same_p.get("VisibleInGuest"), same_p.get("MemoryOverheadMB"),
            same_p.get("StartSeconds")) == (True, 26100, True, 0, d["container_start_process"])
    assert (same_h.get("Ok"), same_h.get("KernelBuild"), same_h.get("VisibleInGuest"),
            same_h.get("StartSeconds")) == (True, 26100, False, d["container_start_hyperv"])
    assert same_h.get("MemoryOverheadMB") > 100
    old_p, old_h = rows[(NANO_2019, "process")], rows[(NANO_2019, "hyperv")]
    assert old_p.get("Ok") is False and MISMATCH in old_p.get("Error") and old_p.get("KernelBuild") is None
    assert old_p.get("Error").startswith(REFUSED)  # no pull progress
    assert (old_h.get("Ok"), old_h.get("KernelBuild"), old_h.get("Error")) == (True, 17763, None)
    assert demo.get("Changed") is True  # it pulled both images
    assert lab.step("new", "isolation-demo", NANO_2025, NANO_2019).one.get("Changed") is False


def test_docker_save_and_load_through_the_cli() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    lab.docker("h1", "pull", NANO_2022)
    assert lab.docker("h1", "save", "-o", "C:\\t\\n.tar", NANO_2022).get("ExitCode") == 0
    assert lab.docker("h1", "rmi", NANO_2022).get("Output")[0] == f"Untagged: {NANO_2022}"
    loaded = lab.docker("h1", "load", "-i", "C:\\t\\n.tar")
    assert loaded.get("Output") == [f"Loaded image: {NANO_2022}"]
    missing = lab.docker("h1", "load", "-i", "C:\\t\\none.tar")
    assert missing.get("ExitCode") == 1
    assert missing.get("Error") == ["open C:\\t\\none.tar: The system cannot find the file specified."]


def test_copy_from_guest_needs_room_for_the_real_archive_on_the_host() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    lab.step("h1", "image-pull", [NANO_2022])
    lab.step("h1", "image-save", NANO_2022, SHARED)
    st = lab.world.storage
    st.mkdirs("C:\\LabShare")
    st.c_other_used += st.c_free - 100_000_000  # 100 MB left: the 297 MB archive does not fit
    full = lab.host_step("copy-from-guest", "h1", cred(), SHARED, "C:\\LabShare\\n.tar")
    assert full.errors[0].message == "There is not enough space on the disk."
    st.c_other_used -= 1_000_000_000
    free = st.c_free
    assert lab.host_step("copy-from-guest", "h1", cred(), SHARED, "C:\\LabShare\\n.tar").one.get("Changed")
    entry = st.stat(st.resolve("C:\\LabShare\\n.tar"))
    assert entry is not None and entry.size == 297_000_000
    assert free - st.c_free == 297_000_000


def test_image_layers_take_guest_disk_space_and_a_full_disk_refuses_a_pull() -> None:
    lab = Lab()
    vm = lab.vm("h1")
    lab.container_host("h1")
    st = lab.world.storage
    vhd = st.get_vhd(vm.hard_drives[0])
    assert vhd is not None
    before_inner, before_file = st.inner_free(vhd), vhd.file_size
    lab.step("h1", "image-pull", [NANO_2022])
    assert before_inner - st.inner_free(vhd) == 297_000_000  # the layers are in the guest's volume
    assert vhd.file_size - before_file >= 297_000_000  # and the differencing disk grew on C:
    # The host's C: nearly full: the servercore layers cannot be registered, as on a real guest.
    st.c_other_used += st.c_free - 50_000_000
    out = lab.docker("h1", "pull", "mcr.microsoft.com/windows/servercore:ltsc2022")
    assert out.get("ExitCode") == 1
    assert "failed to register layer: There is not enough space on the disk." in "\n".join(out.get("Error"))
    st.c_other_used -= 10_000_000_000
    # docker rmi gives the space back inside the guest (the VHD file does not shrink).
    inner_with_image = st.inner_free(vhd)
    assert lab.docker("h1", "rmi", NANO_2022).get("ExitCode") == 0
    assert st.inner_free(vhd) - inner_with_image == 297_000_000
