"""Names Windows shows in the display language of the host or guest (``ui_culture``).

Hyper-V's integration-service names and Windows Firewall group names are display names: a host or
image installed in German shows German ones, and a script that selects them by their English name fails
there (HyperVDsc#76, MSLab#422). What does not change with the language are the ids: an integration
component's GUID (the tail of ``VMIntegrationComponent.Id``, ``Microsoft:<VMId>\\<GUID>``) and a firewall
group's indirect string (``@FirewallAPI.dll,-28752``). The simulator keys its state by the English name and
shows the localized one; texts not seen in a public transcript are marked unconfirmed.
"""

from __future__ import annotations

from dataclasses import dataclass

CULTURES = ("en-US", "de-DE")
DEFAULT_CULTURE = "en-US"

# OEM code page of each display language's default system locale ([Console]::OutputEncoding in a
# console or remoting session): what native programs' output is decoded with.
OEM_CODE_PAGES = {"en-US": 437, "de-DE": 850}


def check_culture(culture: str) -> str:
    """The culture name as Windows spells it, or ValueError naming the ones modelled."""
    for known in CULTURES:
        if known.lower() == str(culture).lower():
            return known
    raise ValueError(f"ui_culture {culture!r} is not modelled; use one of {', '.join(CULTURES)}")


@dataclass(frozen=True)
class IntegrationComponent:
    """One Hyper-V integration service: its locale-independent GUID and its display names."""

    key: str  # the English name, the simulator's state key
    guid: str
    names: dict[str, str]

    def name(self, culture: str) -> str:
        return self.names.get(culture, self.key)


# GUIDs as Get-VMIntegrationService reports them in Id (Microsoft:<VMId>\<GUID>); the same on every host.
# German names: Gastdienstschnittstelle (HyperVDsc#76, MSLab#422) and Takt (LabBuilder#183) seen in
# transcripts; the other German names are unconfirmed.
INTEGRATION_COMPONENTS = (
    IntegrationComponent("Guest Service Interface", "6C09BB55-D683-4DA0-8931-C9BF705F6480",
                         {"de-DE": "Gastdienstschnittstelle"}),
    IntegrationComponent("Heartbeat", "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47",
                         {"de-DE": "Takt"}),
    IntegrationComponent("Key-Value Pair Exchange", "2A34B1C2-FD73-4043-8A5B-DD2159BC743F",
                         {"de-DE": "Austausch von Schlüsselwertepaaren"}),
    IntegrationComponent("Shutdown", "9F8233AC-BE49-4C79-8EE3-E7E1985B2077",
                         {"de-DE": "Herunterfahren"}),
    IntegrationComponent("Time Synchronization", "2497F4DE-E9FA-4204-80E4-4B75C46419C0",
                         {"de-DE": "Zeitsynchronisierung"}),
    IntegrationComponent("VSS", "5CED1297-4598-4915-A5FC-AD21BB4D02A4",
                         {"de-DE": "Sicherung (Volumeschattenkopie)"}),
)
_BY_KEY = {c.key: c for c in INTEGRATION_COMPONENTS}


def component(key: str) -> IntegrationComponent:
    """The component of a state key (an unknown key keeps its own name, a made-up GUID never)."""
    return _BY_KEY.get(key) or IntegrationComponent(key, "", {})


def component_by_id(component_id: str) -> IntegrationComponent | None:
    """The component an Id (``Microsoft:<VMId>\\<GUID>``) or a bare GUID names."""
    guid = str(component_id).rsplit("\\", 1)[-1].strip("{}").upper()
    return next((c for c in INTEGRATION_COMPONENTS if c.guid == guid), None)


@dataclass(frozen=True)
class FirewallGroup:
    """A Windows Firewall rule group: its indirect-string id and display names."""

    group_id: str
    names: dict[str, str]

    def name(self, culture: str) -> str:
        return self.names.get(culture) or self.names[DEFAULT_CULTURE]


# Ids from Microsoft's unattend reference (Networking-MPSSVC-Svc | FirewallGroups: Remote Desktop is
# @FirewallAPI.dll,-28752) and Get-NetFirewallRule's Group column; the German names are unconfirmed.
FIREWALL_GROUPS = (
    FirewallGroup("@FirewallAPI.dll,-28752", {"en-US": "Remote Desktop", "de-DE": "Remotedesktop"}),
    FirewallGroup("@FirewallAPI.dll,-30267", {"en-US": "Windows Remote Management",
                                              "de-DE": "Windows-Remoteverwaltung"}),
    FirewallGroup("@FirewallAPI.dll,-28502", {"en-US": "File and Printer Sharing",
                                              "de-DE": "Datei- und Druckerfreigabe"}),
)


def firewall_group(text: str, culture: str) -> FirewallGroup | None:
    """The group an answer file's ``<Group>`` names: its id, or its display name in the guest's language.

    A display name in another language names nothing: Windows skips that FirewallGroup.
    """
    wanted = text.strip().lower()
    for group in FIREWALL_GROUPS:
        if wanted == group.group_id.lower() or wanted == group.name(culture).lower():
            return group
    return None


def integration_not_found(culture: str, host_build: int) -> str:
    """Get-/Enable-VMIntegrationService -Name that matches no component: the message in that language.

    German from two transcripts: a 2016 host (PlagueHO/LabBuilder#183) prefixed it with "Ein Parameter ist
    ungültig." (An invalid parameter was specified), a 2021 one (tabs-not-spaces/Intune.HV.Tools#24) did not;
    where the prefix went is not known, so it is kept up to build 14393 (2016). The English text is their
    translation back (unconfirmed); the English prefix "A parameter is invalid." is seen on 2012 R2.
    """
    text = {
        "de-DE": "Es wurde keine Integrationskomponente mit dem angegebenen Namen gefunden.",
    }.get(culture, "No integration component with the given name was found.")
    if host_build <= 14393:
        text = ("Ein Parameter ist ungültig. " if culture == "de-DE" else "A parameter is invalid. ") \
            + text
    return text
