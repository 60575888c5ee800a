from pathlib import Path

import pytest

from objsync.push.envs import ConfigError, load_project, repo_from_url, resolve_commit, resolve_repo

FOLDER = Path("/work/checkouts/from-folder")
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"


def no_git():
    return None


@pytest.mark.parametrize("var, value, expected", [
    ("GITHUB_REPOSITORY", "acme/gh-dags", "gh-dags"),
    ("CI_PROJECT_NAME", "gl-dags", "gl-dags"),
    ("BITBUCKET_REPO_SLUG", "bb-dags", "bb-dags"),
    ("CIRCLE_PROJECT_REPONAME", "circle-dags", "circle-dags"),
    ("BUILDKITE_PIPELINE_SLUG", "bk-dags", "bk-dags"),
])
def test_repo_name_from_each_ci_variable(var, value, expected):
    assert resolve_repo(None, {var: value}, no_git, FOLDER) == (expected, var)


def test_repo_name_precedence():
    env = {"CI_PROJECT_NAME": "second", "BUILDKITE_PIPELINE_SLUG": "last", "GITHUB_REPOSITORY": "o/first"}
    assert resolve_repo("flag", env, no_git, FOLDER) == ("flag", "--repo")
    assert resolve_repo(None, env, no_git, FOLDER)[0] == "first"
    assert resolve_repo(None, env | {"GITHUB_REPOSITORY": ""}, no_git, FOLDER)[0] == "second"
    remote = lambda: "git@github.com:acme/from-remote.git"  # noqa: E731
    assert resolve_repo(None, {}, remote, FOLDER) == ("from-remote", "git remote origin git@github.com:acme/from-remote.git")
    assert resolve_repo(None, {}, no_git, FOLDER) == ("from-folder", f"the folder name of {FOLDER}")


@pytest.mark.parametrize("url", [
    "git@github.com:acme/dags.git", "https://github.com/acme/dags.git", "https://gitlab.com/g/sub/dags",
    "ssh://git@host:2222/acme/dags.git/", "/srv/git/dags.git", "git@host:dags.git",
])
def test_repo_name_from_git_urls(url):
    assert repo_from_url(url) == "dags"


@pytest.mark.parametrize("flag, env, origin", [
    (None, {"GITHUB_REPOSITORY": "acme/my dags"}, "GITHUB_REPOSITORY"),
    ("../up", {}, "--repo"),
    (None, {"CI_PROJECT_NAME": ".objsync"}, "CI_PROJECT_NAME"),
])
def test_bad_repo_name_is_an_error_not_rewritten(flag, env, origin):
    with pytest.raises(ValueError, match=f"from {origin}: .* is not a usable repo name.*--repo NAME"):
        resolve_repo(flag, env, no_git, FOLDER)


def test_commit_from_ci_variables_then_git():
    assert resolve_commit({"GITHUB_SHA": SHA}, no_git) == SHA
    assert resolve_commit({"CIRCLE_SHA1": SHA.upper()}, no_git) == SHA
    assert resolve_commit({"BUILDKITE_COMMIT": "HEAD", "CI_COMMIT_SHA": SHA}, no_git) == SHA
    assert resolve_commit({"BUILDKITE_COMMIT": "HEAD"}, lambda: SHA + "\n") == SHA
    assert resolve_commit({}, no_git) is None
    assert resolve_commit({}, lambda: "fatal: not a git repository") is None


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_objsync_toml_is_found_up_to_the_git_root(tmp_path):
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    cfg = write(root / "objsync.toml", 'source = "airflow"\nexclude = ["tests/**"]\n'
                '[environments.dev]\nurl = "s3://dev-bucket/dags"\n'
                '[environments.prod-eu]\nurl = "s3://prod/dags"\nendpoint_url = "https://s3.example"\nregion = "eu-west-1"\n')
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    project = load_project(sub, {})
    assert project.path == cfg and project.root == root and project.excludes == ("tests/**",)
    assert str(project.environment("dev").location) == "s3://dev-bucket/dags"
    prod = project.environment("prod-eu")
    assert (prod.endpoint_url, prod.region) == ("https://s3.example", "eu-west-1")
    assert project.source_dir(None, sub) == root / "airflow"
    assert project.source_dir("wf", sub) == sub / "wf"


def test_search_stops_at_the_git_root_and_needs_one_to_walk_up(tmp_path):
    write(tmp_path / "objsync.toml", '[environments.outside]\nurl = "s3://b/p"\n')
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    assert load_project(tmp_path / "repo", {}).environments == {}
    (tmp_path / "plain" / "sub").mkdir(parents=True)
    assert load_project(tmp_path / "plain" / "sub", {}).environments == {}
    assert load_project(tmp_path / "plain" / "sub", {}).source_dir(None, tmp_path) == tmp_path / "plain/sub/workflow"


