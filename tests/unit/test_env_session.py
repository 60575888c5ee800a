"""Static keys from the environment are read without botocore, and give exactly what botocore would give."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from objsync.pull import pool
from objsync.pull.pool import Pool, PoolConfig
from objsync.s3.config import (EnvSession, RemoteConfig, Session, botocore_session, default_ca_bundle, env_keys,
                               make_client, make_session)
from objsync.s3.fast import aws_origin, find_route, proxy_settings


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Static keys, and neither an AWS config file nor a shared credentials file."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def frozen(session) -> tuple | None:
    creds = session.credentials()
    if creds is None:
        return None
    f = creds.get_frozen_credentials()
    return f.access_key, f.secret_key, f.token


@pytest.mark.parametrize("extra", [
    {},
    {"AWS_SESSION_TOKEN": "session-token"},
    {"AWS_SECURITY_TOKEN": "security-token", "AWS_SESSION_TOKEN": "session-token"},  # botocore's order
    {"AWS_DEFAULT_REGION": "eu-central-1"},
    {"AWS_DEFAULT_REGION": ""},
    {"AWS_REGION": "ap-south-1"},  # not botocore's variable: the CLI reads it into the config
    {"AWS_CA_BUNDLE": "/etc/private-ca.pem"},
    {"AWS_CA_BUNDLE": ""},
])
def test_static_keys_answer_as_botocore_does(env, extra):
    for name, value in extra.items():
        env.setenv(name, value)
    cfg = RemoteConfig(endpoint_url="https://s3.internal:9000")
    fast, full = make_session(cfg), botocore_session(cfg)
    assert isinstance(fast, EnvSession) and isinstance(full, Session)
    assert (fast.region, frozen(fast), fast.ca_bundle()) == (full.region, frozen(full), full.ca_bundle())
    ours, theirs = find_route(cfg, "b", fast, client=None), find_route(cfg, "b", full, client=None)
    assert (ours.origin, ours.host, ours.bucket_path, ours.region, ours.transfer) == (
        theirs.origin, theirs.host, theirs.bucket_path, theirs.region, theirs.transfer)


@pytest.mark.parametrize("change", [
    {"AWS_PROFILE": "team"},
    {"AWS_DEFAULT_PROFILE": "team"},
    {"AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00Z"},  # refreshing keys
    {"AWS_SECRET_ACCESS_KEY": ""},  # partial: botocore says so
    {"AWS_ACCESS_KEY_ID": ""},  # not set: the rest of the chain applies
])
def test_anything_else_goes_to_botocore(env, change):
    for name, value in change.items():
        env.setenv(name, value)
    assert env_keys(RemoteConfig(), os.environ) is None
    assert env_keys(RemoteConfig(profile="team"), {**os.environ, **dict.fromkeys(change, "x")}) is None


@pytest.mark.parametrize("var", ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"])
def test_an_aws_file_sends_the_session_to_botocore(env, tmp_path, var):
    """botocore parses both files even when the environment holds keys (and refuses a broken one)."""
    path = tmp_path / "file"
    path.write_text("[default]\nregion = eu-west-3\n")
    env.setenv(var, str(path))
    session = make_session(RemoteConfig())
    assert isinstance(session, Session) and session.region == "eu-west-3"


def test_a_client_is_built_by_botocore_on_first_use(env):
    session = make_session(RemoteConfig(endpoint_url="http://127.0.0.1:1", region="eu-west-1"))
    assert isinstance(session, EnvSession)
    client = make_client(RemoteConfig(endpoint_url="http://127.0.0.1:1", region="eu-west-1"), session)
    assert client.meta.region_name == "eu-west-1"
    assert client._request_signer._credentials.get_frozen_credentials().access_key == "AKIDEXAMPLE"


def test_the_default_ca_bundle_is_botocores():
    from botocore.httpsession import get_cert_path

    assert default_ca_bundle() == get_cert_path(True)


@pytest.mark.parametrize("variables", [
    {}, {"http_proxy": "http://p:3128"}, {"HTTPS_PROXY": "http://p:3128"}, {"NO_PROXY": "*"},
    {"all_proxy": ""}, {"FTP_PROXY": "http://p:21"}, {"PATH": "/bin"}])
def test_proxy_settings_are_found_when_urllib_would_find_them(variables):
    from urllib.request import getproxies_environment

    if proxy_settings({}) is True:
        pytest.skip("this platform keeps proxy settings outside the environment")
    assert proxy_settings(variables) == bool(_environment_proxies(variables, getproxies_environment))


def _environment_proxies(variables, getproxies_environment):
    from unittest import mock

    with mock.patch.dict(os.environ, variables, clear=True):
        return getproxies_environment()


def test_a_pass_with_nothing_to_fetch_counts_no_cpus(monkeypatch, tmp_path):
    def count():
        raise AssertionError("CPUs counted")

    monkeypatch.setattr(pool, "default_workers", count)
    workers = Pool(RemoteConfig(), opts=None, cfg=PoolConfig(workers=None))
    assert list(workers.run([])) == []
    monkeypatch.setattr(pool, "default_workers", lambda: 3)
    assert workers.workers == 3


AWS_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-2", "ap-southeast-3", "ap-northeast-1", "sa-east-1",
               "ca-central-1", "me-south-1", "af-south-1", "il-central-1", "mx-central-1"]
OTHER_REGIONS = ["cn-north-1", "us-gov-west-1", "eusc-de-east-1", "us-iso-east-1", "aws-global", "EU-WEST-1"]
PLAIN = ["my-bucket", "abc", "dags-123", "a" * 63]
NOT_PLAIN = ["my.bucket", "MyBucket", "ab", "xn--abc", "b--x-s3", "a--ol-s3", "-bucket", "bucket-", "a" * 64]


def no_client():
    raise AssertionError("a client was built")


@pytest.mark.parametrize("region", AWS_REGIONS)
def test_a_plain_bucket_on_aws_gets_the_address_botocore_presigns_without_a_client(env, region):
    cfg = RemoteConfig(region=region)
    client = make_client(cfg, botocore_session(cfg))
    for name in PLAIN:
        route = find_route(cfg, name, make_session(cfg), client=no_client)
        url = urlsplit(client.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"}))
        assert (route.origin, route.host, route.bucket_path, route.region) == (
            f"{url.scheme}://{url.netloc}", url.netloc, url.path[:-2], client.meta.region_name)
        assert route.transfer.ca_file == default_ca_bundle()


@pytest.mark.parametrize("region, name", [(r, n) for r in AWS_REGIONS[:3] for n in NOT_PLAIN]
                         + [(r, "my-bucket") for r in OTHER_REGIONS])
def test_anything_but_the_plain_case_asks_botocore(env, region, name):
    assert aws_origin(RemoteConfig(region=region), name, region, os.environ) is None


@pytest.mark.parametrize("variable, value", [
    ("AWS_USE_FIPS_ENDPOINT", "true"), ("AWS_USE_DUALSTACK_ENDPOINT", "true"), ("AWS_ENDPOINT_URL", "https://x"),
    ("AWS_ENDPOINT_URL_S3", "https://x"), ("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "regional"),
    ("AWS_DATA_PATH", "/tmp"), ("AWS_PROFILE", "team"), ("AWS_DEFAULTS_MODE", "auto")])
def test_a_setting_that_could_move_the_endpoint_asks_botocore(env, variable, value):
    env.setenv(variable, value)
    assert aws_origin(RemoteConfig(region="eu-west-1"), "my-bucket", "eu-west-1", os.environ) is None


def test_a_session_built_elsewhere_asks_its_client(env):
    """An Airflow connection's session may carry client settings of its own, such as an accelerate endpoint."""
    cfg = RemoteConfig(region="eu-west-1")
    full = botocore_session(cfg)
    outside = Session(full.boto, full.core)
    client = make_client(cfg, full)
    assert find_route(cfg, "my-bucket", full, client=no_client).origin == "https://my-bucket.s3.amazonaws.com"
    assert find_route(cfg, "my-bucket", outside, client=lambda: client).origin == "https://my-bucket.s3.amazonaws.com"
    with pytest.raises(AssertionError, match="a client was built"):
        find_route(cfg, "my-bucket", outside, client=no_client)


def test_plain_http_or_a_config_file_asks_botocore(env, tmp_path):
    assert aws_origin(RemoteConfig(region="eu-west-1", use_ssl=False), "my-bucket", "eu-west-1", os.environ) is None
    (tmp_path / "config").write_text("[default]\ns3 =\n  addressing_style = path\n")
    env.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    assert aws_origin(RemoteConfig(region="eu-west-1"), "my-bucket", "eu-west-1", os.environ) is None
