"""Settings from the environment, and the --help listing of every setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from billing_service.settings import SETTINGS, Settings, SettingsError
from tests.support.processes import REPO_ROOT
from webhook_gateway.settings import SETTINGS as GATEWAY_SETTINGS
from webhook_gateway.settings import GatewaySettings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.grpc_addr == "127.0.0.1:50051"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url == ""
    assert settings.stripe_webhook_secrets == ()
    assert settings.plans_file == Path("plans.example.toml")


def test_webhook_secrets_are_comma_separated_and_never_in_repr() -> None:
    settings = Settings.from_env(
        {"STRIPE_WEBHOOK_SECRETS": "whsec_a, whsec_b,", "STRIPE_SECRET_KEY": "sk_test_hidden"}
    )
    assert settings.stripe_webhook_secrets == ("whsec_a", "whsec_b")
    assert "whsec_a" not in repr(settings)
    assert "sk_test_hidden" not in repr(settings)


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="STRIPE_TIMEOUT_SECONDS"):
        Settings.from_env({"STRIPE_TIMEOUT_SECONDS": "soon"})


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "NaN"])
def test_a_number_that_is_not_finite_is_refused_naming_the_variable(raw: str) -> None:
    # nan passes every comparison-based range check, so it must be refused first.
    with pytest.raises(
        SettingsError, match=f"STRIPE_TIMEOUT_SECONDS must be a finite number, got '{raw}'"
    ):
        Settings.from_env({"STRIPE_TIMEOUT_SECONDS": raw})
    with pytest.raises(SettingsError, match="GATEWAY_FORWARD_LINGER_MS must be a finite number"):
        GatewaySettings.from_env(
            {"STRIPE_WEBHOOK_SECRETS": "whsec_x", "GATEWAY_FORWARD_LINGER_MS": raw}
        )


def test_help_lists_every_setting_with_its_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "billing_service.cli", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for spec in SETTINGS:
        assert spec.env in out
        assert f"[default: {spec.default or '(unset)'}]" in out


def test_readme_lists_every_setting_of_both_services() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    specs = (*SETTINGS, *GATEWAY_SETTINGS)
    missing = [spec.env for spec in specs if f"`{spec.env}`" not in readme]
    assert not missing, f"README configuration reference lacks {missing}"


def _serve(program: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m PROGRAM serve`` with only ``env`` and a database under ``tmp_path``."""
    return subprocess.run(
        [sys.executable, "-m", program, "serve"],
        cwd=REPO_ROOT,
        env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_catalog_fails_at_start_naming_the_entry(tmp_path: Path) -> None:
    plans = tmp_path / "plans.toml"
    plans.write_text('[plans.pro]\nprice_id = "oops"\nmonthly_limit = 1\n', encoding="utf-8")
    result = _serve("billing_service.cli", tmp_path, {"BILLING_PLANS_FILE": str(plans)})
    assert result.returncode == 2
    assert "plans.pro.price_id" in result.stderr


def test_redirect_hosts_are_lowercased_and_a_bad_entry_fails_at_start(tmp_path: Path) -> None:
    settings = Settings.from_env({"BILLING_REDIRECT_HOSTS": "App.Example.com, *.example.org,"})
    assert settings.redirect_hosts == frozenset({"app.example.com", "*.example.org"})
    assert Settings.from_env({}).redirect_hosts == frozenset()
    result = _serve(
        "billing_service.cli", tmp_path, {"BILLING_REDIRECT_HOSTS": "https://app.example.com/"}
    )
    assert result.returncode == 2
    assert "BILLING_REDIRECT_HOSTS" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("program", "extra"),
    [("billing_service.cli", {}), ("webhook_gateway.cli", {"STRIPE_WEBHOOK_SECRETS": "whsec_x"})],
)
def test_a_redis_url_without_a_redis_scheme_fails_at_start_without_showing_it(
    tmp_path: Path, program: str, extra: dict[str, str]
) -> None:
    result = _serve(program, tmp_path, {"REDIS_URL": "cache.internal:6379/hunter2", **extra})
    assert result.returncode == 2
    assert "REDIS_URL must start with redis://, rediss://, unix://" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
    for url in ("redis://:pw@cache:6379/0", "rediss://cache", "unix:///run/redis.sock", ""):
        assert Settings.from_env({"REDIS_URL": url}).redis_url == url
