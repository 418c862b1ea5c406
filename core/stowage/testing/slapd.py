"""A real OpenLDAP directory for tests: Debian's ``slapd`` in a temporary directory on a loopback port.

The directory holds people under ``ou=people`` (``inetOrgPerson`` + ``posixAccount``) and groups under
``ou=groups`` (``groupOfNames``, static membership). The ``memberof`` overlay gives every member a
``memberOf`` attribute naming its groups' DNs, which is what "dynamic" group mapping reads (as Active
Directory does). The server can be stopped and started again (its data survive) to test an outage.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from stowage.testing.harness import TestStowage, free_port

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
LDAPADD = shutil.which("ldapadd") or "/usr/bin/ldapadd"
LDAPMODIFY = shutil.which("ldapmodify") or "/usr/bin/ldapmodify"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

BASE_DN = "dc=stowage,dc=test"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "directory-admin-secret"
#: people in the default directory: uid -> (password, groups)
PEOPLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "alice": ("alice-ldap-pw", ("developers",)),
    "bob": ("bob-ldap-pw", ("readers",)),
    "carol": ("carol-ldap-pw", ()),
}

_CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/nis.schema
include {schema}/inetorgperson.schema
modulepath {modules}
moduleload back_mdb
moduleload memberof
pidfile {root}/slapd.pid
argsfile {root}/slapd.args

database mdb
maxsize 67108864
suffix "{base}"
rootdn "{admin}"
rootpw {admin_password}
directory {root}/data
index objectClass eq
index uid eq
index member eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
"""


def default_ldif(people: dict[str, tuple[str, tuple[str, ...]]] = PEOPLE) -> str:
    groups: dict[str, list[str]] = {}
    entries = [f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: stowage\no: Stowage tests",
               f"dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people",
               f"dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups"]
    for number, (uid, (password, member_of)) in enumerate(sorted(people.items())):
        entries.append(
            f"dn: uid={uid},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
            f"uid: {uid}\ncn: {uid.title()} Example\nsn: Example\nmail: {uid}@stowage.test\n"
            f"uidNumber: {10000 + number}\ngidNumber: 10000\nhomeDirectory: /home/{uid}\n"
            f"userPassword: {password}")
        for group in member_of:
            groups.setdefault(group, []).append(f"uid={uid},ou=people,{BASE_DN}")
    for group, members in sorted(groups.items()):
        entries.append(f"dn: cn={group},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: {group}\n"
                       + "\n".join(f"member: {m}" for m in members))
    return "\n\n".join(entries) + "\n"


class SlapdServer:
    """``slapd`` serving ``BASE_DN`` at :attr:`url`; :meth:`stop` and :meth:`start` keep the data."""

    def __init__(self, root: Path, ldif: str | None = None):
        self.root = Path(root)
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}/"
        self.base_dn = BASE_DN
        self.admin_dn = ADMIN_DN
        self.admin_password = ADMIN_PASSWORD
        self._ldif = default_ldif() if ldif is None else ldif
        self._process: subprocess.Popen[bytes] | None = None
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "slapd.conf").write_text(_CONFIG.format(
            schema=SCHEMA_DIR, modules=MODULE_DIR, root=self.root, base=BASE_DN, admin=ADMIN_DN,
            admin_password=ADMIN_PASSWORD))

    def start(self) -> "SlapdServer":
        first = self._process is None and not (self.root / "loaded").exists()
        log = open(self.root / "slapd.log", "ab")
        # -d 0: stay in the foreground (so the fixture owns the process) without debug output.
        self._process = subprocess.Popen([SLAPD, "-f", str(self.root / "slapd.conf"), "-h", self.url, "-d", "0"],
                                         stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.root / 'slapd.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("slapd did not start listening") from None
                time.sleep(0.05)
        if first:
            self.ldapadd(self._ldif)
            (self.root / "loaded").touch()
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _run(self, tool: str, ldif: str) -> None:
        subprocess.run([tool, "-x", "-H", self.url, "-D", self.admin_dn, "-w", self.admin_password],
                       input=ldif.encode(), check=True, capture_output=True, timeout=30)

    def ldapadd(self, ldif: str) -> None:
        self._run(LDAPADD, ldif)

    def ldapmodify(self, ldif: str) -> None:
        self._run(LDAPMODIFY, ldif)

    def set_password(self, uid: str, password: str) -> None:
        self.ldapmodify(f"dn: uid={uid},ou=people,{BASE_DN}\nchangetype: modify\nreplace: userPassword\n"
                        f"userPassword: {password}\n")

    def server_settings(self, name: str = "test-directory", **overrides: object) -> dict[str, object]:
        """A ``CreateLdapServerXo`` for this directory: static groups (``groupOfNames``/``member``)."""
        settings: dict[str, object] = {
            "name": name, "protocol": "ldap", "host": "127.0.0.1", "port": self.port, "searchBase": BASE_DN,
            "authScheme": "SIMPLE", "authUsername": ADMIN_DN, "authPassword": ADMIN_PASSWORD,
            "connectionTimeoutSeconds": 2, "connectionRetryDelaySeconds": 0, "maxIncidentsCount": 0,
            "userBaseDn": "ou=people", "userSubtree": False, "userObjectClass": "inetOrgPerson",
            "userLdapFilter": "", "userIdAttribute": "uid", "userRealNameAttribute": "cn",
            "userEmailAddressAttribute": "mail", "userPasswordAttribute": "",
            "ldapGroupsAsRoles": True, "groupType": "static", "groupBaseDn": "ou=groups", "groupSubtree": False,
            "groupObjectClass": "groupOfNames", "groupIdAttribute": "cn", "groupMemberAttribute": "member",
            "groupMemberFormat": "uid=${username},ou=people," + BASE_DN,
        }
        settings.update(overrides)
        return settings


def use_directory(test_stowage: TestStowage, directory: SlapdServer, **overrides: object) -> dict[str, object]:
    """Configure ``directory`` as an LDAP server of the app (through the REST API, as an admin would)."""
    settings = directory.server_settings(**overrides)
    answer = test_stowage.client.simulate_post("/service/rest/v1/security/ldap", json=settings,
                                               headers=test_stowage.admin)
    assert answer.status_code == 201, answer.text
    return settings


def map_group(test_stowage: TestStowage, group: str, privileges: list[str]) -> None:
    """Create the Stowage role whose id is the directory group's name (how groups become roles)."""
    answer = test_stowage.client.simulate_post("/service/rest/v1/security/roles", headers=test_stowage.admin,
                                               json={"id": group, "name": group, "privileges": privileges})
    assert answer.status_code == 200, answer.text
