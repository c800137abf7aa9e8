"""Answer files for the guest-model tests: a valid one and the pieces to break it."""

from __future__ import annotations

from hvsim.guest.models.unattend import encode_password

COMP = ('processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" '
        'versionScope="nonSxS"')
NS = ('xmlns="urn:schemas-microsoft-com:unattend" '
      'xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State"')
PASSWORD = "P@ssw0rd!Lab"


def tcpip(mac: str = "00-15-5D-38-01-00", ip: str = "10.0.0.5/24", gateway: str = "10.0.0.1",
          order: tuple[str, ...] = ("Ipv4Settings", "Identifier", "UnicastIpAddresses", "Routes")) -> str:
    parts = {
        "Ipv4Settings": "<Ipv4Settings><DhcpEnabled>false</DhcpEnabled></Ipv4Settings>",
        "Identifier": f"<Identifier>{mac}</Identifier>",
        "UnicastIpAddresses": (f'<UnicastIpAddresses><IpAddress wcm:action="add" wcm:keyValue="1">{ip}'
                               "</IpAddress></UnicastIpAddresses>"),
        "Routes": ('<Routes><Route wcm:action="add"><Identifier>0</Identifier><Prefix>0.0.0.0/0</Prefix>'
                   f"<NextHopAddress>{gateway}</NextHopAddress></Route></Routes>"),
    }
    body = "".join(parts[p] for p in order)
    return (f'<component name="Microsoft-Windows-TCPIP" {COMP}><Interfaces>'
            f'<Interface wcm:action="add">{body}</Interface></Interfaces></component>')


def dns(mac: str = "00-15-5D-38-01-00", server: str = "10.0.0.1") -> str:
    return (f'<component name="Microsoft-Windows-DNS-Client" {COMP}><Interfaces><Interface wcm:action="add">'
            f'<DNSServerSearchOrder><IpAddress wcm:action="add" wcm:keyValue="1">{server}</IpAddress>'
            f"</DNSServerSearchOrder><Identifier>{mac}</Identifier></Interface></Interfaces></component>")


def shell_specialize(name: str = "LAB-DC01", extra: str = "") -> str:
    return (f'<component name="Microsoft-Windows-Shell-Setup" {COMP}><ComputerName>{name}</ComputerName>'
            f"<TimeZone>UTC</TimeZone>{extra}</component>")


def rdp(deny: str = "false") -> str:
    return (f'<component name="Microsoft-Windows-TerminalServices-LocalSessionManager" {COMP}>'
            f"<fDenyTSConnections>{deny}</fDenyTSConnections></component>")


def admin_password(password: str = PASSWORD, encoded: str | None = None, plain: bool = False) -> str:
    value = password if plain else (encoded if encoded is not None else encode_password(password))
    return (f"<UserAccounts><AdministratorPassword><Value>{value}</Value>"
            f"<PlainText>{'true' if plain else 'false'}</PlainText></AdministratorPassword></UserAccounts>")


def shell_oobe(password_xml: str | None = None, extra: str = "") -> str:
    pw = admin_password() if password_xml is None else password_xml
    return (f'<component name="Microsoft-Windows-Shell-Setup" {COMP}>{pw}'
            "<OOBE><HideEULAPage>true</HideEULAPage><SkipMachineOOBE>true</SkipMachineOOBE></OOBE>"
            f"{extra}</component>")


def intl() -> str:
    return (f'<component name="Microsoft-Windows-International-Core" {COMP}><InputLocale>en-US</InputLocale>'
            "<SystemLocale>en-US</SystemLocale><UILanguage>en-US</UILanguage><UserLocale>en-US</UserLocale>"
            "</component>")


def document(specialize: str | None = None, oobe: str | None = None, ns: str = NS,
             extra_settings: str = "") -> str:
    spec = specialize if specialize is not None else (shell_specialize() + tcpip() + dns() + rdp())
    oob = oobe if oobe is not None else (intl() + shell_oobe())
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<unattend {ns}>'
            f'<settings pass="specialize">{spec}</settings>'
            f'<settings pass="oobeSystem">{oob}</settings>{extra_settings}</unattend>')


VALID = document()
