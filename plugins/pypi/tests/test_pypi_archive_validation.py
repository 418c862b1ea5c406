"""Issue 10 item 8 with twine: a distribution twine happily uploads (its metadata reads fine) but whose archive is
broken further on is refused with a 400 and stores nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pypi_kit import make_sdist, make_wheel, twine_upload


@pytest.fixture
def server(stowage_factory, live_server_factory):
    return live_server_factory(stowage_factory(repositories=[dict(name="pypi-hosted", format="pypi", type="hosted")]))


def corrupt_member(wheel: Path, member: str) -> None:
    """Flip one byte inside ``member``'s stored data: the zip still opens, the member fails its CRC."""
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo(member)
    data = bytearray(wheel.read_bytes())
    name_length = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))


def test_twine_upload_of_broken_archives_is_refused(server, dists, client_env):
    url = f"{server.url}/repository/pypi-hosted/"
    before = server.test_stowage.stored_state()
    wheel = make_wheel(dists, "crc", "1.0")
    corrupt_member(wheel, "crc/__init__.py")
    sdist = make_sdist(dists, "cut", "1.0")
    sdist.write_bytes(sdist.read_bytes()[:-6])  # the gzip trailer (CRC, length) is cut: PKG-INFO still reads
    zipped = dists / "zipped-1.0.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zipped-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n")
        archive.writestr("zipped-1.0/setup.py", "print('x')\n" * 500)
    corrupt_member(zipped, "zipped-1.0/setup.py")
    for path, words in [(wheel, "fails its CRC check"), (sdist, "not a valid source distribution"),
                        (zipped, "not a valid source distribution")]:
        result = twine_upload(url, [path], client_env, server.test_stowage.admin_password, check=False)
        output = " ".join((result.stdout + result.stderr).split())  # twine wraps lines
        assert result.returncode != 0 and "400" in output and words in output, output
    after = server.test_stowage.stored_state()
    assert {k: v for k, v in after.items() if not k.startswith("blob store")} == \
        {k: v for k, v in before.items() if not k.startswith("blob store")}
    assert after == before, "a refused upload left a blob behind"
    twine_upload(url, [make_wheel(dists.parent, "crc", "1.0")], client_env, server.test_stowage.admin_password)
