"""Settings boot in a clean process: production passes `check --deploy`, unsafe production values refuse to start."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("DATABASE_URL", "REDIS_URL")


def strong_secret() -> str:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(60))


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py with only PATH, HOME and `env`: nothing leaks from the test process's settings."""
    clean = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    env = {
        "DEBUG": "False",
        "SECRET_KEY": strong_secret(),
        "ALLOWED_HOSTS": "chat.example.com",
        "DATA_DIR": str(tmp_path),
    }
    env.update({name: os.environ[name] for name in PASSTHROUGH if os.environ.get(name)})
    return env


def test_production_settings_pass_check_deploy_with_no_warnings(production_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr + result.stdout
    assert production_env["SECRET_KEY"] not in result.stdout + result.stderr


def test_production_without_secret_key_refuses_to_start(production_env):
    del production_env["SECRET_KEY"]
    result = manage("check", **production_env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "ImproperlyConfigured" in result.stderr
    assert not (Path(production_env["DATA_DIR"]) / "secret_key").exists()


@pytest.mark.parametrize(
    "secret_key",
    [
        "change-me",
        "change-me-to-a-long-random-string",
        "django-insecure-" + "x1y2z3" * 10,
        "short-but-random-Q7w9",
        "a" * 60,
    ],
)
def test_production_with_a_sample_or_weak_secret_key_refuses_to_start(production_env, secret_key):
    production_env["SECRET_KEY"] = secret_key
    result = manage("check", **production_env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert secret_key not in result.stderr


def test_production_with_a_sample_jwt_signing_key_refuses_to_start(production_env):
    production_env["JWT_SIGNING_KEY"] = "change-me"
    result = manage("check", **production_env)
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY" in result.stderr


@pytest.mark.parametrize("hosts", ["*", "chat.example.com,*"])
def test_production_with_wildcard_allowed_hosts_refuses_to_start(production_env, hosts):
    production_env["ALLOWED_HOSTS"] = hosts
    result = manage("check", **production_env)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_development_default_needs_no_env_and_keeps_one_generated_secret_key(tmp_path):
    first = manage("check", DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    assert key_file.exists()
    key = key_file.read_text()
    assert len(key.strip()) >= 50
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only

    second = manage("check", DATA_DIR=str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert key_file.read_text() == key
    assert key.strip() not in first.stdout + first.stderr + second.stdout + second.stderr


def test_unknown_default_provider_refuses_to_start(tmp_path):
    result = manage("check", DATA_DIR=str(tmp_path), LLM_PROVIDER="skynet")
    assert result.returncode != 0
    assert "LLM_PROVIDER=skynet" in result.stderr


def test_security_sensitive_packages_are_at_least_the_fixed_versions():
    """docs/reliability.md K2: versions that fixed the advisories this project is exposed to."""
    from importlib.metadata import version

    floors = {
        "django": (5, 2, 11),
        "djangorestframework": (3, 17, 2),
        "djangorestframework-simplejwt": (5, 5, 1),
        "daphne": (4, 2, 2),
        "xhtml2pdf": (0, 2, 22),
        "reportlab": (4, 4, 9),
        "pypdf": (6, 12, 0),
    }
    for package, floor in floors.items():
        installed = tuple(int(part) for part in version(package).split(".")[:3] if part.isdigit())
        assert installed >= floor, f"{package} {version(package)} is older than {floor}"
