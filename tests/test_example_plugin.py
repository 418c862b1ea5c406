"""The "Test it" example of docs/writing-a-plugin.md, verbatim (tests/test_docs.py checks it is)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "example_plugin"))

from stowage_tiny import plugin as tiny


def test_group_index(stowage_factory):
    app = stowage_factory(plugins=[tiny], load_entrypoints=False)
    app.create_repository(name="one", format="tiny", type="hosted")
    app.create_repository(name="all", format="tiny", type="group", group={"memberNames": ["one"]})
    app.client.simulate_put("/repository/one/a.txt", body=b"a", headers=app.admin)
    assert list(app.client.simulate_get("/repository/all/-/index.json").json["files"]) == ["a.txt"]
