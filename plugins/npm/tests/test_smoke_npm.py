from conftest import installed_version, make_package


def test_publish_and_install(tmp_path, npm_server, npm_client):
    hosted = f"{npm_server.url}/repository/npm-hosted/"
    for name, version in [("@acme/util", "1.0.0"), ("@acme/util", "1.1.0"), ("left-pad-x", "1.0.0")]:
        npm_client.run("publish", registry=hosted, cwd=make_package(tmp_path / "src", name, version))
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "p", "version": "1.0.0"}')
    npm_client.run("install", "@acme/util@^1.0.0", cwd=project)
    assert installed_version(project, "@acme/util") == "1.1.0"