def test_pyproject_tool_table_and_pyproject_without_it(tmp_path):
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    write(root / "pyproject.toml", '[project]\nname = "x"\n[tool.objsync.environments.dev]\nurl = "s3://b/dags"\n')
    write(root / "pkg" / "pyproject.toml", '[project]\nname = "inner"\n')
    project = load_project(root / "pkg", {})
    assert project.path == root / "pyproject.toml" and "dev" in project.environments


def test_unknown_environment_lists_the_configured_ones(tmp_path):
    write(tmp_path / "objsync.toml", '[environments.dev]\nurl = "s3://b/d"\n[environments.staging]\nurl = "s3://b/s"\n')
    project = load_project(tmp_path, {"OBJSYNC_ENV_PRODUCTION_URL": "s3://p/d"})
    with pytest.raises(ConfigError, match=r"unknown environment 'qa'.*dev, production, staging.*OBJSYNC_ENV_QA_URL"):
        project.environment("qa")


@pytest.mark.parametrize("text, message", [
    ('[environments.dev]\nurl = "s3://b/d"\nregoin = "x"\n', "unknown key 'regoin'"),
    ('[enviroments.dev]\nurl = "s3://b/d"\n', "unknown key 'enviroments'"),
    ('[environments.dev]\nurl = "http://b/d"\n', "not an S3 URI"),
    ('[environments.dev]\nregion = "x"\n', "url is missing"),
    ('[environments."9x"]\nurl = "s3://b/d"\n', "not an environment name"),
    ('[environments.dev]\nurl = 3\n', "url must be a non-empty string"),
    ('source = ""\n', "source must be a folder name"),
    ('exclude = "tests/**"\n', "exclude must be a list"),
    ('[environments\n', "not valid TOML"),
])
def test_config_errors_name_the_file_and_the_problem(tmp_path, text, message):
    write(tmp_path / "objsync.toml", text)
    with pytest.raises(ConfigError, match=message) as err:
        load_project(tmp_path, {})
    assert "objsync.toml" in str(err.value)


def test_environment_variables_override_and_define(tmp_path):
    write(tmp_path / "objsync.toml", '[environments.prod-eu]\nurl = "s3://b/d"\nregion = "eu-west-1"\n')
    env = {"OBJSYNC_ENV_PROD_EU_URL": "s3://other/x", "OBJSYNC_ENV_PROD_EU_ENDPOINT_URL": "http://minio:9000",
           "OBJSYNC_ENV_QA_URL": "s3://qa/dags", "OBJSYNC_ENV_GHOST_REGION": "us-west-2", "OBJSYNC_ENV_EMPTY_URL": ""}
    project = load_project(tmp_path, env)
    prod = project.environment("prod-eu")
    assert (str(prod.location), prod.endpoint_url, prod.region) == ("s3://other/x", "http://minio:9000", "eu-west-1")
    assert "OBJSYNC_ENV_PROD_EU_URL" in prod.defined_in
    assert str(project.environment("qa").location) == "s3://qa/dags"
    assert sorted(project.environments) == ["prod-eu", "qa"]  # no URL, no environment
    with pytest.raises(ConfigError, match="OBJSYNC_ENV_BAD_URL"):
        load_project(tmp_path, {"OBJSYNC_ENV_BAD_URL": "bucket-without-scheme"})


def test_the_repo_web_page_comes_from_ci_variables():
    from objsync.push.envs import resolve_source_url

    gh = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/dags"}
    assert resolve_source_url(gh) == "https://github.com/acme/dags"
    assert resolve_source_url({"CI_PROJECT_URL": "https://gitlab.example.com/g/dags"}) == "https://gitlab.example.com/g/dags"
    assert resolve_source_url({"OBJSYNC_SOURCE_URL": "https://git.example.com/x.git", **gh}) == "https://git.example.com/x"
    assert resolve_source_url({"CI_PROJECT_URL": "not a url"}) is None
    assert resolve_source_url({}) is None


def test_an_environment_defined_by_variable_answers_to_its_hyphenated_name(tmp_path):
    project = load_project(tmp_path, {"OBJSYNC_ENV_PROD_EU_URL": "s3://p/d"})
    env = project.environment("prod-eu")
    assert (env.name, str(env.location)) == ("prod-eu", "s3://p/d")
    assert project.environment("prod_eu").location == env.location
    with pytest.raises(ConfigError, match="OBJSYNC_ENV_PROD_US_URL"):
        project.environment("prod-us")
