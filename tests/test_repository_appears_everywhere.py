"""A repository created through one worker (or node) is served by every other one at once: a script that
creates a repository and then uses it must not see a 404 while another process's configuration cache is
still fresh."""

from __future__ import annotations


def test_a_new_repository_is_served_at_once_by_another_process(stowage_factory, tmp_path):
    first = stowage_factory(data_dir=tmp_path / "data")
    second = stowage_factory(data_dir=tmp_path / "data")
    first.create_repository(name="warm-up", format="raw", type="hosted")  # the configuration has a generation
    second.stowage.CONFIG_RECHECK_SECONDS = 3600.0  # its cache stays "fresh" for the whole test
    assert second.client.simulate_get("/repository/warm-up/nothing").status_code == 404  # cache filled
    assert second.client.simulate_get("/repository/made-elsewhere/f.txt").status_code == 404  # cache filled
    first.create_repository(name="made-elsewhere", format="raw", type="hosted")
    put = first.client.simulate_put("/repository/made-elsewhere/f.txt", body=b"x", headers=first.admin)
    assert put.status_code == 201
    got = second.client.simulate_get("/repository/made-elsewhere/f.txt")
    assert (got.status_code, got.content) == (200, b"x")
