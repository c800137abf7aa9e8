"""The guest state machine on the real host model: first boot, setup failures, timing, persistence."""

from __future__ import annotations

import json
import time

from guest_world import MAC, make_vm, new_world
from unattend_samples import PASSWORD, VALID, document, shell_oobe, shell_specialize

from hvsim.guest.models import guest as G
from hvsim.guest.models.guest import ANSWER_FILE, SETUPACT_LOG, SETUPERR_LOG, Guest


def test_first_boot_applies_name_ip_password_and_settings() -> None:
    world = new_world()
    vm = make_vm(world)
    g = vm.guest
    assert g.setup == G.DONE
    assert g.heartbeat(world, vm) == "OkApplicationsHealthy"
    assert g.computer_name == "LAB-DC01"
    assert g.time_zone == "UTC"
    assert g.rdp_enabled is True
    assert g.authenticate("Administrator", PASSWORD)
    assert g.authenticate(".\\Administrator", PASSWORD)
    assert g.authenticate("lab-dc01\\administrator", PASSWORD)
    assert not g.authenticate("Administrator", "wrong")
    assert not g.authenticate("OTHER\\Administrator", PASSWORD)
    assert not g.authenticate("administrator@lab.local", PASSWORD)
    addrs = g.ip_addresses(world, vm, MAC)
    assert addrs[0] == "10.0.0.5"
    assert addrs[1].startswith("fe80::") and len(addrs) == 2
    assert g.ip_addresses(world, vm, "00-15-5D-38-01-00") == addrs


def test_instant_profile_still_accounts_modeled_durations() -> None:
    world = new_world()
    make_vm(world)
    modeled = world.clock.report()["modeled_seconds"]["dc01"]
    d = world.clock.durations
    assert modeled == d["boot_to_heartbeat"] + d["first_boot_specialize_oobe"]


def test_disconnected_adapter_reports_no_ip() -> None:
    world = new_world()
    vm = make_vm(world, switch=None)
    assert vm.guest.is_ready(world, vm)
    assert vm.guest.ip_addresses(world, vm, MAC) == []


def test_adapter_without_static_config_falls_back_to_apipa() -> None:
    world = new_world()
    other_mac = "00155D380199"
    vm = make_vm(world, mac=other_mac)  # the answer file configures 00-15-5D-38-01-00 only
    v4, ll = vm.guest.ip_addresses(world, vm, other_mac)
    assert v4.startswith("169.254.") and ll.startswith("fe80::")


def test_identifier_by_alias_configures_the_first_adapter() -> None:
    from unattend_samples import dns, rdp, tcpip

    xml = document(specialize=shell_specialize() + tcpip(mac="Ethernet") + dns(mac="Ethernet") + rdp())
    world = new_world()
    vm = make_vm(world, unattend=xml)
    assert vm.guest.ip_addresses(world, vm, MAC)[0] == "10.0.0.5"


def test_invalid_file_never_healthy_error_recorded_on_disk() -> None:
    world = new_world()
    vm = make_vm(world, unattend=document(specialize=shell_specialize("12345")))
    g = vm.guest
    assert g.setup == G.FAILED
    assert g.heartbeat(world, vm) == "NoContact"
    assert g.ip_addresses(world, vm, MAC) == []
    assert g.ps_direct_refusal(world, vm) is not None
    assert g.setup_error is not None and g.setup_error["pass"] == "specialize"
    assert "The answer file is invalid." in g.setup_error["message"]
    # Readable by a tool that stops the VM and mounts its disk, like on a real host.
    world.hv.stop(vm, turn_off=True)
    err = world.storage.read_file(vm.hard_drives[0], SETUPERR_LOG)
    act = world.storage.read_file(vm.hard_drives[0], SETUPACT_LOG)
    assert err is not None and act is not None
    assert b"for pass [specialize]. The answer file is invalid." in err
    assert b"hrResult = 0x80220005" in err
    assert b"SMI data results dump: Description = Value is invalid." in act
    # Setup fails again on the next boot: the dialog comes back, nothing heals by itself.
    world.hv.start(vm)
    assert g.setup == G.FAILED and g.heartbeat(world, vm) == "NoContact"


