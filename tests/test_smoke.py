import hashlib
import subprocess

import urllib3


def test_hosted_raw_round_trip_through_curl(stowage_app, live_server_factory, tmp_path):
    stowage_app.create_repository(name="raw-hosted", format="raw", type="hosted")
    server = live_server_factory(stowage_app)
    payload = tmp_path / "f.bin"
    payload.write_bytes(b"x" * 100_000)
    url = f"{server.url}/repository/raw-hosted/a/b/f.bin"
    status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                             f"admin:{stowage_app.admin_password}", "--upload-file", str(payload), url],
                            capture_output=True, text=True, check=True).stdout
    assert status == "201"
    body = urllib3.request("GET", url).data
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(payload.read_bytes()).hexdigest()