def test_missing_password_waits_at_oobe() -> None:
    world = new_world()
    vm = make_vm(world, unattend=document(oobe=shell_oobe(password_xml="")))
    g = vm.guest
    assert g.setup == G.OOBE_WAIT
    assert g.heartbeat(world, vm) == "OkApplicationsUnknown"
    assert g.ps_direct_refusal(world, vm) == "the guest waits at OOBE for input"
    assert g.computer_name == "LAB-DC01"  # specialize ran
    assert g.ip_addresses(world, vm, MAC) == []


def test_no_answer_file_waits_at_oobe_with_a_random_name() -> None:
    world = new_world()
    vm = make_vm(world, unattend=None)
    assert vm.guest.setup == G.OOBE_WAIT
    assert vm.guest.computer_name and vm.guest.computer_name.startswith("WIN-")
    assert len(vm.guest.computer_name) == 15


def test_random_computer_name_star() -> None:
    world = new_world()
    vm = make_vm(world, unattend=document(specialize=shell_specialize("*")))
    name = vm.guest.computer_name
    assert name and name.startswith("WIN-") and len(name) == 15


def test_not_sysprepped_base_boots_its_old_identity() -> None:
    world = new_world()
    base = world.storage.get_vhd("C:\\LabBases\\WS2019-Core.vhdx")
    assert base is not None and base.os is not None
    base.os["sysprepped"] = False
    base.os["computer_name"] = "OLDBOX"
    vm = make_vm(world, base="C:\\LabBases\\WS2019-Core.vhdx")
    g = vm.guest
    assert g.setup == G.LEGACY
    assert g.computer_name == "OLDBOX"
    assert g.heartbeat(world, vm) == "OkApplicationsHealthy"
    assert not g.authenticate("Administrator", PASSWORD)  # the answer file was never processed


def test_later_boots_do_not_rerun_passes() -> None:
    world = new_world()
    vm = make_vm(world)
    # Changing the answer file after setup has no effect: processed passes never run again.
    world.hv.stop(vm)
    world.storage.write_file(vm.hard_drives[0], ANSWER_FILE,
                             document(specialize=shell_specialize("OTHER")).encode())
    world.hv.start(vm)
    assert vm.guest.computer_name == "LAB-DC01"
    assert vm.guest.boot_count == 2
    d = world.clock.durations
    assert world.clock.report()["modeled_seconds"]["dc01"] == (
        2 * d["boot_to_heartbeat"] + d["first_boot_specialize_oobe"])


def test_restart_takes_guest_reboot() -> None:
    world = new_world()
    vm = make_vm(world)
    before = world.clock.report()["modeled_seconds"]["dc01"]
    world.hv.restart(vm)
    assert vm.guest.boot_count == 2
    assert world.clock.report()["modeled_seconds"]["dc01"] - before == world.clock.durations["guest_reboot"]
    assert vm.guest.heartbeat(world, vm) == "OkApplicationsHealthy"


def test_realistic_profile_progresses_through_heartbeat_states() -> None:
    world = new_world("realistic", speedup=1.0)
    # Shrink the modeled durations so the test runs fast, keeping the order of events.
    world.clock.durations.update(boot_to_heartbeat=0.15, first_boot_specialize_oobe=0.3, guest_reboot=0.2)
    vm = make_vm(world)
    g = vm.guest
    assert g.heartbeat(world, vm) == "NoContact"
    assert g.ip_addresses(world, vm, MAC) == []
    time.sleep(0.2)
    assert g.heartbeat(world, vm) == "OkApplicationsUnknown"
    assert g.ps_direct_refusal(world, vm) == "the guest has not finished booting"
    time.sleep(0.35)
    assert g.heartbeat(world, vm) == "OkApplicationsHealthy"
    assert g.ip_addresses(world, vm, MAC)[0] == "10.0.0.5"


def test_turning_off_during_first_boot_breaks_the_installation() -> None:
    world = new_world("realistic", speedup=1.0)
    world.clock.durations.update(boot_to_heartbeat=0.05, first_boot_specialize_oobe=5.0)
    vm = make_vm(world)
    world.hv.stop(vm, turn_off=True)
    world.hv.start(vm)
    g = vm.guest
    assert g.setup == G.FAILED
    assert g.setup_error is not None
    assert g.setup_error["message"].startswith("The computer restarted unexpectedly")


def test_save_mid_boot_resumes_the_remaining_time() -> None:
    world = new_world("realistic", speedup=1.0)
    world.clock.durations.update(boot_to_heartbeat=0.05, first_boot_specialize_oobe=0.3)
    vm = make_vm(world)
    world.hv.stop(vm, save=True)
    assert vm.state == "Saved"
    time.sleep(0.5)  # saved time does not count
    world.hv.start(vm)
    assert vm.guest.heartbeat(world, vm) != "OkApplicationsHealthy"
    time.sleep(0.4)
    assert vm.guest.heartbeat(world, vm) == "OkApplicationsHealthy"


def test_heartbeat_service_disabled() -> None:
    world = new_world()
    vm = make_vm(world)
    vm.integration_services["Heartbeat"] = False
    assert vm.guest.heartbeat(world, vm) == "Disabled"


def test_state_roundtrip_keeps_hashes_not_passwords() -> None:
    world = new_world()
    vm = make_vm(world)
    state = vm.guest.to_state()
    text = json.dumps(state)
    assert PASSWORD not in text
    assert "salt" in state["accounts"]["administrator"]
    restored = Guest.from_state(json.loads(text))
    assert restored.authenticate("Administrator", PASSWORD)
    assert restored.computer_name == "LAB-DC01"
    assert restored.is_ready(world, vm)


def test_world_persistence_roundtrip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = new_world()
    world.state_dir = tmp_path
    vm = make_vm(world)
    world.save()
    assert PASSWORD.encode() not in (tmp_path / "state.json").read_bytes()
    from hvsim.world import World

    again = World.open(tmp_path, world.clock, world.faults, world.counters)
    vm2 = again.vms[vm.id]
    assert vm2.guest.authenticate("Administrator", PASSWORD)
    assert vm2.guest.heartbeat(again, vm2) == "OkApplicationsHealthy"


def test_answer_file_stays_in_panther_after_setup() -> None:
    world = new_world()
    vm = make_vm(world)
    assert world.storage.read_file(vm.hard_drives[0], ANSWER_FILE) == VALID.encode()


def test_identifier_must_be_dashed_or_an_alias() -> None:
    from unattend_samples import dns, rdp, tcpip

    xml = document(specialize=shell_specialize() + tcpip(mac="00155D380100") + dns(mac="00155D380100") + rdp())
    world = new_world()
    vm = make_vm(world, unattend=xml)
    assert vm.guest.ip_addresses(world, vm, MAC)[0].startswith("169.254.")
    log = world.storage.read_file(vm.hard_drives[0], SETUPACT_LOG) or b""
    assert b"no network interface matches Identifier [00155D380100]" in log


def test_discarding_a_saved_state_during_setup_breaks_the_installation() -> None:
    world = new_world("realistic", speedup=1.0)
    world.clock.durations.update(boot_to_heartbeat=0.05, first_boot_specialize_oobe=5.0)
    vm = make_vm(world)
    world.hv.stop(vm, save=True)
    world.hv.stop(vm)  # Stop-VM on a saved VM discards the saved state
    assert vm.state == "Off"
    world.hv.start(vm)
    assert vm.guest.setup == G.FAILED
    assert vm.guest.heartbeat(world, vm) == "NoContact"
